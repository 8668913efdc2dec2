"""ManagedProcess, the lifecycle every server shares, against real processes.

Each test provokes one way a start or a stop can go wrong and checks that the
server is not mistaken for ready, that nothing is left running, and that the
watchdog, the log file and the registry entry are cleaned up.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import requests

from streamlab import DemoServer, ServerStartError
from streamlab.servers.nginx import NginxProxy, nginx_available
from streamlab.servers.process import HOST, ManagedProcess, running_processes, still_running


class Sleeper(ManagedProcess):
    """A program that never listens: ready only if something answers HTTP on its port."""

    kind = "sleeper"

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-c", "import time; time.sleep(60)"]

    def ready(self) -> bool:
        try:
            return requests.get(self.url("/"), timeout=1).status_code == 200
        except requests.RequestException:
            return False


@pytest.fixture
def foreign_http_server():
    """Somebody else's HTTP server on a loopback port, answering 200 to everything."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the name http.server calls)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_foreign_listener_is_never_taken_for_our_server(foreign_http_server):
    port = foreign_http_server
    assert requests.get(f"http://{HOST}:{port}/", timeout=5).status_code == 200
    sleeper = Sleeper(name="t-foreign", port=port, startup_timeout=2)
    with pytest.raises(ServerStartError, match="did not answer"):
        sleeper.start()
    assert not sleeper.running
    assert sleeper not in running_processes()


def test_names_are_per_kind():
    """An nginx and a Gunicorn with the same name are two servers: neither stops the other."""
    with DemoServer(name="t-same-name") as gunicorn:
        sleeper = Sleeper(name="t-same-name", startup_timeout=0.5)
        with pytest.raises(ServerStartError):
            sleeper.start()  # fails (it never answers), and must not stop its namesake
        assert gunicorn.running
        if nginx_available():
            with NginxProxy(gunicorn, name="t-same-name") as proxy:
                assert gunicorn.running and proxy.running
                assert requests.get(proxy.url("/hello"), timeout=5).status_code == 200


def test_stop_cleans_up_even_when_stopping_fails():
    server = DemoServer(name="t-stop-fails").start()
    pids, watchdog, log_path = server.pids(), server._watchdog, server._log_path

    def broken_wait(timeout=None):
        raise OSError("simulated failure while waiting for Gunicorn")

    server.process.wait = broken_wait
    with pytest.raises(OSError, match="simulated failure"):
        server.stop()
    # Whatever failed, the rest of the clean-up ran.
    assert watchdog.poll() is not None, "the watchdog was stopped"
    assert not log_path.exists(), "the log file was removed"
    assert "Booting worker" in server.log, "its text was kept"
    assert server not in running_processes()
    os.killpg(pids[0], signal.SIGKILL)  # the group the failed stop left: ours to end here
    assert still_running(pids) == []


def test_a_watchdog_that_cannot_start_fails_the_start():
    server = DemoServer(name="t-no-watchdog")
    server.watchdog_module = "streamlab.servers.no_such_watchdog"
    with pytest.raises(ServerStartError, match="watchdog .* did not start"):
        server.start()
    assert not server.running
    assert server not in running_processes()


ORPHAN = textwrap.dedent(
    """
    import json, sys, time
    from streamlab import start_server
    from streamlab.servers.nginx import NginxProxy, nginx_available
    server = start_server(name="orphan")
    paths = [str(p) for p in server.temporary_paths()]
    if nginx_available():
        proxy = NginxProxy(server, name="orphan").start()
        paths += [str(p) for p in proxy.temporary_paths()]
    print(json.dumps(paths), flush=True)
    time.sleep(600)
    """
)


def test_a_killed_parent_leaves_no_temporary_files():
    """The kernel-restart case: no hook runs, so the watchdog removes logs and prefixes."""
    child = subprocess.Popen([sys.executable, "-c", ORPHAN], stdout=subprocess.PIPE, text=True)
    try:
        paths = [Path(p) for p in json.loads(child.stdout.readline())]
        assert paths and all(p.exists() for p in paths)
    finally:
        child.kill()
        child.wait()
    deadline_paths = paths
    for _ in range(200):
        deadline_paths = [p for p in deadline_paths if p.exists()]
        if not deadline_paths:
            break
        threading.Event().wait(0.1)
    assert deadline_paths == [], f"left behind: {deadline_paths}"
