"""WSGI entry point: ``gunicorn demo_app.wsgi:application`` (sync and gthread workers)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_app.settings")

application = get_wsgi_application()
