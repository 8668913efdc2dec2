"""streamlab.measurement.workers against real Gunicorn workers: waiting, slow readers, disconnects,
timeouts and the {WSGI, ASGI} x {sync, async iterator} matrix. Streams are kept short."""

import warnings
from functools import partial

import pytest
from django.http import StreamingHttpResponse

from demo_app import csvgen
from streamlab import DemoServer
from streamlab.measurement.workers import (
    StreamEvents,
    disconnect_outcome,
    excerpt,
    log_lines,
    matching_iterator,
    probe_while,
    run_concurrently,
    run_matrix,
    second_request_wait,
    slow_read,
    stream_outcome,
    warning_texts,
)

ONE_SECOND = "?rows=10&chunk_rows=1&delay_ms=100"  # 10 chunks, 100 ms apart


@pytest.fixture(scope="module")
def events():
    events = StreamEvents()
    yield events
    events.cleanup()


@pytest.fixture(scope="module")
def servers(events):
    """One server of each worker class, with a directory for generator records."""
    with (
        DemoServer(name="tests-workers-sync", env=events.env) as sync,
        DemoServer(name="tests-workers-gthread", worker_class="gthread", threads=2,
                   env=events.env) as gthread,
        DemoServer(name="tests-workers-asgi", worker_class="asgi", env=events.env) as asgi,
    ):
        yield {"sync": sync, "gthread": gthread, "asgi": asgi}


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


@pytest.mark.parametrize("kind, path, outcome", [
    ("sync", "/stream_sync", "GeneratorExit"),
    ("gthread", "/stream_sync", "GeneratorExit"),
    ("asgi", "/stream_async", "CancelledError"),
])
def test_a_disconnect_ends_a_matching_generator_early(servers, events, kind, path, outcome):
    result = disconnect_outcome(servers[kind], path, "rows=20&chunk_rows=1&delay_ms=100",
                                events, after_s=0.3)
    assert result["finally_ran"] and result["outcome"] == outcome
    assert result["chunks"] < 20 and result["body_bytes_received"] > 0
    assert result["finally_after_s"] < 1.0


@pytest.mark.parametrize("kind, path", [("sync", "/stream_async"), ("asgi", "/stream_sync")])
def test_a_mismatched_generator_runs_to_the_end_for_nobody(servers, events, kind, path):
    result = disconnect_outcome(servers[kind], path, "rows=8&chunk_rows=1&delay_ms=100",
                                events, after_s=0.2)
    assert (result["outcome"], result["chunks"]) == ("completed", 8)
    assert result["body_bytes_received"] == 0


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
        DemoServer(name="tests-workers-asgi-t2", worker_class="asgi", timeout=2,
                   env=events.env) as asgi,
    ):
        tags = {name: events.tag(name) for name in ("sync", "gthread", "asgi")}
        outcomes = run_concurrently({
            "sync": partial(stream_outcome, sync.url(f"/stream_sync{long}&tag={tags['sync']}")),
            "gthread": partial(stream_outcome,
                               gthread.url(f"/stream_sync{long}&tag={tags['gthread']}")),
            "asgi": partial(stream_outcome, asgi.url(f"/stream_async{long}&tag={tags['asgi']}")),
        })
        records = {name: events.wait(tag) for name, tag in tags.items()}
        assert log_lines(sync, "WORKER TIMEOUT")
        assert not log_lines(gthread, "WORKER TIMEOUT") and not log_lines(asgi, "WORKER TIMEOUT")
    assert not outcomes["sync"]["complete"] and "cut short" in outcomes["sync"]["error"]
    assert records["sync"]["outcome"] == "SystemExit"
    for name in ("gthread", "asgi"):
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
