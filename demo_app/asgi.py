"""ASGI entry point: ``gunicorn -k asgi demo_app.asgi:application``."""

import os
from importlib import import_module

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_app.settings")

application = get_asgi_application()

# Import every view now, not at the first request: under `gunicorn --preload` this runs once in
# the master, and each forked worker shares those pages instead of importing them again
# (notebook 04 measures a worker's own pages).
import_module(settings.ROOT_URLCONF)
