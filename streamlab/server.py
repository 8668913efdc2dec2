"""Run the demo app under a real Gunicorn, as a subprocess, and always stop it.

A server is started in its own process group on 127.0.0.1 and a free port,
with its log captured to a file. Three things make sure it is stopped:

* ``stop()`` (or leaving a ``with`` block) terminates the whole process group;
* starting a server under a name that is already running stops the old one
  first, so re-running a notebook cell never leaves two servers behind;
* an ``atexit`` hook stops every server when Python exits, and the Gunicorn
  master watches its parent (see ``gunicorn_config.py``) for the case where
  Python is killed and no hook runs.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil
import requests

PROJECT_ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONFIG = Path(__file__).with_name("gunicorn_config.py")
HOST = "127.0.0.1"

WSGI_APP = "demo_app.wsgi:application"
ASGI_APP = "demo_app.asgi:application"

_servers: dict[str, DemoServer] = {}


class ServerStartError(RuntimeError):
    """Gunicorn did not start or did not answer; the message ends with its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class DemoServer:
    """The demo app under Gunicorn, on 127.0.0.1.

    Use it as a context manager in scripts and tests, or call ``start()`` and
    ``stop()`` from separate notebook cells.
    """

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
    ) -> None:
        self.worker_class = worker_class
        self.workers = workers
        self.threads = threads
        self.timeout = timeout
        self.graceful_timeout = graceful_timeout
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.name = name
        self.requested_port = port
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._log_text = ""

    # -- addresses ---------------------------------------------------------
    @property
    def app(self) -> str:
        return ASGI_APP if self.worker_class == "asgi" else WSGI_APP

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("The server has not been started yet: call start() first.")
        return f"http://{HOST}:{self.port}"

    def url(self, path: str = "/") -> str:
        """The full URL of ``path`` on this server."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    # -- lifecycle ---------------------------------------------------------
    def command(self, port: int) -> list[str]:
        """The Gunicorn command line this server runs."""
        cmd = [
            sys.executable, "-m", "gunicorn", self.app,
            "--config", str(GUNICORN_CONFIG),
            "--bind", f"{HOST}:{port}",
            "--chdir", str(PROJECT_ROOT),
            "--worker-class", self.worker_class,
            "--workers", str(self.workers),
            "--timeout", _num(self.timeout),
            "--graceful-timeout", _num(self.graceful_timeout),
        ]
        if self.threads is not None:
            cmd += ["--threads", str(self.threads)]
        return cmd + self.extra_args

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> DemoServer:
        """Start Gunicorn and wait until it answers; stop a running namesake first."""
        previous = _servers.get(self.name)
        if previous is not None and previous is not self:
            previous.stop()
        if self.running:
            return self
        attempts = 1 if self.requested_port else 3
        for attempt in range(attempts):
            port = self.requested_port or free_port()
            try:
                self._launch(port)
                self._wait_until_ready()
                break
            except ServerStartError:
                in_use = "Address already in use" in self.log
                self.stop()
                if not in_use or attempt == attempts - 1:
                    raise
            except BaseException:  # KeyboardInterrupt included: leave nothing behind
                self.stop()
                raise
        _servers[self.name] = self
        return self

    def _launch(self, port: int) -> None:
        self.port = port
        log = tempfile.NamedTemporaryFile(
            prefix=f"gunicorn-{self.name}-{port}-", suffix=".log", delete=False
        )
        self._log_path = Path(log.name)
        self._log_text = ""
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "demo_app.settings",
            "PYTHONUNBUFFERED": "1",
            "STREAMLAB_PARENT_PID": str(os.getpid()),
            **self.env,
        }
        with log:
            self.process = subprocess.Popen(
                self.command(port),
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as one
            )

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise ServerStartError(
                    f"Gunicorn exited with code {code} while starting. Its log:\n{self.log_tail()}"
                )
            try:
                requests.get(self.url("/"), timeout=1)
            except requests.ConnectionError:
                time.sleep(0.05)
                continue
            except requests.Timeout:
                continue
            if len(self.worker_processes()) >= self.workers:
                return
            time.sleep(0.05)
        raise ServerStartError(
            f"Gunicorn did not answer on {self.base_url} within {self.startup_timeout:g} s. "
            f"Its log:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """Stop the master and its workers (politely, then by force); keep the log."""
        process = self.process
        if process is not None:
            if process.poll() is None:
                _signal_group(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=self.graceful_timeout + 5)
                except subprocess.TimeoutExpired:
                    _signal_group(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
            # Workers left behind by a master that died abruptly share its group.
            _signal_group(process.pid, signal.SIGKILL)
        if self._log_path is not None:
            self._log_text = self._read_log()
            self._log_path.unlink(missing_ok=True)
            self._log_path = None
        if _servers.get(self.name) is self:
            del _servers[self.name]

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running on {self.base_url}" if self.running else "stopped"
        return f"<DemoServer {self.name!r} {self.worker_class} x{self.workers} {state}>"

    # -- inspection --------------------------------------------------------
    def _read_log(self) -> str:
        if self._log_path is None:
            return self._log_text
        try:
            return self._log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def log(self) -> str:
        """Everything Gunicorn and the app wrote so far (kept after ``stop()``)."""
        return self._read_log()

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.splitlines()[-lines:])

    def master_process(self) -> psutil.Process | None:
        if not self.running:
            return None
        assert self.process is not None
        try:
            return psutil.Process(self.process.pid)
        except psutil.NoSuchProcess:
            return None

    def worker_processes(self) -> list[psutil.Process]:
        """The worker processes now running (they handle the requests)."""
        master = self.master_process()
        if master is None:
            return []
        try:
            return master.children()
        except psutil.NoSuchProcess:
            return []

    def pids(self) -> list[int]:
        """The master's pid and the workers' pids."""
        master = self.master_process()
        return [] if master is None else [master.pid] + [p.pid for p in self.worker_processes()]


def _num(value: float) -> str:
    return f"{value:g}"


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def still_running(pids: Sequence[int], timeout: float = 10.0) -> list[int]:
    """Wait up to ``timeout`` seconds for ``pids`` to exit; return those still running.

    A process that has exited but not yet been reaped (a zombie) counts as gone.
    """
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while True:
        alive = [pid for pid in alive if _is_running(pid)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def _is_running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def start_server(**options: object) -> DemoServer:
    """Start a demo server (see ``DemoServer`` for the options) and return it.

    Calling it again with the same ``name`` stops the previous server first, so
    a notebook cell that starts a server can be re-run safely.
    """
    return DemoServer(**options).start()  # type: ignore[arg-type]


def running_servers() -> list[DemoServer]:
    return [s for s in _servers.values() if s.running]


def stop_all() -> None:
    """Stop every server this Python process started."""
    for server in list(_servers.values()):
        server.stop()


atexit.register(stop_all)
