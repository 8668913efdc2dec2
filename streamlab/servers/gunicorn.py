"""Run the demo app under a real Gunicorn, as a subprocess, and always stop it.

``DemoServer`` is a ``ManagedProcess`` (see ``process.py`` for how every
server is started, watched and stopped): Gunicorn on 127.0.0.1 and a free
port, ready once the app answers and all its workers have booted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil
import requests

from ..paths import PROJECT_ROOT
from .process import HOST, ManagedProcess, _is_running, running_processes

GUNICORN_CONFIG = Path(__file__).with_name("gunicorn_config.py")

WSGI_APP = "demo_app.wsgi:application"
ASGI_APP = "demo_app.asgi:application"

# HTTP/2 beside HTTP/1.1 on the same port, cleartext: a loopback peer (trusted through
# Gunicorn's forwarded_allow_ips, 127.0.0.1 by default) may open with the HTTP/2 preface
# (prior knowledge) or ask to upgrade; any other request is served as HTTP/1.1. With
# "prior-knowledge" alone, Gunicorn would answer a trusted peer's HTTP/1.1 request with 400.
HTTP2_ARGS = ("--http-protocols", "h2,h1", "--http2-cleartext", "both")
# The workers that serve HTTP/2 (gunicorn/workers/gthread.py, base_async.py for gevent,
# asgi/protocol.py). The sync worker logs a warning and stays on HTTP/1.1, which a notebook
# shows; any other worker would ignore the setting without a word, so it is refused.
HTTP2_WORKERS = ("gthread", "asgi", "gevent")

class DemoAppProcess(ManagedProcess):
    """What every server of the demo app shares, whichever program runs it: Django's
    settings in the environment, and ready once the app answers and every worker runs."""

    env: dict[str, str]
    workers: int

    def environment(self) -> dict[str, str]:
        return {"DJANGO_SETTINGS_MODULE": "demo_app.settings", "PYTHONUNBUFFERED": "1",
                **hub_hosts(), **self.env}

    def ready(self) -> bool:
        try:
            requests.get(self.url("/"), timeout=1)
        except requests.RequestException:
            return False
        return len(self.worker_processes()) >= self.workers

    def worker_processes(self) -> list[psutil.Process]:
        raise NotImplementedError


class DemoServer(DemoAppProcess):
    """The demo app under Gunicorn, on 127.0.0.1.

    Use it as a context manager in scripts and tests, or call ``start()`` and
    ``stop()`` from separate notebook cells.
    """

    kind = "gunicorn"
    cwd = PROJECT_ROOT

    def __init__(
        self,
        *,
        worker_class: str = "sync",
        workers: int = 1,
        threads: int | None = None,
        timeout: float = 30,
        graceful_timeout: float = 3,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        name: str = "demo",
        port: int | None = None,
        startup_timeout: float = 30.0,
        http2: bool = False,
    ) -> None:
        if http2 and worker_class not in (*HTTP2_WORKERS, "sync"):
            raise ValueError(
                f"Gunicorn's {worker_class} worker does not speak HTTP/2 and would ignore "
                f"http2=True silently: use one of {', '.join(HTTP2_WORKERS)}."
            )
        super().__init__(
            name=name, port=port, startup_timeout=startup_timeout,
            stop_timeout=graceful_timeout + 5,
        )
        self.worker_class = worker_class
        self.workers = workers
        self.threads = threads
        self.timeout = timeout
        self.graceful_timeout = graceful_timeout
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.http2 = http2

    @property
    def app(self) -> str:
        return ASGI_APP if self.worker_class == "asgi" else WSGI_APP

    def command(self, port: int) -> list[str]:
        """The Gunicorn command line this server runs."""
        cmd = [
            sys.executable, "-m", "gunicorn", self.app,
            "--config", str(GUNICORN_CONFIG),
            "--bind", f"{HOST}:{port}",
            "--chdir", str(PROJECT_ROOT),
            "--worker-class", self.worker_class,
            "--workers", str(self.workers),
            "--timeout", f"{self.timeout:g}",
            "--graceful-timeout", f"{self.graceful_timeout:g}",
        ]
        if self.threads is not None:
            cmd += ["--threads", str(self.threads)]
        if self.http2:
            cmd += HTTP2_ARGS
        return cmd + self.extra_args

    def __repr__(self) -> str:
        state = f"running on {self.base_url}" if self.running else "stopped"
        http2 = " +HTTP/2" if self.http2 else ""
        return f"<DemoServer {self.name!r} {self.worker_class}{http2} x{self.workers} {state}>"

    def master_process(self) -> psutil.Process | None:
        """Gunicorn's master: it owns the listening socket and forks the workers."""
        return self.main_process()

    def worker_processes(self) -> list[psutil.Process]:
        """The worker processes now running (they handle the requests): not one that has
        exited and waits for the master to reap it (a zombie)."""
        master = self.main_process()
        if master is None:
            return []
        try:
            return [p for p in master.children() if _is_running(p.pid)]
        except psutil.NoSuchProcess:
            return []


def hub_hosts() -> dict[str, str]:
    """``DJANGO_ALLOWED_HOSTS=*`` on a JupyterHub (Binder included), else nothing.

    There the learner's browser reaches the app through jupyter-server-proxy,
    which forwards the browser's ``Host``: the hub's public name, which the
    kernel cannot know (``JUPYTERHUB_SERVICE_PREFIX`` says only that a hub is
    in front). Django would refuse it with a 400 (``DisallowedHost``). Any host
    is safe to accept there because the app still listens on 127.0.0.1 only:
    the one way in from outside is the hub's proxy, which wants the learner's login.
    """
    return {"DJANGO_ALLOWED_HOSTS": "*"} if os.environ.get("JUPYTERHUB_SERVICE_PREFIX") else {}


def start_server(server: str = "gunicorn", **options: object) -> ManagedProcess:
    """Start a demo server and return it: Gunicorn (see ``DemoServer`` for the options)
    by default, or another ASGI server by name (``server="uvicorn"``; the choices are
    ``streamlab.servers.asgi_servers.SERVERS``).

    Calling it again with the same ``name`` stops the previous server first, so
    a notebook cell that starts a server can be re-run safely.
    """
    from .asgi_servers import SERVER_CLASSES, server_kind  # it builds on this module

    server_kind(server)  # an unknown or missing server: a clear error, before anything runs
    cls = DemoServer if server == "gunicorn" else SERVER_CLASSES[server]
    return cls(**options).start()  # type: ignore[arg-type]


def running_servers() -> list[ManagedProcess]:
    """The demo servers (any server of the demo app) this Python process started that are
    still running."""
    from .asgi_servers import AppServer

    return [p for p in running_processes() if isinstance(p, DemoServer | AppServer)]
