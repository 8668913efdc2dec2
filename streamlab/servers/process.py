"""Start a server program as a subprocess, and always stop it.

``ManagedProcess`` is what the Gunicorn, nginx and Jupyter helpers share. A
process is started in its own process group with its output captured to a log
file; ``start()`` returns once the subclass's ``ready()`` says it answers, or
raises ``ServerStartError`` with the log's tail. Four things make sure it is
stopped:

* ``stop()`` (or leaving a ``with`` block) terminates the whole process group,
  politely, then by force;
* starting a process under a name that is already running stops the old one
  first, so re-running a notebook cell never leaves two behind (names are per
  kind: an nginx called "demo" and a Gunicorn called "demo" are two servers);
* an ``atexit`` hook stops every process when Python exits;
* a small watchdog process (``streamlab.servers.watchdog``) stops the group,
  and removes the temporary files it leaves, when the Python process that
  started it is killed and no hook can run (a kernel restart or crash). The
  watchdog must say it is watching before the server counts as started.

A server counts as ready only when ``ready()`` says so *and* the port is
listened on by a process of its own group: a foreign program that grabbed the
port first, and answers HTTP there, is never taken for ours.
"""

from __future__ import annotations

import atexit
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import psutil

HOST = "127.0.0.1"
PORT_IN_USE = ("Address already in use", "Connection in use", "is already in use")

WATCHDOG_START_TIMEOUT = 10.0

_processes: dict[tuple[str, str], ManagedProcess] = {}


class ServerStartError(RuntimeError):
    """A server did not start or did not answer; the message ends with its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class ManagedProcess:
    """A server program on 127.0.0.1 that this Python process owns.

    Subclasses say how to run it (``command``), where (``cwd``), with what
    extra environment (``environment``), and when it is ready (``ready``).
    """

    kind = "process"
    start_error: type[ServerStartError] = ServerStartError
    watchdog_module = "streamlab.servers.watchdog"

    def __init__(
        self,
        *,
        name: str,
        port: int | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float = 8.0,
    ) -> None:
        self.name = name
        self.requested_port = port
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._log_text = ""

    # -- what subclasses provide -------------------------------------------
    def command(self, port: int) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return {}

    cwd: Path | None = None
    # The signal that asks the program to stop: SIGTERM, unless it means something gentler
    # to the program (PostgreSQL waits for every client on SIGTERM; SIGINT is its fast stop).
    stop_signal: signal.Signals = signal.SIGTERM

    def popen_options(self) -> dict[str, object]:
        """Extra ``subprocess.Popen`` arguments (``user=`` for a program that refuses root)."""
        return {}

    def ready(self) -> bool:
        """True once the program answers; called repeatedly while starting."""
        raise NotImplementedError

    def temporary_paths(self) -> list[Path]:
        """Files and folders of this run that the watchdog removes if the owner is killed."""
        return [self._log_path] if self._log_path is not None else []

    # -- addresses ---------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"The {self.kind} has not been started yet: call start() first.")
        return f"http://{HOST}:{self.port}"

    def url(self, path: str = "/") -> str:
        """The full URL of ``path`` on this server."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    # -- lifecycle ---------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def key(self) -> tuple[str, str]:
        """The registry key: a name is unique within its kind of server."""
        return (self.kind, self.name)

    def start(self):
        """Start the program and wait until it is ready; stop a running namesake first."""
        previous = _processes.get(self.key)
        if previous is not None and previous is not self:
            previous.stop()
        if self.running:
            return self
        attempts = 1 if self.requested_port else 3
        for attempt in range(attempts):
            try:
                self._launch(self.requested_port or free_port())
                self._wait_until_ready()
                break
            except ServerStartError:
                port_taken = any(marker in self.log for marker in PORT_IN_USE)
                self.stop()
                if not port_taken or attempt == attempts - 1:
                    raise
            except BaseException:  # KeyboardInterrupt included: leave nothing behind
                self.stop()
                raise
        _processes[self.key] = self
        return self

    def _launch(self, port: int) -> None:
        self.port = port
        log = tempfile.NamedTemporaryFile(
            prefix=f"{self.kind}-{self.name}-{port}-", suffix=".log", delete=False
        )
        self._log_path = Path(log.name)
        self._log_text = ""
        with log:
            self.process = subprocess.Popen(
                self.command(port),
                cwd=self.cwd,
                env={**os.environ, **self.environment()},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as one
                **self.popen_options(),
            )
        self._start_watchdog()

    def _start_watchdog(self) -> None:
        """Start the watchdog and wait for its word that it is watching."""
        assert self.process is not None
        paths = [str(p) for p in self.temporary_paths()]
        self._watchdog = subprocess.Popen(
            [sys.executable, "-m", self.watchdog_module,
             str(os.getpid()), str(self.process.pid), *paths],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert self._watchdog.stdout is not None
        with self._watchdog.stdout as said:
            readable, _, _ = select.select([said], [], [], WATCHDOG_START_TIMEOUT)
            line = said.readline() if readable else b""
        if line.strip() != b"watching":
            code = self._watchdog.poll()
            raise self.start_error(
                f"The watchdog for the {self.kind} did not start (exit code {code}, said "
                f"{line!r}); without it a killed kernel would leave the server running. "
                f"Check that `{sys.executable} -m {self.watchdog_module}` runs."
            )

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise self.start_error(
                    f"The {self.kind} exited with code {code} while starting. "
                    f"Its log:\n{self.log_tail()}"
                )
            if self.listens() and self.ready():
                return
            time.sleep(0.05)
        raise self.start_error(
            f"The {self.kind} did not answer on {self.base_url} within "
            f"{self.startup_timeout:g} s. Its log:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """Stop the program and everything in its process group; keep the log.

        Every step runs even if an earlier one fails (the first error is
        raised afterwards): the watchdog is stopped, the log read and its file
        removed, and the registry entry dropped, whatever happened to the group.
        """
        with ExitStack() as cleanup:  # callbacks run last-in, first-out
            cleanup.callback(self._forget)
            cleanup.callback(self._keep_log)
            cleanup.callback(self._stop_watchdog)
            self._stop_group()

    def _stop_group(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            _signal_group(process.pid, self.stop_signal)
            try:
                process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        # Children left behind by a leader that died abruptly share its group.
        _signal_group(process.pid, signal.SIGKILL)

    def _stop_watchdog(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.kill()
            watchdog.wait()

    def _keep_log(self) -> None:
        if self._log_path is not None:
            self._log_text = self._read_log()
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def _forget(self) -> None:
        if _processes.get(self.key) is self:
            del _processes[self.key]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running on {self.base_url}" if self.running else "stopped"
        return f"<{type(self).__name__} {self.name!r} {state}>"

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
        """Everything the program wrote so far (kept after ``stop()``)."""
        return self._read_log()

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.splitlines()[-lines:])

    def main_process(self) -> psutil.Process | None:
        if not self.running:
            return None
        assert self.process is not None
        try:
            return psutil.Process(self.process.pid)
        except psutil.NoSuchProcess:
            return None

    def listens(self) -> bool:
        """Whether a process of this server's own tree listens on its port."""
        for pid in self.pids():
            try:
                connections = psutil.Process(pid).net_connections(kind="tcp")
            except psutil.Error:
                continue
            if any(c.status == psutil.CONN_LISTEN and c.laddr.port == self.port
                   for c in connections):
                return True
        return False

    def pids(self) -> list[int]:
        """The program's pid and those of all its descendants."""
        main = self.main_process()
        if main is None:
            return []
        try:
            return [main.pid] + [p.pid for p in main.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []


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


def running_processes() -> list[ManagedProcess]:
    """Every server this Python process started that is still running."""
    return [p for p in _processes.values() if p.running]


def stop_all() -> None:
    """Stop every server this Python process started."""
    for process in list(_processes.values()):
        process.stop()


atexit.register(stop_all)
