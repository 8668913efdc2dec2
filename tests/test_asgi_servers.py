"""The other ASGI servers against real processes: started like Gunicorn, and notebook 11's
first four rows (headers first, framing, the mismatched pair, a disconnect) on every one."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
import requests

from demo_app import csvgen
from streamlab import ServerStartError, running_servers, start_server
from streamlab.measurement import server_facts
from streamlab.measurement.iterators import run_matrix
from streamlab.measurement.workers import StreamEvents
from streamlab.paths import PROJECT_ROOT
from streamlab.servers import asgi_servers
from streamlab.servers.asgi_servers import OTHER_SERVERS, SERVER_CLASSES, server_kind
from streamlab.servers.process import free_port, still_running

NAMES = list(OTHER_SERVERS)


@pytest.fixture(scope="module")
def events():
    recorder = StreamEvents()
    yield recorder
    recorder.cleanup()


@pytest.fixture(scope="module")
def servers(events):
    """Gunicorn's ASGI worker and the five others, one worker process each."""
    started = [start_server(name="t-asgi", worker_class="asgi", env=events.env)]
    try:
        started += [start_server(server=name, name="t", env=events.env) for name in NAMES]
        yield started
    finally:
        for server in started:
            server.stop()


def by_name(servers):
    return {server_facts.server_name(s): s for s in servers}


# -- Starting and stopping -------------------------------------------------------------------


def test_each_server_runs_the_app_on_loopback_and_stops_without_a_trace(servers):
    for server in servers:
        name = server_facts.server_name(server)
        response = requests.get(server.url("/stream_async?rows=20&chunk_rows=3"), timeout=10)
        assert response.text == csvgen.csv_text(20), name
        assert response.headers["Transfer-Encoding"] == "chunked", name
        listening = {c.laddr.ip for pid in server.pids()
                     for c in psutil.Process(pid).net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN}
        assert listening == {"127.0.0.1"}, name
        assert len(server.worker_processes()) == 1, name
        assert server in running_servers(), name


def test_a_stopped_server_leaves_no_process_and_keeps_its_log():
    for name in NAMES:
        server = start_server(server=name, name="t-stop")
        pids = server.pids()
        assert requests.get(server.url("/hello"), timeout=5).ok
        server.stop()
        assert still_running(pids) == [], name
        assert server.log, f"{name}: the log is kept after stop()"


def test_an_unknown_server_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="Unknown server 'nginx'.*uvicorn.*granian"):
        start_server(server="nginx")


def test_a_missing_server_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(asgi_servers.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install hypercorn"):
        server_kind("hypercorn")


def test_a_server_that_fails_to_start_shows_its_log():
    server = SERVER_CLASSES["uvicorn"](name="t-broken", env={"DEMO_MAX_ROWS": "lots"})
    with pytest.raises(ServerStartError) as info:
        server.start()
    assert "DEMO_MAX_ROWS='lots' is not a whole number" in str(info.value)
    assert not server.running


CHILD = textwrap.dedent(
    """
    import json, sys
    from streamlab import start_server
    server = start_server(server=sys.argv[1], name="orphan")
    print(json.dumps(server.pids()), flush=True)
    sys.stdin.read()
    """
)


@pytest.mark.parametrize("name", ["hypercorn", "granian"])  # a spawned worker each
def test_no_process_outlives_a_killed_parent(name):
    child = subprocess.Popen([sys.executable, "-c", CHILD, name], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        pids = json.loads(child.stdout.readline())
        assert len(pids) >= 2, "the server and its worker"
    finally:
        child.kill()
        child.wait()
    assert still_running(pids, timeout=20) == []


def test_make_serve_with_another_server(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "scripts/serve.py", "--port", str(port), "--server", "granian"],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True, env={**os.environ, "DEMO_DB_PATH": str(tmp_path / "db")},
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/hello", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=20)
    assert response.headers["server"] == "granian" and response.ok
    refused = subprocess.run([sys.executable, "scripts/serve.py", "--server", "uvicorn",
                              "--http2"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert refused.returncode == 2 and "Gunicorn's options" in refused.stderr


def test_defaults_and_disconnect_sources_come_from_the_installed_source():
    rows = {(r["server"], r["setting"].split()[0]): r["default"]
            for r in asgi_servers.server_defaults()}
    assert rows["hypercorn", "backlog"] == 100 and rows["uvicorn", "backlog"] == 2048
    for kind in asgi_servers.SERVERS.values():
        where = kind.disconnect_source()
        assert kind.name == "granian" or ".py:" in where, where


# -- Notebook 11's rows 1-4 -------------------------------------------------------------------


def test_row_1_who_sends_headers_before_the_body(servers):
    first = server_facts.each(servers, lambda s: server_facts.headers_first(s, think_ms=600))
    assert {r.server for r in first if r.at_once} == {"uvicorn", "uvicorn-worker", "hypercorn"}
    assert all(r.first_body_s > r.think_s / 2 for r in first)


def test_row_2_framing(servers):
    framed = [server_facts.framing(s, rows=40) for s in servers]
    assert all(f.transfer_encoding == "chunked" and f.chunk_per_message for f in framed)
    assert {f.server for f in framed if f.hex_case == "upper"} == {"granian"}
    assert all(f.http10 == "connection close" and f.http10_complete for f in framed)


def test_row_3_the_mismatched_pair_is_buffered_on_every_server(servers):
    rows = run_matrix(servers, "rows=2000&chunk_rows=100&delay_ms=10")
    assert len(rows) == 2 * len(servers)
    assert all(row["streamed"] == row["matched"] for row in rows), rows


@pytest.mark.parametrize("case", ["writing", "silent"])
def test_row_4_a_disconnect_cancels_the_view_at_once_on_every_server(servers, events, case):
    gone = server_facts.each(
        servers, lambda s: server_facts.disconnect(s, events, case=case, leave_after_s=0.3,
                                                   think_ms=2000))
    assert all(d.outcome == "CancelledError" for d in gone), [d.row() for d in gone]
    # Cancelled at once: long before the silent view's think time, or its next piece, was up.
    assert all(d.seen_after_s < 0.5 for d in gone), [d.row() for d in gone]
