"""The demo app's database from one environment variable, ``DEMO_DATABASE_URL``.

    postgresql://app@127.0.0.1:5432/demo?disable_server_side_cursors=1
    sqlite:////tmp/export.sqlite3

The scheme picks Django's backend; the query string sets the few settings of a
database that notebook 07 turns on and off, so that the same app can be
started against PostgreSQL directly, through a pooler, with or without
server-side cursors, persistent connections or a connection pool, and
``ATOMIC_REQUESTS``. Anything else in the query string is refused with the
list of what is understood: a typo must not silently measure the default.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

SCHEMES = {
    "postgresql": "django.db.backends.postgresql",
    "postgres": "django.db.backends.postgresql",
    "sqlite": "django.db.backends.sqlite3",
}
FLAGS = {  # query key: the DATABASES key it sets, to True or False
    "disable_server_side_cursors": "DISABLE_SERVER_SIDE_CURSORS",
    "atomic_requests": "ATOMIC_REQUESTS",
}
NUMBERS = ("conn_max_age", "pool_max_size", "pool_timeout", "connect_timeout")
DEFAULT_CONNECT_TIMEOUT = 5  # seconds: a database that is down answers 503 quickly, not late


def database_from_url(url: str) -> dict[str, object]:
    """One entry of ``DATABASES`` for ``url``; ``ValueError`` saying what is wrong with it."""
    parts = urlsplit(url)
    engine = SCHEMES.get(parts.scheme)
    if engine is None:
        raise ValueError(
            f"DEMO_DATABASE_URL must start with postgresql:// or sqlite://, got {url!r}."
        )
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(FLAGS) - set(NUMBERS))
    if unknown:
        raise ValueError(
            f"DEMO_DATABASE_URL has unknown option(s) {', '.join(unknown)}; known: "
            f"{', '.join(sorted([*FLAGS, *NUMBERS]))}."
        )
    if engine.endswith("sqlite3"):
        if not parts.path or parts.path == "/":
            raise ValueError(f"A sqlite:// DEMO_DATABASE_URL needs a file path, got {url!r}.")
        database: dict[str, object] = {"ENGINE": engine, "NAME": unquote(parts.path[1:])}
    else:
        name = unquote(parts.path.lstrip("/"))
        if not name or not parts.hostname:
            raise ValueError(
                f"A postgresql:// DEMO_DATABASE_URL needs a host and a database name "
                f"(postgresql://user@host:port/name), got {url!r}."
            )
        database = {
            "ENGINE": engine, "NAME": name, "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""), "HOST": parts.hostname,
            "PORT": str(parts.port or ""),
            "OPTIONS": {"connect_timeout": _number(options, "connect_timeout",
                                                   DEFAULT_CONNECT_TIMEOUT)},
        }
    for key, setting in FLAGS.items():
        if key in options:
            database[setting] = _flag(options, key)
    if "conn_max_age" in options:
        database["CONN_MAX_AGE"] = _number(options, "conn_max_age", 0)
    if "pool_max_size" in options:
        if engine.endswith("sqlite3"):
            raise ValueError("pool_max_size is for PostgreSQL: Django pools no SQLite connections.")
        database["OPTIONS"]["pool"] = {  # type: ignore[index]
            "min_size": 0, "max_size": _number(options, "pool_max_size", 0),
            "timeout": _number(options, "pool_timeout", 30),
        }
    return database


def _flag(options: dict[str, str], key: str) -> bool:
    if options[key] not in ("0", "1"):
        raise ValueError(f"DEMO_DATABASE_URL option {key} is 0 or 1, got {options[key]!r}.")
    return options[key] == "1"


def _number(options: dict[str, str], key: str, default: int) -> int:
    raw = options.get(key)
    if raw is None:
        return default
    if not raw.isdigit():
        raise ValueError(f"DEMO_DATABASE_URL option {key} is a whole number >= 0, got {raw!r}.")
    return int(raw)
