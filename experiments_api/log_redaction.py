"""Secrets never reach a log line: query-string credentials and personal API keys are replaced before formatting.

`RedactSecretsFilter` sits on the handlers of Django's LOGGING (so on every record the server logs, runserver's
request lines included) and on gunicorn's access and error logs (see experiments_api/gunicorn_config.py).
"""

import logging
import re

REDACTED = "[redacted]"
# A query parameter whose name contains one of these carries a credential: personal_api_key, api_key, token
# (project tokens), access_token, client_secret, password...
_SECRET_PARAMETER = re.compile(
    r"(?P<name>[?&;][^=&;\s\"'#]*(?:api_key|token|secret|password|passwd)[^=&;\s\"'#]*=)[^&;\s\"'#]*",
    re.IGNORECASE,
)
# Personal API keys (phx_) and OAuth access tokens (pha_) wherever they appear, such as in a referer's path.
_PERSONAL_KEY = re.compile(r"\bph[xa]_[A-Za-z0-9_\-]+")


def redact_secrets(text: str) -> str:
    return _PERSONAL_KEY.sub(REDACTED, _SECRET_PARAMETER.sub(rf"\g<name>{REDACTED}", text))


class RedactSecretsFilter(logging.Filter):
    """Rewrites a record's message with its secrets redacted; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a malformed record: leave it to the handler, which reports it
        redacted = redact_secrets(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
