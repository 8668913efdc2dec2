"""Waiting for something another process does: a server to exit, a backend to close."""

import time
from collections.abc import Callable


def wait_until(check: Callable[[], bool], timeout: float = 15.0, every: float = 0.1) -> bool:
    """Whether ``check()`` became true within ``timeout`` seconds (asked once more at the end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()
