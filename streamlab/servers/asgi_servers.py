"""The ASGI servers people deploy Django on, started the same way as the demo server.

Gunicorn's own ``-k asgi`` worker is ``gunicorn.DemoServer``. Beside it, notebook 11
puts the other servers Django's deployment docs name:

``uvicorn``         uvicorn alone, one process (its ``h11`` HTTP/1.1 protocol);
``uvicorn-worker``  uvicorn's protocol inside Gunicorn's master (``uvicorn-worker``);
``daphne``          Daphne, on Twisted (the server Django Channels names first);
``hypercorn``       Hypercorn, on asyncio, with one spawned worker process;
``granian``         Granian, HTTP written in Rust, with one spawned worker process.

Each is a ``ManagedProcess``: its own process group, the log shown when it fails to
start, the watchdog, the registry, ``stop()``; it counts as ready once the app answers
and a process of its own tree listens on the port, as every server of the series does.
``worker_processes()`` is the process (or processes) that runs the application, so
``measure(..., server=...)`` samples the same memory on each.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import importlib.util
import inspect
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..paths import PROJECT_ROOT
from .gunicorn import ASGI_APP, GUNICORN_CONFIG, DemoAppProcess, DemoServer
from .process import HOST, ManagedProcess, _is_running


@dataclass(frozen=True)
class ServerKind:
    """One server the series can start: its name, what to install, what it is, and the
    function of its own source that turns a closed connection into ``http.disconnect``."""

    name: str
    package: str  # the distribution on the package index
    module: str  # imported to tell whether it is installed
    about: str
    disconnect_hook: str = ""  # "module:Qualified.name"; "" when it is not Python

    def disconnect_source(self) -> str:
        """Where the installed source hands the app its ``http.disconnect``: file, line and
        the function's first line that names the disconnect."""
        if not self.disconnect_hook:
            return "in the compiled core (no Python source)"
        module_name, qualname = self.disconnect_hook.split(":")
        obj: object = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        lines, first = inspect.getsourcelines(obj)  # type: ignore[arg-type]
        path = Path(inspect.getsourcefile(obj) or "?")  # type: ignore[arg-type]
        where = path.relative_to(path.parents[len(module_name.split(".")) - 1])
        code = re.compile(r"disconnect\w*\(|http\.disconnect|disconnected = True")
        number, text = next(((first + i, line.strip()) for i, line in enumerate(lines)
                             if code.search(line) and not line.strip().startswith("#")),
                            (first, lines[0].strip()))
        return f"{where}:{number} {qualname}: {text}"

    @property
    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    @property
    def version(self) -> str:
        return importlib.metadata.version(self.package)


UVICORN_HOOK = "uvicorn.protocols.http.h11_impl:H11Protocol.connection_lost"
GUNICORN = ServerKind("gunicorn", "gunicorn", "gunicorn",
                      "Gunicorn 27: sync, gthread, gevent or its own asgi worker",
                      "gunicorn.asgi.protocol:ASGIProtocol.connection_lost")
OTHER_SERVERS = {
    kind.name: kind for kind in (
        ServerKind("uvicorn", "uvicorn", "uvicorn", "uvicorn alone, one process",
                   UVICORN_HOOK),
        ServerKind("uvicorn-worker", "uvicorn-worker", "uvicorn_worker",
                   "uvicorn's protocol in Gunicorn's master", UVICORN_HOOK),
        ServerKind("daphne", "daphne", "daphne", "Daphne, on Twisted",
                   "daphne.http_protocol:WebRequest.connectionLost"),
        ServerKind("hypercorn", "hypercorn", "hypercorn", "Hypercorn, on asyncio",
                   "hypercorn.protocol.http_stream:HTTPStream.handle"),
        ServerKind("granian", "granian", "granian", "Granian, HTTP in Rust"),
    )
}
SERVERS = {GUNICORN.name: GUNICORN, **OTHER_SERVERS}


def server_kind(name: str) -> ServerKind:
    """The server called ``name``, installed; a clear error otherwise."""
    try:
        kind = SERVERS[name]
    except KeyError:
        raise ValueError(
            f"Unknown server {name!r}: choose one of {', '.join(SERVERS)}."
        ) from None
    if not kind.installed:
        raise ModuleNotFoundError(
            f"The {name} server is not installed in this environment ({sys.executable}): "
            f"`{sys.executable} -m pip install {kind.package}`, or `make install`."
        )
    return kind


class AppServer(DemoAppProcess):
    """The demo app's ASGI entry point under a server other than Gunicorn's asgi worker.

    Subclasses give the command line (``server_args``) and say which processes run
    the application (``worker_processes``). One worker process each, 127.0.0.1 only.
    """

    server = ""
    cwd = PROJECT_ROOT
    worker_class = "asgi"  # what the series' helpers ask of a server: it runs ASGI
    app = ASGI_APP

    def __init__(
        self,
        *,
        name: str = "demo",
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(name=name, port=port, startup_timeout=startup_timeout,
                         stop_timeout=8.0)
        self.env = dict(env or {})
        self.extra_args = list(extra_args)
        self.workers = 1
        self.http2 = False

    @property
    def kind(self) -> str:  # the registry's key and the log's prefix: one per server
        return self.server

    @property
    def version(self) -> str:
        return SERVERS[self.server].version

    def server_args(self, port: int) -> list[str]:
        raise NotImplementedError

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", *self.server_args(port), *self.extra_args]

    def worker_processes(self) -> list[psutil.Process]:
        """The processes that run the application: by default, the server's own."""
        main = self.main_process()
        return [main] if main is not None else []

    def __repr__(self) -> str:
        state = f"running on {self.base_url}" if self.running else "stopped"
        return f"<{type(self).__name__} {self.name!r} {self.server} {self.version} {state}>"


class _SpawnedWorkers:
    """For servers whose main process supervises spawned worker processes."""

    def worker_processes(self) -> list[psutil.Process]:
        main = self.main_process()  # type: ignore[attr-defined]
        if main is None:
            return []
        try:
            children = [p for p in main.children() if _is_running(p.pid)]
        except psutil.NoSuchProcess:
            return []
        # multiprocessing's resource tracker is a helper, not a worker.
        return [p for p in children if "resource_tracker" not in " ".join(_cmdline(p))]


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


class UvicornServer(AppServer):
    """``uvicorn`` alone: the application runs in the one process that listens."""

    server = "uvicorn"

    def server_args(self, port: int) -> list[str]:
        # h11: the pure-Python protocol (httptools is the faster option of uvicorn[standard]);
        # no lifespan: Django's ASGI handler does not implement it.
        return ["uvicorn", self.app, "--host", HOST, "--port", str(port),
                "--http", "h11", "--lifespan", "off", "--no-access-log"]


class DaphneServer(AppServer):
    """Daphne: Twisted's reactor in one process runs the application."""

    server = "daphne"

    def server_args(self, port: int) -> list[str]:
        return ["daphne", "-b", HOST, "-p", str(port), self.app]


class HypercornServer(_SpawnedWorkers, AppServer):
    """Hypercorn: its main process spawns one worker (``--workers 1``) that runs the app."""

    server = "hypercorn"

    def server_args(self, port: int) -> list[str]:
        return ["hypercorn", "--bind", f"{HOST}:{port}", "--workers", "1", self.app]


class GranianServer(_SpawnedWorkers, AppServer):
    """Granian: its main process spawns one worker; HTTP is handled in Rust there."""

    server = "granian"

    def server_args(self, port: int) -> list[str]:
        # asginl: ASGI without the lifespan protocol, which Django does not implement.
        return ["granian", "--interface", "asginl", "--host", HOST, "--port", str(port),
                "--workers", "1", "--no-ws", self.app]


class UvicornWorkerServer(DemoServer):
    """uvicorn's protocol as a Gunicorn worker class: Gunicorn's master, uvicorn's worker."""

    server = "uvicorn-worker"
    kind = "uvicorn-worker"
    WORKER_CLASS = "uvicorn_worker.UvicornH11Worker"

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.worker_class = self.WORKER_CLASS

    @property
    def app(self) -> str:
        return ASGI_APP

    @property
    def version(self) -> str:
        return SERVERS[self.server].version


def server_defaults() -> list[dict[str, object]]:
    """The defaults that matter to a long response, read from each installed server's own
    configuration object (its CLI's or config class's default), one row per setting."""
    import daphne.server
    import gunicorn.config
    import hypercorn.config
    import uvicorn.config
    from granian.cli import cli as granian_cli
    from granian.http import HTTP1Settings

    def param(function, name: str) -> object:
        return inspect.signature(function).parameters[name].default

    granian_options = {p.name: p.default for p in granian_cli.params}
    loop = asyncio.new_event_loop()
    try:  # the write-buffer limits every asyncio transport starts with
        _, high_water = asyncio.transports._FlowControlMixin(loop=loop).get_write_buffer_limits()
    finally:
        loop.close()
    uvicorn_config = uvicorn.config.Config.__init__
    hypercorn_config = hypercorn.config.Config
    rows = [
        ("gunicorn", "--keep-alive (idle between requests)",
         gunicorn.config.Keepalive.default, "s"),
        ("gunicorn", "--timeout (a worker silent this long is killed; sync/gthread)",
         gunicorn.config.Timeout.default, "s"),
        ("gunicorn", "--backlog", gunicorn.config.Backlog.default, ""),
        ("uvicorn", "timeout_keep_alive (idle between requests)",
         param(uvicorn_config, "timeout_keep_alive"), "s"),
        ("uvicorn", "backlog", param(uvicorn_config, "backlog"), ""),
        ("daphne", "http_timeout (a whole response)",
         param(daphne.server.Server.__init__, "http_timeout"), "s"),
        ("daphne", "application_close_timeout",
         param(daphne.server.Server.__init__, "application_close_timeout"), "s"),
        ("hypercorn", "keep_alive_timeout (idle between requests)",
         hypercorn_config.keep_alive_timeout, "s"),
        ("hypercorn", "read_timeout", hypercorn_config.read_timeout, "s"),
        ("hypercorn", "backlog", hypercorn_config.backlog, ""),
        ("gunicorn asgi, uvicorn, hypercorn", "asyncio's write buffer high-water mark "
         "(send waits above it)", high_water, "bytes"),
        ("granian", "http1 header_read_timeout", HTTP1Settings.header_read_timeout, "ms"),
        ("granian", "--backlog", granian_options["backlog"], ""),
    ]
    return [{"server": server, "setting": name, "default": "none" if value is None else value,
             "unit": unit if value is not None else ""} for server, name, value, unit in rows]


SERVER_CLASSES: dict[str, type[ManagedProcess]] = {
    "uvicorn": UvicornServer,
    "uvicorn-worker": UvicornWorkerServer,
    "daphne": DaphneServer,
    "hypercorn": HypercornServer,
    "granian": GranianServer,
}
assert set(SERVER_CLASSES) == set(OTHER_SERVERS)
__all__ = ["GUNICORN_CONFIG", "SERVERS", "SERVER_CLASSES", "server_kind"]
