"""ASGI entry point: ``gunicorn -k asgi demo_app.asgi:application``."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_app.settings")

application = get_asgi_application()
