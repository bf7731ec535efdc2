"""Gunicorn settings for the server processes: `gunicorn -c python:experiments_api.gunicorn_config ...`.

The access log goes to stdout and, like the error log, has query-string secrets redacted.
"""

from gunicorn.glogging import Logger

from experiments_api.log_redaction import RedactSecretsFilter

_REDACT_SECRETS = RedactSecretsFilter()


class RedactingLogger(Logger):
    """Gunicorn's logger with secrets redacted from the request line, the referer and every error message."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            log.addFilter(_REDACT_SECRETS)


logger_class = RedactingLogger
accesslog = "-"
