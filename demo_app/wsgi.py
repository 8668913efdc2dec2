"""WSGI entry point: ``gunicorn demo_app.wsgi:application`` (sync and gthread workers)."""

import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_app.settings")

application = get_wsgi_application()

# Import every view now, not at the first request: under `gunicorn --preload` this runs once in
# the master, and each forked worker shares those pages instead of importing them again
# (notebook 04 measures a worker's own pages).
import_module(settings.ROOT_URLCONF)
