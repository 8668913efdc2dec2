"""What is installed: versions that the series' claims depend on, and optional tools."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version

PACKAGES = ("django", "gunicorn", "requests", "urllib3", "matplotlib", "psutil", "jupyterlab")
TOOLS = ("curl", "nginx")


def package_versions() -> dict[str, str | None]:
    """Installed version of each package the series talks about (None if missing)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def tool_version(name: str) -> str | None:
    """The first line a command-line tool prints about its version, or None if absent."""
    path = shutil.which(name)
    if path is None:
        return None
    flag = "-v" if name == "nginx" else "--version"
    try:
        out = subprocess.run([path, flag], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{path} (version unknown: {exc})"
    text = (out.stdout or out.stderr).strip()  # nginx prints its version on stderr
    # The first line, without curl's long list of linked libraries.
    return text.splitlines()[0].split(" (")[0] if text else path


def report() -> dict[str, str | None]:
    """Packages and tools in one mapping, for a table in a notebook."""
    found = package_versions()
    found.update({tool: tool_version(tool) for tool in TOOLS})
    found["executable"] = sys.executable
    return found
