"""Settings for the demo app.

Tuned for a server that is measured, not for production: DEBUG is off unless
asked for (DEBUG keeps every SQL query in memory, which would distort memory
figures), only loopback hosts are allowed, and the secret key is never stored
in the repository.
"""

import os
import secrets
from pathlib import Path

from .dburl import database_from_url

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"Environment variable {name}={raw!r} is not a whole number.") from None


# No session or signing is used, so a key generated per process is enough.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"] + [
    h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if h
]

INSTALLED_APPS = ["demo_app"]

DEFAULT_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# A comma-separated list replaces the default, so a notebook can start the same
# app with and without a middleware (e.g. without CommonMiddleware, which sets
# Content-Length on every non-streaming response).
MIDDLEWARE = [
    m.strip() for m in os.environ.get("DEMO_MIDDLEWARE", ",".join(DEFAULT_MIDDLEWARE)).split(",")
    if m.strip()
]

ROOT_URLCONF = "demo_app.urls"
WSGI_APPLICATION = "demo_app.wsgi.application"
ASGI_APPLICATION = "demo_app.asgi.application"

# SQLite by default: its file is $DEMO_DB_PATH, or the one in the repository.
# DEMO_DATABASE_URL (postgresql://... or sqlite://..., see dburl.py) replaces it: notebook 07
# sets it to a throwaway PostgreSQL server when one is installed. (Not DATABASE_URL, which a
# learner's shell may already set for an app of their own.)
_DATABASE_URL = os.environ.get("DEMO_DATABASE_URL")
DATABASES = {
    "default": database_from_url(_DATABASE_URL) if _DATABASE_URL else {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DB_PATH", str(BASE_DIR / "demo_app" / "demo.sqlite3")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"

# Limits on request parameters. A plain HttpResponse holds the whole body in
# the worker's memory (several times over while it is built), so its cap is
# set to keep one request within a few hundred MB: Binder gives ~2 GB in all.
DEMO_MAX_ROWS = _env_int("DEMO_MAX_ROWS", 2_000_000)
DEMO_MAX_STREAMING_ROWS = _env_int("DEMO_MAX_STREAMING_ROWS", 100_000_000)
DEMO_MAX_CHUNK_ROWS = _env_int("DEMO_MAX_CHUNK_ROWS", 1_000_000)
DEMO_MAX_DELAY_MS = _env_int("DEMO_MAX_DELAY_MS", 10_000)
# Server-sent events (notebook 09): events per stream, the longest silence a
# heartbeat may cover, and the reconnection delay a stream may ask a browser for.
# A stream holds a sync worker for its whole length, so these stay modest.
DEMO_MAX_EVENTS = _env_int("DEMO_MAX_EVENTS", 100_000)
DEMO_MAX_HEARTBEAT_S = _env_int("DEMO_MAX_HEARTBEAT_S", 300)
DEMO_MAX_RETRY_MS = _env_int("DEMO_MAX_RETRY_MS", 60_000)
# Rows per chunk when the request does not say. 4096 rows is about 80 KiB:
# on the plateau of the throughput curve measured in notebook 04 and by
# `make bench`, where the fixed cost of a chunk (a few microseconds each in
# Django, Gunicorn and the client) is under 1% of producing its rows,
# while the first chunk is still ready within a few milliseconds and the
# worker holds only one chunk at a time. One row per chunk is ~20x slower.
DEMO_DEFAULT_CHUNK_ROWS = _env_int("DEMO_DEFAULT_CHUNK_ROWS", 4096)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    # A 4xx is the client's mistake and already in Gunicorn's access log;
    # logging it again as a warning would fill notebooks with red boxes.
    "loggers": {"django.request": {"level": "ERROR"}},
}
# Topics (notebook 12): the largest event a POST may publish. The event is a row; the
# notification carries only its id, so NOTIFY's own 8,000-byte limit does not apply.
DEMO_MAX_TOPIC_EVENT_BYTES = _env_int("DEMO_MAX_TOPIC_EVENT_BYTES", 65_536)
