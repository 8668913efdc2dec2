"""The Gunicorn helper against real processes: start, answer, stop, leave nothing behind."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
import requests

from demo_app import csvgen
from streamlab import DemoServer, ServerStartError, measure, raw_request, running_servers
from streamlab.paths import PROJECT_ROOT
from streamlab.servers.process import free_port, still_running


def test_start_answer_stop_leaves_no_process():
    server = DemoServer(name="t-basic").start()
    pids = server.pids()
    assert len(pids) == 2  # master and one worker
    assert requests.get(server.url("/hello"), timeout=5).text == "Hello, there!\n"
    server.stop()
    assert not server.running
    assert still_running(pids) == []
    assert "Booting worker" in server.log  # the log is kept after stop


def test_listens_on_loopback_only(sync_server):
    master = sync_server.master_process()
    listening = [c for c in master.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert listening, "the master holds the listening socket"
    assert {c.laddr.ip for c in listening} == {"127.0.0.1"}


def test_two_servers_on_different_free_ports():
    with DemoServer(name="t-one") as one, DemoServer(name="t-two", worker_class="gthread") as two:
        assert one.port != two.port
        assert requests.get(one.url("/hello"), timeout=5).ok
        assert requests.get(two.url("/hello"), timeout=5).ok
        pids = one.pids() + two.pids()
    assert still_running(pids) == []


def test_restarting_a_name_stops_the_previous_server():
    first = DemoServer(name="t-rerun").start()
    first_pids = first.pids()
    second = DemoServer(name="t-rerun").start()
    try:
        assert not first.running
        assert still_running(first_pids) == []
        assert [s for s in running_servers() if s.name == "t-rerun"] == [second]
    finally:
        second.stop()


def test_several_workers_and_the_asgi_worker():
    with DemoServer(name="t-workers", workers=2) as server:
        assert len(server.worker_processes()) == 2
    with DemoServer(name="t-asgi", worker_class="asgi") as server:
        response = requests.get(server.url("/download_csv_streaming?rows=10"), timeout=10)
        assert response.text == csvgen.csv_text(10)
        # Gunicorn's ASGI worker sends header names in lower case; lookups must not care.
        assert "transfer-encoding" in response.raw.headers.keys()
        assert measure(server.url("/download_csv_streaming?rows=10")).chunked


def test_broken_start_raises_with_the_log():
    server = DemoServer(name="t-broken", env={"DEMO_MAX_ROWS": "lots"}, startup_timeout=20)
    with pytest.raises(ServerStartError) as info:
        server.start()
    assert "DEMO_MAX_ROWS='lots' is not a whole number" in str(info.value)
    assert not server.running


def test_port_in_use_is_reported():
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        server = DemoServer(name="t-port", port=port, startup_timeout=20)
        with pytest.raises(ServerStartError, match="Address already in use|Connection in use"):
            server.start()
        assert not server.running


CHILD = textwrap.dedent(
    """
    import json, sys, time
    from streamlab import start_server
    server = start_server(name="orphan")
    print(json.dumps([server.pids(), server._watchdog.pid]), flush=True)
    time.sleep(600)
    """
)


def test_no_process_outlives_a_killed_parent():
    """The kernel-restart case: the parent dies by SIGKILL, so no atexit hook runs."""
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        pids, watchdog = json.loads(child.stdout.readline())
        assert len(pids) == 2 and still_running(pids + [watchdog], timeout=0) == pids + [watchdog]
    finally:
        child.kill()
        child.wait()
    assert still_running(pids, timeout=20) == []
    assert still_running([watchdog], timeout=5) == [], "the watchdog exits once its job is done"


def test_measure_streaming_and_plain(sync_server):
    rows = 200_000
    plain = measure(sync_server.url(f"/download_csv?rows={rows}"), server=sync_server)
    streamed = measure(sync_server.url(f"/download_csv_streaming?rows={rows}"), server=sync_server)
    size = csvgen.csv_size(rows)
    assert plain.nbytes == streamed.nbytes == size
    assert plain.headers["Content-Length"] == str(size) and not plain.chunked
    assert streamed.chunked and "Content-Length" not in streamed.headers
    for m in (plain, streamed):
        assert 0 < m.headers_s <= m.ttfb_s <= m.total_s
        assert m.timeline[0] == (0.0, 0) and m.timeline[-1] == (m.total_s, size)
        assert m.worker_rss_delta is not None and m.worker_rss_baseline > 0
    # Building the whole body costs the worker memory; streaming it does not.
    assert plain.worker_rss_delta > 3 * size
    assert streamed.worker_rss_delta < plain.worker_rss_delta / 4


def test_measure_keeps_the_body_when_asked(sync_server):
    m = measure(sync_server.url("/download_csv_streaming?rows=50&chunk_rows=3"), keep_body=True)
    assert m.body == csvgen.csv_text(50).encode()
    assert m.worker_rss_delta is None  # no server given, no memory sampled


def test_slow_producer_first_byte_long_before_last(sync_server):
    url = sync_server.url("/download_csv_streaming?rows=5&chunk_rows=1&delay_ms=100")
    m = measure(url)
    assert m.total_s >= 0.4
    assert m.ttfb_s < m.total_s / 3


def test_raw_request_shows_chunk_framing(sync_server):
    raw = raw_request(sync_server.url("/hello_streaming"))
    assert raw.status == 200 and raw.closed_by_server
    assert raw.headers["Transfer-Encoding"] == "chunked"
    assert raw.body == b"6\r\nHello,\r\n8\r\n there!\n\r\n0\r\n\r\n"


def test_raw_request_rejects_a_bad_url():
    with pytest.raises(ValueError, match="Expected a URL like"):
        raw_request("https://example.invalid/")


def test_make_serve_script_for_curl(tmp_path):
    """scripts/serve.py runs Gunicorn in the foreground with the notebooks' command line."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "scripts/serve.py", "--port", str(port)],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "DEMO_DB_PATH": str(tmp_path / "demo.sqlite3")},  # not the tree's
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(base + "/", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        streamed = _raw_http(base + "/download_csv_streaming?rows=3&chunk_rows=1")
        plain = _raw_http(base + "/download_csv?rows=3")
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=20)
    assert b"Transfer-Encoding: chunked" in streamed
    assert b"\r\nF\r\nOne,Two,Three\r\n" in streamed  # Gunicorn writes the size in upper-case hex
    assert b"\r\n0\r\n\r\n" in streamed
    assert f"Content-Length: {csvgen.csv_size(3)}".encode() in plain
    assert still_running([process.pid]) == []


def _raw_http(url):
    """What ``curl --raw -i`` prints, from curl itself when it is installed."""
    if shutil.which("curl"):
        out = subprocess.run(["curl", "--raw", "-s", "-i", url], capture_output=True, timeout=20)
        return out.stdout
    return raw_request(url).data


INTERRUPTED = textwrap.dedent(
    """
    import sys, time
    from streamlab import DemoServer
    # Hold start() in its readiness wait, as a slow start on a busy machine would,
    # so that Ctrl-C (SIGINT) lands while Gunicorn is already running.
    DemoServer._wait_until_ready = lambda self: time.sleep(60)
    server = DemoServer(name="interrupted")
    try:
        server.start()
    except KeyboardInterrupt:
        print("interrupted", server.process.pid, flush=True)
        sys.exit(0)
    """
)


def _command_line(process):
    try:
        return " ".join(process.cmdline())
    except psutil.NoSuchProcess:  # it exited while we looked
        return ""


def test_an_interrupted_start_leaves_nothing_behind():
    child = subprocess.Popen([sys.executable, "-c", INTERRUPTED], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        gunicorn = []
        while len(gunicorn) < 2 and time.monotonic() < deadline:  # master and worker
            gunicorn = [
                p for p in psutil.Process(child.pid).children(recursive=True)
                if "-m gunicorn" in _command_line(p)  # not the watchdog beside them
            ]
            time.sleep(0.1)
        assert len(gunicorn) == 2, "the child never started Gunicorn"
        pids = [p.pid for p in gunicorn]
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=30)
    finally:
        child.kill()
    assert out.startswith("interrupted")
    assert still_running(pids) == []
