"""Put nginx in front of a demo server, as a reverse proxy, and always stop it.

In production a Django app rarely talks to clients directly: a reverse proxy
such as nginx sits in between, and by default nginx *buffers* the app's
response (``proxy_buffering on``). This module starts a private nginx on
127.0.0.1 and a free port, proxying to a running ``DemoServer``, so the
effect of buffering can be measured.

Each proxy gets its own temporary prefix directory holding its config, pid
file and temp files; nothing outside it is touched. nginx runs in the
foreground (``daemon off``) and logs to its standard error, which the log
captures. It is a ``ManagedProcess``, so it is started, watched and stopped
like every other server of the project (see ``processes.py``).

For ``X-Accel-Redirect`` (the app names a file, nginx sends it),
``internal_locations`` maps URI prefixes to folders: each becomes an
``internal`` location that only such a redirect can reach, never a client.

nginx is optional: ``nginx_available()`` says whether a binary is on ``PATH``
(setting ``STREAMLAB_NO_NGINX=1`` makes it say no, to try the skipped path).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

import requests

from .gunicorn import DemoServer
from .process import HOST, ManagedProcess, ServerStartError

CONFIG_TEMPLATE = """\
# Written by streamlab.servers.nginx for one demo run; everything lives under the prefix.
{user_line}worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log stderr info;

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
        }}{internal}
    }}
}}
"""


INTERNAL_LOCATION = """

        location {uri} {{
            internal;
            alias "{folder}/";
        }}"""


class NginxStartError(ServerStartError):
    """nginx did not start or did not answer; the message ends with its log."""


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


class NginxProxy(ManagedProcess):
    """nginx on 127.0.0.1 and a free port, forwarding every request to ``upstream``.

    ``buffering`` sets ``proxy_buffering`` on or off; ``None`` leaves the
    directive out, so nginx's own default applies (on). ``extra_directives``
    are added to the ``location`` block as they are. ``internal_locations``
    maps a URI prefix (``"/protected-files/"``) to the folder nginx serves it
    from, reachable only through an ``X-Accel-Redirect`` from the app.
    """

    kind = "nginx"
    start_error = NginxStartError

    def __init__(
        self,
        upstream: DemoServer,
        *,
        buffering: bool | None = True,
        extra_directives: list[str] | None = None,
        internal_locations: Mapping[str, str | Path] | None = None,
        name: str = "nginx",
        startup_timeout: float = 15.0,
    ) -> None:
        super().__init__(name=name, startup_timeout=startup_timeout, stop_timeout=5.0)
        self.upstream = upstream
        self.buffering = buffering
        self.extra_directives = list(extra_directives or [])
        locations = internal_locations or {}
        self.internal_locations = {_location_uri(u): _folder(f) for u, f in locations.items()}
        self.prefix: Path | None = None

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
        internal = "".join(
            INTERNAL_LOCATION.format(uri=uri, folder=folder)
            for uri, folder in self.internal_locations.items()
        )
        return CONFIG_TEMPLATE.format(
            user_line=user_line,
            prefix=prefix,
            host=HOST,
            port=port,
            upstream=self.upstream.base_url,
            extra=extra,
            internal=internal,
        )

    @property
    def config(self) -> str:
        """The config file's text, once started."""
        if self.prefix is None:
            raise RuntimeError("nginx has not been started yet: call start() first.")
        return (self.prefix / "nginx.conf").read_text()

    # -- what ManagedProcess needs -----------------------------------------
    def command(self, port: int) -> list[str]:
        assert self.prefix is not None
        conf = self.prefix / "nginx.conf"
        conf.write_text(self.config_text(port, self.prefix))
        # -e: where errors go before the config's error_log is read.
        return [self._binary, "-p", str(self.prefix), "-c", str(conf), "-e", "stderr"]

    def ready(self) -> bool:
        try:
            requests.get(self.url("/"), timeout=1)
        except requests.RequestException:
            return False
        return True

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> NginxProxy:
        """Write the config, start nginx in the foreground, wait until it answers."""
        binary = shutil.which("nginx") if nginx_available() else None
        if binary is None:
            raise NginxStartError(
                "No nginx binary on PATH: install nginx (e.g. apt-get install nginx) "
                "or skip the proxy demos."
            )
        if self.running:
            return self
        if not self.upstream.running:
            raise NginxStartError(f"The upstream {self.upstream!r} is not running: start it first.")
        self._binary = binary
        self.prefix = Path(tempfile.mkdtemp(prefix=f"streamlab-{self.name}-"))
        (self.prefix / "tmp").mkdir()
        return super().start()

    def stop(self) -> None:
        """Stop nginx (fast shutdown, then by force), keep its log, remove the prefix."""
        try:
            super().stop()
        finally:
            if self.prefix is not None:
                shutil.rmtree(self.prefix, ignore_errors=True)
                self.prefix = None

    def temporary_paths(self) -> list[Path]:
        return super().temporary_paths() + ([self.prefix] if self.prefix else [])

    def __repr__(self) -> str:
        state = f"running on {self.base_url}" if self.running else "stopped"
        buffering = {True: "on", False: "off", None: "default"}[self.buffering]
        return f"<NginxProxy {self.name!r} proxy_buffering {buffering} {state}>"


def _location_uri(uri: str) -> str:
    """``uri`` checked for use in a config: a prefix like ``/name/``, nothing nginx would parse."""
    if not (uri.startswith("/") and uri.endswith("/")) or any(c in uri for c in " ;{}\"'$#\\"):
        raise ValueError(
            f"An internal location must look like '/name/' (no spaces, quotes or ;{{}}$#), "
            f"got {uri!r}."
        )
    return uri


def _folder(folder: str | Path) -> Path:
    """``folder`` as an absolute path that fits in a quoted nginx string."""
    path = Path(folder).resolve()
    if any(c in str(path) for c in '"\\$'):
        raise ValueError(f"nginx cannot be given a folder whose path has \" \\ or $: {path}")
    return path


def start_nginx(upstream: DemoServer, **options: object) -> NginxProxy:
    """Start nginx in front of ``upstream`` (see ``NginxProxy`` for the options).

    Calling it again with the same ``name`` stops the previous proxy first.
    """
    return NginxProxy(upstream, **options).start()  # type: ignore[arg-type]
