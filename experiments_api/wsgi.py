"""WSGI entry point for gunicorn."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "experiments_api.settings.base")

application = get_wsgi_application()
# Everything loaded so far lives as long as the process: kept out of the garbage collector's full passes, which
# would otherwise walk it again and again under the allocations of every capture batch.
gc.freeze()
