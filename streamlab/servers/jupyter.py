"""A private Jupyter server, to measure what jupyter-server-proxy does to a stream.

On Binder (and in any JupyterLab with jupyter-server-proxy installed) the
learner's browser reaches the demo app through the notebook server, at
``<base>/proxy/<port>/...``. Whether that path streams depends on the proxy,
so the notebooks measure it: this module starts a Jupyter server on 127.0.0.1
(a ``ManagedProcess``, stopped like every other server) and gives the proxied
URL and the token to send with it.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

import requests

from .process import HOST, ManagedProcess


class JupyterServer(ManagedProcess):
    """``jupyter server`` (with JupyterLab) on 127.0.0.1 and a random token.

    It serves ``root_dir``, or an empty temporary folder when none is given.
    ``hub_prefix`` (e.g. ``"/user/ada/"``) makes it look like a JupyterHub
    single-user server, as on Binder: everything lives under that prefix, the
    kernels get ``JUPYTERHUB_SERVICE_PREFIX``, and requests may carry any
    ``Host`` (``allow_remote_access``: the hub's proxy forwards the browser's,
    which names the hub, not this machine). It still listens on 127.0.0.1 only.
    """

    kind = "jupyter"

    def __init__(
        self, *, name: str = "jupyter", root_dir: str | os.PathLike | None = None,
        startup_timeout: float = 60.0, hub_prefix: str | None = None,
    ) -> None:
        super().__init__(name=name, startup_timeout=startup_timeout)
        self.token = secrets.token_hex(16)
        self._private = tempfile.TemporaryDirectory(prefix="streamlab-jupyter-")
        self.root_dir = str(root_dir or self._private.name)
        if hub_prefix is not None and not (hub_prefix.startswith("/") and hub_prefix.endswith("/")):
            raise ValueError(f"hub_prefix must start and end with '/', got {hub_prefix!r}")
        self.hub_prefix = hub_prefix

    def url(self, path: str = "/") -> str:
        """The full URL of ``path`` on this server (under the hub prefix, if any)."""
        prefix = (self.hub_prefix or "/").rstrip("/")
        return self.base_url + prefix + (path if path.startswith("/") else "/" + path)

    def command(self, port: int) -> list[str]:
        cmd = [
            sys.executable, "-m", "jupyter_server", "--no-browser",
            f"--ServerApp.ip={HOST}", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root_dir}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # containers and CI machines often run as root
        if self.hub_prefix is not None:
            cmd += [f"--ServerApp.base_url={self.hub_prefix}",
                    "--ServerApp.allow_remote_access=True"]
        return cmd

    def environment(self) -> dict[str, str]:
        # Keep the server's runtime files (connection files, cookies secret) private.
        env = {"JUPYTER_RUNTIME_DIR": os.path.join(self._private.name, "runtime")}
        if self.hub_prefix is not None:  # what a hub's spawner sets; kernels inherit it
            env["JUPYTERHUB_SERVICE_PREFIX"] = self.hub_prefix
        return env

    def temporary_paths(self) -> list[Path]:
        return [*super().temporary_paths(), Path(self._private.name)]

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def ready(self) -> bool:
        try:
            reply = requests.get(self.url("/api/status"), headers=self.auth_headers, timeout=1)
        except requests.RequestException:
            return False
        return reply.status_code == 200

    def proxied_url(self, port: int, path: str = "/") -> str:
        """The URL of ``path`` on 127.0.0.1:``port`` as seen through jupyter-server-proxy."""
        return self.url(f"/proxy/{port}" + (path if path.startswith("/") else "/" + path))


def proxy_link(port: int, path: str = "/") -> str:
    """A link to the demo app through the notebook server, for the learner's own browser.

    It is an absolute path on the page's own host, so it works in a local
    JupyterLab (``/proxy/8000/``) and on Binder or JupyterHub, where the
    server lives under ``JUPYTERHUB_SERVICE_PREFIX`` (``/user/<name>/proxy/...``).
    """
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    if not prefix.endswith("/"):
        prefix += "/"
    return f"{prefix}proxy/{port}" + (path if path.startswith("/") else "/" + path)
