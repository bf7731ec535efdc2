"""Development settings, the default of `manage.py`: DEBUG on unless the environment says otherwise.

The server processes (gunicorn via wsgi.py, Celery) default to `base`, which refuses to start without a SECRET_KEY.
"""

import os

os.environ.setdefault("DEBUG", "true")

from experiments_api.settings.base import *  # noqa: E402,F403
