"""Put nginx in front of a demo server, as a reverse proxy, and always stop it.

In production a Django app rarely talks to clients directly: a reverse proxy
such as nginx sits in between, and by default nginx *buffers* the app's
response (``proxy_buffering on``). This module starts a private nginx on
127.0.0.1 and a free port, proxying to a running ``DemoServer``, so the
effect of buffering can be measured.

Each proxy gets its own temporary prefix directory holding its config, pid
file, logs and temp files; nothing outside it is touched. nginx runs in the
foreground (``daemon off``) in its own process group, and is stopped by
``stop()``, by leaving a ``with`` block, or by an ``atexit`` hook; on Linux
the kernel also sends it SIGTERM if the Python process that started it dies
without running its hooks (a killed notebook kernel).

nginx is optional: ``nginx_available()`` says whether a binary is on ``PATH``
(setting ``STREAMLAB_NO_NGINX=1`` makes it say no, to try the skipped path).
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from .server import HOST, DemoServer, free_port

_proxies: dict[str, NginxProxy] = {}
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

CONFIG_TEMPLATE = """\
# Written by streamlab.nginx for one demo run; everything lives under the prefix.
{user_line}worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;

events {{
    worker_connections 64;
}}

http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/tmp/client_body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;

    server {{
        listen {host}:{port};
        location / {{
            proxy_pass {upstream};
            proxy_set_header Host $http_host;{extra}
        }}
    }}
}}
"""


class NginxStartError(RuntimeError):
    """nginx did not start or did not answer; the message ends with its error log."""


def nginx_available() -> bool:
    """True when an ``nginx`` binary is on PATH (and ``STREAMLAB_NO_NGINX`` is not 1)."""
    if os.environ.get("STREAMLAB_NO_NGINX") == "1":
        return False
    return shutil.which("nginx") is not None


def nginx_version() -> str | None:
    """nginx's own version line (it prints it on stderr), or None without nginx."""
    binary = shutil.which("nginx") if nginx_available() else None
    if binary is None:
        return None
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10)
    return (out.stderr or out.stdout).strip()


class NginxProxy:
    """nginx on 127.0.0.1 and a free port, forwarding every request to ``upstream``.

    ``buffering`` sets ``proxy_buffering`` on or off; ``None`` leaves the
    directive out, so nginx's own default applies (on). ``extra_directives``
    are added to the ``location`` block as they are.
    """

    def __init__(
        self,
        upstream: DemoServer,
        *,
        buffering: bool | None = True,
        extra_directives: list[str] | None = None,
        name: str = "nginx",
        startup_timeout: float = 15.0,
    ) -> None:
        self.upstream = upstream
        self.buffering = buffering
        self.extra_directives = list(extra_directives or [])
        self.name = name
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self.prefix: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._error_log_text = ""

    # -- addresses ---------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("nginx has not been started yet: call start() first.")
        return f"http://{HOST}:{self.port}"

    def url(self, path: str = "/") -> str:
        """The URL of ``path`` through the proxy."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    # -- configuration -----------------------------------------------------
    def config_text(self, port: int, prefix: Path) -> str:
        """The nginx.conf this proxy runs with."""
        # Run as root, nginx would switch its worker to "nobody", which cannot
        # enter the private prefix; as anyone else the directive is ignored.
        user_line = f"user {pwd.getpwuid(os.getuid()).pw_name};\n" if os.getuid() == 0 else ""
        directives = list(self.extra_directives)
        if self.buffering is not None:
            directives.insert(0, f"proxy_buffering {'on' if self.buffering else 'off'}")
        extra = "".join(f"\n            {d.rstrip(';')};" for d in directives)
        return CONFIG_TEMPLATE.format(
            user_line=user_line,
            prefix=prefix,
            host=HOST,
            port=port,
            upstream=self.upstream.base_url,
            extra=extra,
        )

    @property
    def config(self) -> str:
        """The config file's text, once started."""
        if self.prefix is None:
            raise RuntimeError("nginx has not been started yet: call start() first.")
        return (self.prefix / "nginx.conf").read_text()

    # -- lifecycle ---------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> NginxProxy:
        """Write the config, start nginx in the foreground, wait until it answers."""
        binary = shutil.which("nginx") if nginx_available() else None
        if binary is None:
            raise NginxStartError(
                "No nginx binary on PATH: install nginx (e.g. apt-get install nginx) "
                "or skip the proxy demos."
            )
        previous = _proxies.get(self.name)
        if previous is not None and previous is not self:
            previous.stop()
        if self.running:
            return self
        if not self.upstream.running:
            raise NginxStartError(f"The upstream {self.upstream!r} is not running: start it first.")
        self.prefix = Path(tempfile.mkdtemp(prefix=f"streamlab-{self.name}-"))
        (self.prefix / "tmp").mkdir()
        self.port = free_port()
        conf = self.prefix / "nginx.conf"
        conf.write_text(self.config_text(self.port, self.prefix))
        log = (self.prefix / "stderr.log").open("wb")
        with log:
            self.process = subprocess.Popen(
                # -e: the startup error log, before the config's error_log is read.
                [binary, "-p", str(self.prefix), "-c", str(conf), "-e", str(self.error_log_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as one
                preexec_fn=_die_with_parent(),
            )
        _proxies[self.name] = self
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def error_log_path(self) -> Path:
        if self.prefix is None:
            raise RuntimeError("nginx has not been started yet: call start() first.")
        return self.prefix / "error.log"

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise NginxStartError(
                    f"nginx exited with code {code} while starting. Its log:\n{self.log_tail()}"
                )
            try:
                requests.get(self.url("/"), timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.05)
        raise NginxStartError(
            f"nginx did not answer on {self.base_url} within {self.startup_timeout:g} s. "
            f"Its log:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """Stop nginx (quickly, then by force), keep its error log text, remove the prefix."""
        process = self.process
        if process is not None:
            if process.poll() is None:
                _signal_group(process.pid, signal.SIGTERM)  # nginx: fast shutdown
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    _signal_group(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
            _signal_group(process.pid, signal.SIGKILL)  # a worker left behind
        if self.prefix is not None:
            self._error_log_text = self._read_logs()
            shutil.rmtree(self.prefix, ignore_errors=True)
            self.prefix = None
        if _proxies.get(self.name) is self:
            del _proxies[self.name]

    def __enter__(self) -> NginxProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running on {self.base_url}" if self.running else "stopped"
        buffering = {True: "on", False: "off", None: "default"}[self.buffering]
        return f"<NginxProxy {self.name!r} proxy_buffering {buffering} {state}>"

    # -- inspection --------------------------------------------------------
    def _read_logs(self) -> str:
        if self.prefix is None:
            return self._error_log_text
        parts = []
        for name in ("stderr.log", "error.log"):
            try:
                parts.append((self.prefix / name).read_text(errors="replace"))
            except FileNotFoundError:
                pass
        return "".join(parts)

    @property
    def log(self) -> str:
        """nginx's startup output and error log (kept after ``stop()``)."""
        return self._read_logs()

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.splitlines()[-lines:])


def _die_with_parent():
    """On Linux, a function that makes the child get SIGTERM when this process dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    # Looked up here, in the parent: the child only makes one C call before exec.
    return lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def start_nginx(upstream: DemoServer, **options: object) -> NginxProxy:
    """Start nginx in front of ``upstream`` (see ``NginxProxy`` for the options).

    Calling it again with the same ``name`` stops the previous proxy first.
    """
    return NginxProxy(upstream, **options).start()  # type: ignore[arg-type]


def stop_all() -> None:
    """Stop every proxy this Python process started."""
    for proxy in list(_proxies.values()):
        proxy.stop()


atexit.register(stop_all)
