"""streamlab.measurement.workers against real Gunicorn workers: waiting, slow readers, disconnects,
timeouts, heartbeats, the {WSGI, ASGI} x {sync, async iterator} matrix, and Django's ASGI
handler called in-process. Streams are kept short."""

import asyncio
import math
import time
import warnings
from functools import partial

import pytest
import requests
from django.core.handlers.asgi import ASGIHandler
from django.http import StreamingHttpResponse

from demo_app import csvgen
from streamlab import DemoServer, measure
from streamlab.measurement.iterators import (
    asgi_call,
    matching_iterator,
    run_matrix,
    wire_chunk_sizes,
)
from streamlab.measurement.workers import (
    disconnect_outcome,
    excerpt,
    heartbeat_age,
    heartbeat_file,
    log_lines,
    probe_while,
    replaced_workers,
    request_timeline,
    run_concurrently,
    second_request_wait,
    slow_read,
    stream_outcome,
    warning_texts,
)

ONE_SECOND = "?rows=10&chunk_rows=1&delay_ms=100"  # 10 chunks, 100 ms apart


@pytest.fixture(scope="module")
def servers(events):
    """One server of each worker class, with a directory for generator records."""
    with (
        DemoServer(name="tests-workers-sync", env=events.env) as sync,
        DemoServer(name="tests-workers-gthread", worker_class="gthread", threads=2,
                   env=events.env) as gthread,
        DemoServer(name="tests-workers-gevent", worker_class="gevent", env=events.env) as gevent,
        DemoServer(name="tests-workers-asgi", worker_class="asgi", env=events.env) as asgi,
    ):
        yield {"sync": sync, "gthread": gthread, "gevent": gevent, "asgi": asgi}


def test_a_stream_holds_the_sync_worker_but_not_gthread(servers):
    blocked = second_request_wait(servers["sync"], "/stream_sync" + ONE_SECOND, after_s=0.3)
    free = second_request_wait(servers["gthread"], "/stream_sync" + ONE_SECOND, after_s=0.3)
    assert blocked["probe_status"] == free["probe_status"] == 200
    assert blocked["probe_wait_s"] > 0.7 * blocked["busy_remaining_s"]
    assert free["probe_wait_s"] < 0.3 * free["busy_remaining_s"]
    assert blocked["busy_result"].nbytes == csvgen.csv_size(10)


def test_the_asgi_worker_serves_while_an_async_stream_pauses(servers):
    free = second_request_wait(servers["asgi"], "/stream_async" + ONE_SECOND, after_s=0.3)
    assert free["probe_wait_s"] < 0.3 * free["busy_remaining_s"]


def test_a_slow_reader_holds_the_sync_worker(servers, events):
    rows = csvgen.rows_for_size(32 * 2**20)
    tag = events.tag("slow")
    url = servers["sync"].url(f"/stream_sync?rows={rows}&chunk_rows=1000&tag={tag}")
    held = probe_while(partial(slow_read, url, duration_s=1.0), servers["sync"].url("/hello"),
                       after_s=0.3)
    record = events.wait(tag)
    reader = held["busy_result"]
    assert held["probe_wait_s"] > 0.7 * held["busy_remaining_s"]
    assert 0 < reader["bytes_read"] < record["bytes"] < csvgen.csv_size(rows) // 2
    assert record["outcome"] == "GeneratorExit"


@pytest.mark.parametrize("kind, path, outcome, main_thread", [
    ("sync", "/stream_sync", "GeneratorExit", True),
    ("gthread", "/stream_sync", "GeneratorExit", False),
    ("asgi", "/stream_async", "CancelledError", True),
])
def test_a_disconnect_ends_a_matching_generator_early(servers, events, kind, path, outcome,
                                                      main_thread):
    # A 5 s stream, left after 0.3 s: its clean-up must come within half of what was left.
    result = disconnect_outcome(servers[kind], path, "rows=50&chunk_rows=1&delay_ms=100",
                                events, after_s=0.3)
    assert result["finally_ran"] and result["outcome"] == outcome
    assert result["chunks"] < 50 and result["body_bytes_received"] > 0
    assert result["finally_after_s"] < 0.5 * (5.0 - 0.3)
    assert (result["thread"] == "MainThread") is main_thread


@pytest.mark.parametrize("kind, path", [("sync", "/stream_async"), ("asgi", "/stream_sync")])
def test_a_mismatched_generator_runs_to_the_end_for_nobody(servers, events, kind, path):
    result = disconnect_outcome(servers[kind], path, "rows=8&chunk_rows=1&delay_ms=100",
                                events, after_s=0.2)
    assert (result["outcome"], result["chunks"]) == ("completed", 8)
    assert result["body_bytes_received"] == 0
    assert result["thread"] != "MainThread"  # collected in a thread by asgiref


def test_matrix_only_matching_pairs_stream(servers):
    rows = csvgen.rows_for_size(2**20)
    matrix = run_matrix([servers["sync"], servers["asgi"]],
                        f"rows={rows}&chunk_rows={rows // 10 + 1}&delay_ms=40")
    assert len(matrix) == 4
    for row in matrix:
        assert row["nbytes"] == csvgen.csv_size(rows)
        assert row["streamed"] is row["matched"], row
        if row["matched"]:
            assert row["ttfb_s"] < 0.25 * row["total_s"], row
        else:
            assert row["ttfb_s"] > 0.8 * row["total_s"], row
    assert {(r["kind"], r["iterator"]) for r in matrix if r["matched"]} == {
        ("WSGI", "sync iterator"), ("ASGI", "async iterator")}


def test_the_mismatch_warning_reaches_the_server_log_once(servers):
    run_matrix([servers["sync"], servers["asgi"]], "rows=10")  # each mismatch at least twice
    (under_wsgi,) = warning_texts(StreamingHttpResponse.__iter__)
    (under_asgi,) = warning_texts(StreamingHttpResponse.__aiter__)
    wsgi_lines = log_lines(servers["sync"], "must consume")
    asgi_lines = log_lines(servers["asgi"], "must consume")
    assert len(wsgi_lines) == len(asgi_lines) == 1  # once per worker process
    assert wsgi_lines[0].endswith(f"Warning: {under_wsgi}")
    assert asgi_lines[0].endswith(f"Warning: {under_asgi}")


def test_a_stream_longer_than_the_timeout(events):
    """Killed mid-body on the sync worker; whole on gthread and ASGI."""
    long = "?rows=35&chunk_rows=1&delay_ms=100"  # about 3.5 s against --timeout 2
    with (
        DemoServer(name="tests-workers-sync-t2", timeout=2, env=events.env) as sync,
        DemoServer(name="tests-workers-gthread-t2", worker_class="gthread", threads=2,
                   timeout=2, env=events.env) as gthread,
        DemoServer(name="tests-workers-gevent-t2", worker_class="gevent", timeout=2,
                   env=events.env) as gevent,
        DemoServer(name="tests-workers-asgi-t2", worker_class="asgi", timeout=2,
                   env=events.env) as asgi,
    ):
        servers = {"sync": sync, "gthread": gthread, "gevent": gevent, "asgi": asgi}
        before = [p.pid for p in sync.worker_processes()]
        tags = {name: events.tag(name) for name in servers}
        outcomes = run_concurrently({
            name: partial(stream_outcome, server.url(
                f"/stream_{'async' if name == 'asgi' else 'sync'}{long}&tag={tags[name]}"))
            for name, server in servers.items()})
        records = {name: events.wait(tag) for name, tag in tags.items()}
        assert log_lines(sync, "WORKER TIMEOUT")
        after = replaced_workers(sync, before)
        assert len(after) == len(before) and not set(after) & set(before)
        with pytest.raises(TimeoutError, match="not replaced after 0.2 s"):
            replaced_workers(sync, after, timeout=0.2)  # nothing kills these
        for name in ("gthread", "gevent", "asgi"):
            assert not log_lines(servers[name], "WORKER TIMEOUT"), name
    assert not outcomes["sync"]["complete"] and "cut short" in outcomes["sync"]["error"]
    assert records["sync"]["outcome"] == "SystemExit"
    for name in ("gthread", "gevent", "asgi"):
        assert outcomes[name]["complete"] and outcomes[name]["body_bytes"] == csvgen.csv_size(35)
        assert records[name]["outcome"] == "completed"


def test_stream_outcome_of_a_whole_body(servers):
    outcome = stream_outcome(servers["sync"].url("/stream_sync?rows=30&chunk_rows=4"))
    assert outcome["complete"] and outcome["body_bytes"] == csvgen.csv_size(30)
    assert outcome["error"] is None


def test_matching_iterator(servers):
    assert matching_iterator(servers["sync"]) == "sync iterator"
    assert matching_iterator(servers["gthread"]) == "sync iterator"
    assert matching_iterator(servers["asgi"]) == "async iterator"


def test_events_tags_are_unique_and_missing_records_time_out(events):
    tags = {events.tag("x") for _ in range(100)}
    assert len(tags) == 100
    assert events.wait("never-written", timeout=0.1) is None


def test_excerpt_and_warning_texts():
    def sample():
        first = 1
        warnings.warn("one " "message", Warning, stacklevel=2)  # split, as Django writes them
        last = 2
        return first + last

    assert excerpt(sample, "first = 1", "last = 2").splitlines()[0] == "first = 1"
    assert excerpt(sample, "first = 1", "last = 2").splitlines()[-1] == "last = 2"
    assert warning_texts(sample) == ["one message"]
    with pytest.raises(LookupError, match="not found in the source"):
        excerpt(sample, "no such line", "last")


# -- Timelines and heartbeats ------------------------------------------------------------------


def test_a_timeline_shows_who_waited_and_whose_heartbeat_aged(servers):
    """Sync: the probes wait for the stream and the heartbeat ages; gevent: neither."""
    two_seconds = "/stream_sync?rows=20&chunk_rows=1&delay_ms=100"
    lines = run_concurrently({
        kind: partial(request_timeline, servers[kind], two_seconds, probes_at=(0.3, 0.9))
        for kind in ("sync", "gevent")})
    sync, gevent = lines["sync"], lines["gevent"]
    assert sync.worker_class == "sync" and len(sync.probes) == 2
    assert all(p.status == 200 for t in lines.values() for p in (t.stream, *t.probes))
    assert all(p.waited and p.done_s > sync.stream.done_s - 0.2 for p in sync.probes)
    assert not any(p.waited for p in gevent.probes)
    assert sync.first_wait_s > 0.7 * sync.stream_left_s
    assert sync.max_heartbeat_age_s > 0.7 * sync.stream.seconds
    assert gevent.max_heartbeat_age_s < 0.75 * sync.max_heartbeat_age_s


def test_the_heartbeat_file_is_the_workers_and_is_fresh(servers):
    beat = heartbeat_file(servers["asgi"])
    assert beat is not None and str(beat).startswith("/proc/")
    assert 0 <= heartbeat_age(beat) < 2.0  # the ASGI worker notifies about once a second


def test_the_heartbeat_of_a_stopped_worker_has_no_age():
    with DemoServer(name="tests-workers-heartbeat") as server:
        beat = heartbeat_file(server)
    assert beat is not None and heartbeat_age(beat) is None


# -- Where code runs, per worker class ---------------------------------------------------------


def test_the_asgi_worker_runs_sync_views_in_threads_and_async_views_on_its_loop(servers):
    sync_view = requests.get(servers["asgi"].url("/where_sync"), timeout=10).json()
    async_view = requests.get(servers["asgi"].url("/where_async"), timeout=10).json()
    assert async_view["main_thread"] and async_view["event_loop_running"]
    assert not sync_view["main_thread"] and not sync_view["event_loop_running"]
    assert sync_view["pid"] == async_view["pid"]


def test_the_gevent_worker_patches_its_own_process_only(servers):
    where = requests.get(servers["gevent"].url("/where_sync"), timeout=10).json()
    assert where["time_sleep"].startswith("gevent.")
    assert f"{time.sleep.__module__}.{time.sleep.__qualname__}" == "time.sleep"


def test_measure_works_against_the_gevent_worker(servers):
    m = measure(servers["gevent"].url("/stream_sync?rows=2000&chunk_rows=100"),
                server=servers["gevent"])
    assert m.status == 200 and m.chunked and m.nbytes == csvgen.csv_size(2000)
    assert m.worker_rss_delta is not None


@pytest.mark.parametrize("kind, held", [("gevent", True), ("asgi", False)])
def test_a_view_that_computes_holds_gevent_but_not_the_asgi_worker(servers, kind, held):
    server = servers[kind]
    spin = probe_while(partial(requests.get, server.url("/spin?ms=800"), timeout=30),
                       server.url("/hello"), after_s=0.2)
    if held:
        assert spin["probe_wait_s"] > 0.7 * spin["busy_remaining_s"]
    else:
        assert spin["probe_wait_s"] < 0.5 * spin["busy_remaining_s"]


# -- Django's ASGI handler in-process, and chunks on the wire -------------------------------------


def test_django_sends_the_headers_before_collecting_a_sync_iterator():
    from demo_app.asgi import application

    call = asyncio.run(asgi_call(application, "/stream_sync", "rows=5&chunk_rows=1&delay_ms=100"))
    assert [m.type for m in call.messages][:2] == ["http.response.start", "http.response.body"]
    assert call.start_s < 0.1 and call.first_body_s > 0.4
    assert len(call.warnings) == 1 and "must consume synchronous iterators" in call.warnings[0]
    assert sum(call.body_sizes) == csvgen.csv_size(5)


def test_django_cuts_a_large_item_into_chunk_size_messages():
    from demo_app.asgi import application

    rows = csvgen.rows_for_size(200 * 1024)
    call = asyncio.run(asgi_call(application, "/stream_async", f"rows={rows}&chunk_rows={rows}"))
    size = csvgen.csv_size(rows)
    assert sum(call.body_sizes) == size and max(call.body_sizes) == ASGIHandler.chunk_size
    assert len(call.body_sizes) == math.ceil(size / ASGIHandler.chunk_size)
    assert call.warnings == ()


def test_a_disconnect_in_process_cancels_the_async_generator(monkeypatch, events):
    from demo_app.asgi import application

    monkeypatch.setenv("DEMO_STREAM_EVENTS_DIR", str(events.directory))
    tag = events.tag("in-process")
    call = asyncio.run(asgi_call(application, "/stream_async",
                                 f"rows=20&chunk_rows=1&delay_ms=100&tag={tag}",
                                 disconnect_after_s=0.25))
    record = events.wait(tag)
    assert record["outcome"] == "CancelledError" and record["chunks"] < 20
    assert 0 < len(call.body_sizes) < 20


def test_wire_chunk_sizes_one_item_under_each_server(servers):
    rows = csvgen.rows_for_size(200 * 1024)
    query = f"rows={rows}&chunk_rows={rows}"
    size = csvgen.csv_size(rows)
    assert wire_chunk_sizes(servers["sync"].url(f"/stream_sync?{query}")) == [size]
    on_asgi = wire_chunk_sizes(servers["asgi"].url(f"/stream_async?{query}"))
    assert sum(on_asgi) == size and len(on_asgi) == math.ceil(size / ASGIHandler.chunk_size)
