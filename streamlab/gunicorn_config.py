"""Gunicorn settings every demo server starts with (``gunicorn -c`` this file).

The command line given by ``streamlab.server`` overrides anything set here.
The one thing only a config file can do is the parent watchdog: the Gunicorn
master checks twice a second that the process which started it (a notebook
kernel, a script, a test) still exists, and shuts itself down when it does not.
That is the safety net for a kernel that is restarted or killed: no server
outlives the notebook that started it.
"""

import os
import signal
import threading
import time

accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s bytes %(D)sus'
capture_output = True


def _watch_parent(server, parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    server.log.warning("Process %s, which started this server, is gone; stopping.", parent_pid)
    os.kill(os.getpid(), signal.SIGTERM)


def when_ready(server) -> None:
    parent_pid = int(os.environ.get("STREAMLAB_PARENT_PID", "0") or 0)
    if parent_pid:
        watchdog = threading.Thread(
            target=_watch_parent, args=(server, parent_pid), name="parent-watchdog", daemon=True
        )
        watchdog.start()
