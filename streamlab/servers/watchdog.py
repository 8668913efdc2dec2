"""Stop a process group when the Python process that started it disappears.

    python -m streamlab.servers.watchdog PARENT_PID GROUP_ID

``ManagedProcess`` starts one of these beside every server. While the parent
(a notebook kernel, a script, a test) lives, it only waits. When the parent is
gone without having stopped its servers (killed, or a kernel restart), it
sends the group SIGTERM, then SIGKILL if anything is left after a grace
period. When the group is gone first (a normal stop), it just exits.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable

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


def watch(parent_pid: int, pgid: int) -> None:
    while _exists(os.killpg, pgid):
        if os.getppid() != parent_pid or not _exists(os.kill, parent_pid):
            _stop_group(pgid)
            return
        time.sleep(POLL_SECONDS)


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


if __name__ == "__main__":
    watch(int(sys.argv[1]), int(sys.argv[2]))
