"""Stop a process group when the Python process that started it disappears.

    python -m streamlab.watchdog PARENT_PID GROUP_ID

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

POLL_SECONDS = 0.25
GRACE_SECONDS = 5.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch(parent_pid: int, pgid: int) -> None:
    while _group_alive(pgid):
        if os.getppid() != parent_pid or not _alive(parent_pid):
            _stop_group(pgid)
            return
        time.sleep(POLL_SECONDS)


def _stop_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    watch(int(sys.argv[1]), int(sys.argv[2]))
