"""Run the demo app's management commands against a database of one's own.

The export views (notebook 07) read a SQLite table. Notebooks and tests each
make a private database: its path goes in ``DEMO_DB_PATH`` (the settings read
it), both to ``manage.py migrate`` / ``seed_rows`` here and to every server
started with the same environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

from ..paths import PROJECT_ROOT


def manage(env: Mapping[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python manage.py ARGS`` with ``env`` added to the environment; never raises
    for a failing command (look at ``returncode`` and ``stderr``)."""
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=PROJECT_ROOT, env={**os.environ, **env},
        capture_output=True, text=True, timeout=timeout,
    )


def manage_ok(env: Mapping[str, str], *args: str, timeout: float = 300) -> str:
    """Like ``manage`` but raise, with the command's own output, when it fails; return stdout."""
    done = manage(env, *args, timeout=timeout)
    if done.returncode != 0:
        command = " ".join(args)
        raise RuntimeError(
            f"manage.py {command} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return done.stdout.strip()
