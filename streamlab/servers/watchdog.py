"""Stop a process group, and remove its temporary files, when its owner disappears.

    python -m streamlab.servers.watchdog PARENT_PID GROUP_ID [PATH ...]

``ManagedProcess`` starts one of these beside every server and waits for it
to print ``watching``. While the parent (a notebook kernel, a script, a test)
lives, it only waits; the parent's own ``stop()`` ends it. When the parent is
gone without having stopped its server (killed, or a kernel restart), it
sends the group SIGTERM, then SIGKILL if anything is left after a grace
period, and removes each PATH (the server's log, nginx's prefix, a Jupyter
server's private folder): a killed kernel leaves neither processes nor files.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence

POLL_SECONDS = 0.25
GRACE_SECONDS = 5.0


def _exists(send: Callable[[int, int], None], ident: int) -> bool:
    """Whether a process (``os.kill``) or process group (``os.killpg``) exists: signal 0
    checks without sending anything."""
    try:
        send(ident, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, but belongs to someone else
        return True
    return True


def watch(parent_pid: int, pgid: int, paths: Sequence[str] = ()) -> None:
    """Wait for the parent to disappear, then stop the group and remove ``paths``."""
    while os.getppid() == parent_pid and _exists(os.kill, parent_pid):
        time.sleep(POLL_SECONDS)
    _stop_group(pgid)
    for path in paths:
        _remove(path)


def _stop_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline and _exists(os.killpg, pgid):
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    print("watching", flush=True)
    watch(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:])
