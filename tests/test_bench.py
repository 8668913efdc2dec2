"""The benchmark library at tiny sizes, against a real Gunicorn.

Values are checked for sanity (positive, byte counts exact); timing only as
generous ratios measured in the same run.
"""

import dataclasses
import json
import subprocess
import sys

import pytest

from demo_app import csvgen
from streamlab.measurement import (
    bench,
    bench_report,
    bench_results,
    fanout,
    fanout_bench,
    server_bench,
    sse_bench,
)
from streamlab.measurement.sse_bench import ClientRun, StreamsRun
from streamlab.paths import PROJECT_ROOT
from streamlab.schema import SchemaError, decode
from streamlab.servers.postgres import postgres_version
from streamlab.tables import format_table

KiB, MiB = bench_results.KiB, bench_results.MiB


@pytest.fixture(scope="module")
def server():
    with bench.bench_server(name="tests-bench", timeout=60) as server:
        yield server


def test_fresh_worker_is_a_new_process_that_served_only_the_warm_up(server):
    before = {p.pid for p in server.worker_processes()}
    worker = bench.fresh_worker(server)
    assert worker.pid not in before
    assert [p.pid for p in server.worker_processes()] == [worker.pid]
    warm_ups = [f"rows={bench.WARM_UP_ROWS} " in line for line in server.log.splitlines()]
    assert sum(warm_ups) >= 2


def test_size_series_has_medians_per_kind_and_size(server):
    series = bench.size_series(server, [64 * KiB, 1 * MiB], repeats=1)
    for kind in bench_results.KINDS:
        points = series.points(kind)
        assert [p.rows for p in points] == sorted(p.rows for p in points)
        assert len(points) == 2
        for p in points:
            assert p.kind == kind and p.repeats == 1
            assert p.bytes == csvgen.csv_size(p.rows) >= 64 * KiB
            assert 0 < p.headers_s <= p.ttfb_s <= p.total_s
            assert p.throughput > 0
            assert p.worker_rss_baseline > 10 * MiB  # a Django worker is not tiny
            assert p.worker_rss_delta >= 0
            assert p.chunked is (kind == "streaming")
    big_plain, big_streaming = series.plain[-1], series.streaming[-1]
    # The whole 1 MiB body is held (several times over) by the plain view only.
    assert big_plain.worker_rss_delta > big_streaming.worker_rss_delta + 1 * MiB
    assert decode(bench_results.SizeSeries, json.loads(json.dumps(dataclasses.asdict(series)))) == (
        series)


def test_size_plan_caps_the_plain_view():
    plan = bench.size_plan([1 * MiB, 1024 * MiB], max_plain_rows=100_000)
    assert plan["streaming"] == [csvgen.rows_for_size(MiB), csvgen.rows_for_size(1024 * MiB)]
    assert plan["plain"] == [csvgen.rows_for_size(MiB), 100_000]


def test_chunk_series_per_row_is_slower_than_batched(server):
    sweep = bench.chunk_series(server, 256 * KiB, [1, 2048], repeats=1)
    assert sweep.bytes == csvgen.csv_size(sweep.rows)
    per_row, batched = sweep.points
    assert per_row.chunks == sweep.rows and batched.chunks == -(-sweep.rows // 2048)
    for p in sweep.points:
        assert p.throughput > 0 and p.generation_throughput > 0
        assert p.server_cpu_s >= 0 and p.client_cpu_s > 0
    # CPU time, not wall-clock: another process on the machine stretches the latter.
    cpu = {name: p.server_cpu_s + p.client_cpu_s for name, p in
           (("per_row", per_row), ("batched", batched))}
    assert cpu["per_row"] > 2 * cpu["batched"], cpu
    assert sweep.plain.total_s > 0
    assert sweep.smallest() is per_row and sweep.point(2048) is batched
    with pytest.raises(ValueError, match=r"chunk_rows=64 is not in the sweep \(\[1, 2048\]\)"):
        sweep.point(64)


def test_client_memory_content_holds_the_body_iter_content_does_not(server):
    result = bench.client_memory(server, 2 * MiB)
    body = result.bytes
    assert result.content.bytes == result.iter_content.bytes == body
    assert result.content.peak >= body
    assert result.iter_content.peak < body / 4


def test_the_script_writes_json_and_figures_and_checks_targets(tmp_path):
    out = tmp_path / "bench"
    command = [
        sys.executable, "scripts/bench.py", "--sizes", "0.1,0.5", "--repeats", "1",
        "--chunk-rows", "1,4096", "--chunk-mib", "0.25", "--client-mib", "0.5",
        "--no-progress", "--streams", "12", "--stream-events", "3", "--server-streams", "12",
        "--server-stream-events", "3", "--servers", "uvicorn", "--fanout-streams", "20",
        "--fanout-events", "2", "--out", str(out),
    ]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    text = (out / "results.json").read_text()
    assert json.loads(text)["schema_version"] == bench_results.SCHEMA_VERSION
    results = bench_results.BenchResults.load(out / "results.json")
    assert results.to_json() == text  # reading it back loses nothing
    assert results.machine.versions["django"]
    assert results.config.repeats == 1 and results.config.chunk_rows == [1, 4096]
    for kind in bench_results.KINDS:
        for p in results.sizes.points(kind):
            assert p.bytes == csvgen.csv_size(p.rows)
    # Notebook 04's five targets, the event streams' three, four per server, then the
    # fan-out's two (where PostgreSQL is installed: always under CI).
    fanned = postgres_version() is not None
    assert len(results.targets) == 12 + 2 * fanned
    assert all(isinstance(t.met, bool) for t in results.targets)
    assert [t.name for t in results.targets[5:]] == [
        "event streams: none lost or reordered", "event streams: delay p95",
        "event streams: worker memory", "server streams, uvicorn: none lost or reordered",
        "server streams, uvicorn: stamped delay p95", "server streams, uvicorn: schedule delay p95",
        "server streams, uvicorn: worker memory",
        *(["fan-out: none lost or repeated", "fan-out: delay p95"] if fanned else [])]
    assert not results.targets[5].met  # 12 streams are fewer than the target's 200
    for t in results.targets:
        assert t.measured in done.stdout
    assert "StreamingHttpResponse" in done.stdout and "in-process CPU s" in done.stdout
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == sorted(f"{name}.png" for name in (
        "arrival", "ttfb_vs_size", "worker_memory_vs_size", "client_memory",
        "throughput_vs_chunk_size"))
    assert all((out / name).stat().st_size > 10_000 for name in pngs)

    streams = out / "event_streams"
    summary = json.loads((streams / "summary.json").read_text())
    assert summary["targets"] == [dataclasses.asdict(t) for t in results.targets[5:8]]
    per_server = json.loads((out / "server_streams" / "summary.json").read_text())
    assert per_server["targets"] == [dataclasses.asdict(t) for t in results.targets[8:12]]
    if fanned:
        fanout_summary = json.loads((out / "fanout" / "summary.json").read_text())
        assert fanout_summary["targets"] == [dataclasses.asdict(t) for t in results.targets[12:]]
        assert (fanout_summary["streams"], fanout_summary["events"]) == (20, 2)
        assert (fanout_summary["delivered"], fanout_summary["lost"]) == (40, 0)
        assert fanout_summary["connections"] == {"worker listener": 2}
        assert not results.targets[12].met  # 20 streams are fewer than the target's 1,000
        assert (out / "fanout" / "delays.png").stat().st_size > 10_000
        assert "Fan-out, one LISTEN per worker" in done.stdout
    else:
        assert "fan-out: skipped, PostgreSQL is not installed" in done.stdout
    assert [s["server"] for s in per_server["servers"]] == ["uvicorn"]
    assert "Client-side checks" in done.stdout
    runs = {r["worker_class"]: r for r in summary["runs"]}
    assert list(runs) == ["asgi", "sync", "gthread"]
    assert runs["asgi"]["clients"] == 12 and runs["asgi"]["events"] == 3
    assert (runs["sync"]["workers"], runs["sync"]["clients"]) == (
        sse_bench.SYNC_WORKERS, sse_bench.QUEUE_ROUNDS * sse_bench.SYNC_WORKERS)
    assert (runs["gthread"]["threads"], runs["gthread"]["clients"]) == (
        sse_bench.GTHREAD_THREADS, sse_bench.QUEUE_ROUNDS * sse_bench.GTHREAD_THREADS)
    for run in runs.values():
        assert run["all_events_in_order"], run
        assert run["lost_events"] == run["reordered_events"] == run["failed_clients"] == 0
    assert sorted(p.name for p in streams.glob("*.png")) == ["delays.png", "worker_classes.png"]
    assert all(p.stat().st_size > 10_000 for p in streams.glob("*.png"))


def test_the_script_refuses_a_bad_stream_count_before_starting_anything():
    done = subprocess.run(
        [sys.executable, "scripts/bench.py", "--only", "event-streams", "--streams", "0"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--streams must be between 1 and" in done.stderr and "Traceback" not in done.stderr


def test_the_server_streams_section_runs_small_on_two_real_servers(tmp_path):
    """The per-server section through the script, small: 20 stamped streams of 5 events on
    uvicorn and on Gunicorn's asgi worker, each server started, measured and stopped."""
    out = tmp_path / "bench"
    done = subprocess.run(
        [sys.executable, "scripts/bench.py", "--only", "server-streams", "--server-streams",
         "20", "--server-stream-events", "5", "--servers", "uvicorn,gunicorn-asgi",
         "--out", str(out)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = out / "server_streams"
    summary = json.loads((folder / "summary.json").read_text())
    runs = {s["server"]: s for s in summary["servers"]}
    assert sorted(runs) == ["gunicorn-asgi", "uvicorn"]
    for run in runs.values():
        assert (run["clients"], run["events"]) == (20, 5)
        assert run["held_at_once"] == 20 and run["all_events_in_order"], run
        assert run["lost_events"] == run["reordered_events"] == run["failed_clients"] == 0
        # Every event carried the server's send stamp, none arrived before it was sent.
        assert run["events_received"] == run["stamped_events"] == 20 * 5
        assert run["min_stamped_delay_ms"] >= 0
        assert run["worker_threads"] >= 20  # Django gives each request a thread of its own
        assert run["client_cpu_s"] >= 0 and run["worker_nofile"] >= 20
    limits = summary["client_limits"]
    assert limits["soft"] >= limits["needed"] > 20
    names = [t["name"] for t in summary["targets"]]
    assert names == [f"server streams, {server}: {target}"
                     for server in ("uvicorn", "gunicorn-asgi")
                     for target in ("none lost or reordered", "stamped delay p95",
                                    "schedule delay p95", "worker memory")]
    assert not summary["targets"][0]["met"]  # 20 streams are fewer than the target's 1,000
    for t in summary["targets"]:
        assert t["measured"] in done.stdout
    assert "Client-side checks" in done.stdout and "Section wall time" in done.stdout
    assert [p.name for p in folder.glob("*.png")] == ["servers.png"]
    assert (folder / "servers.png").stat().st_size > 10_000


@pytest.mark.parametrize(("section", "args", "message"), [
    ("server-streams", ["--server-streams", "0"], "--server-streams must be between 1 and"),
    ("server-streams", ["--server-stream-events", "1"],
     "--server-stream-events must be between 2 and 1000"),
    ("server-streams", ["--servers", "uvicorn,nginx"], "unknown server 'nginx'"),
    ("fan-out", ["--fanout-streams", "3"],
     "--fanout-streams must be a multiple of 2 between 2 and"),
    ("fan-out", ["--fanout-streams", "5000"], "--fanout-streams must be a multiple of 2"),
    ("fan-out", ["--fanout-events", "0"], "--fanout-events must be between 1 and 600"),
])
def test_the_script_refuses_bad_section_options_before_starting_anything(section, args, message):
    done = subprocess.run([sys.executable, "scripts/bench.py", "--only", section, *args],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def _fanout_run(*, streams=1000, lost=0, repeated=0, delay_s=0.02):
    published = tuple(fanout.Published(i, 1000.0 + i, 7) for i in range(10))
    delivered = streams * len(published) - lost
    return fanout.FanoutRun("worker", streams, {7: streams // 2, 8: streams // 2}, published,
                            (delay_s,) * delivered, lost, repeated, {"worker listener": 2})


def test_each_fanout_target_is_missed_for_its_own_reason():
    assert [t.met for t in fanout_bench.evaluate_fanout(_fanout_run())] == [True, True]
    for run, missed in ((_fanout_run(lost=1), [False, True]),
                        (_fanout_run(repeated=1), [False, True]),
                        (_fanout_run(streams=998), [False, True]),
                        (_fanout_run(delay_s=0.15), [True, False])):
        assert [t.met for t in fanout_bench.evaluate_fanout(run)] == missed
    summary = fanout_bench.fanout_summary(_fanout_run(delay_s=0.15), seconds=1.0)
    assert summary["delay_ms"]["p95"] == pytest.approx(150)
    text = fanout_bench.format_summary(summary)
    assert "150/150/150" in text and "[MISSED] fan-out: delay p95" in text


# -- targets and results.json, from made-up numbers --------------------------------------

ROWS = 200_000


def _size_point(nbytes, ttfb_s, worker_rss_delta=0, kind="streaming"):
    return bench_results.SizePoint(
        kind=kind, rows=csvgen.rows_for_size(nbytes), bytes=nbytes, chunk_rows=4096,
        chunked=kind == "streaming", repeats=1, headers_s=ttfb_s / 2, ttfb_s=ttfb_s,
        total_s=10 * ttfb_s, throughput=nbytes / (10 * ttfb_s), worker_rss_baseline=40 * MiB,
        worker_rss_delta=worker_rss_delta, ttfb_s_runs=[ttfb_s], total_s_runs=[10 * ttfb_s],
        worker_rss_delta_runs=[worker_rss_delta])


def _chunk_point(chunk_rows, chunks, throughput, total_s, server_cpu_s, client_cpu_s):
    return bench_results.ChunkPoint(
        chunk_rows=chunk_rows, chunk_bytes=4 * MiB / chunks, chunks=chunks,
        throughput=throughput, total_s=total_s, ttfb_s=0.005, server_cpu_s=server_cpu_s,
        client_cpu_s=client_cpu_s, generation_throughput=40 * MiB, generation_best=41 * MiB,
        generation_cpu_s=0.1, share=throughput / (40 * MiB), cpu_share=0.1 / server_cpu_s,
        throughput_runs=[throughput], generation_throughput_runs=[40 * MiB])


SIZES = bench_results.SizeSeries(
    streaming=[_size_point(MiB, 0.004), _size_point(16 * MiB, 0.005)],
    plain=[_size_point(MiB, 0.05, 5 * MiB, "plain"), _size_point(16 * MiB, 0.8, 80 * MiB, "plain")],
)
SWEEP = bench_results.ChunkSweep(
    rows=ROWS, bytes=4 * MiB, repeats=1, read_size=64 * KiB, default_chunk_rows=4096,
    plain=bench_results.WholeBody(total_s=0.2, ttfb_s=0.15, throughput=20 * MiB),
    points=[_chunk_point(1, ROWS, 2 * MiB, 2.0, 1.5, 1.0),
            _chunk_point(4096, 49, 38 * MiB, 0.1, 0.11, 0.01)],
)


# -- the event streams' targets, from made-up streams ---------------------------------------


def _client(index, *, sent_s=0.0, count=3, interval_s=0.1, late_s=(), ids=None):
    """A client whose event k came ``k * interval_s`` after its first, plus ``late_s[k]``."""
    lateness = list(late_s) + [0.0] * count
    arrivals = tuple(0.01 + k * interval_s + lateness[k] for k in range(count))
    return ClientRun(index, sent_s, arrivals,
                     tuple(ids or (str(n) for n in range(1, count + 1))), ended=True)


def _streams(clients, *, interval_s=0.1, count=3, kib_per_stream=50, worker_class="asgi",
             **options):
    baseline = 40 * MiB
    return StreamsRun(worker_class, count, interval_s, tuple(clients), seconds=1.0,
                      rss_baseline=baseline,
                      rss_peak=baseline + round(kib_per_stream * KiB * len(clients)), **options)


def _good(n=200, **kwargs):
    return _streams([_client(i, count=kwargs.get("count", 3),
                             interval_s=kwargs.get("interval_s", 0.1)) for i in range(n)],
                    **kwargs)


def _judged(run):
    return {t.name.removeprefix("event streams: "): t for t in sse_bench.evaluate_streams(run)}


def test_event_stream_targets_are_met_by_streams_that_meet_them():
    targets = _judged(_good())
    assert {name: t.met for name, t in targets.items()} == {
        "none lost or reordered": True, "delay p95": True, "worker memory": True}
    assert targets["none lost or reordered"].measured == (
        "200 of 200 streams open at once; 0 of 600 events lost, 0 reordered, 0 clients failed")
    assert targets["worker memory"].measured.startswith("50 KiB per stream")


def _missed(run):
    return [name for name, t in _judged(run).items() if not t.met]


def test_each_event_stream_target_is_missed_for_its_own_reason():
    good = [_client(i) for i in range(199)]
    lost = _streams([*good, _client(199, count=2, ids=("1", "3"))])
    assert _missed(lost) == ["none lost or reordered"]
    assert "1 of 600 events lost, 0 reordered" in _judged(lost)["none lost or reordered"].measured
    swapped = _streams([*good, _client(199, ids=("1", "3", "2"))])
    assert _missed(swapped) == ["none lost or reordered"]
    assert "0 of 600 events lost, 1 reordered" in _judged(swapped)[
        "none lost or reordered"].measured
    assert _missed(_good(199)) == ["none lost or reordered"]  # fewer streams than the target's
    # One client in five gets its 2nd and 3rd events 150 ms late: 13% of events, over p95.
    late = _streams([_client(i, late_s=(0, 0.15, 0.15) if i % 5 == 0 else ()) for i in range(200)])
    assert _missed(late) == ["delay p95"] and "p95 150.0 ms" in _judged(late)["delay p95"].measured
    assert _missed(_good(interval_s=0.25)) == ["delay p95"]  # 4 events/s: not the target's rate
    assert _missed(_good(kib_per_stream=65)) == ["worker memory"]
    unmeasured = dataclasses.replace(_good(), rss_baseline=None, rss_peak=None)
    assert _missed(unmeasured) == ["worker memory"]
    assert _judged(unmeasured)["worker memory"].measured == "not measured"


def test_lost_reordered_and_failed_streams_are_counted_apart():
    run = _streams([
        _client(0, ids=("1", "2", "2")),  # a repeat: counted as out of order, and 3 lost
        _client(1, count=2, ids=("2", "1")),  # both came, 3 lost, one out of order
        ClientRun(2, 0.0, (), (), ended=False, error="TimeoutError: "),
    ])
    assert (run.lost_events, run.reordered_events, run.failed_clients) == (1 + 1 + 3, 2, 1)
    assert not run.all_in_order


def test_a_queue_of_streams_shows_in_who_was_served_at_once():
    """Six clients on two sync workers (made up): two streams at a time, three rounds."""
    clients = [_client(i, sent_s=0.0, count=3) for i in range(2)]
    clients += [ClientRun(i, 0.0, tuple(round_s + 0.01 + k * 0.1 for k in range(3)),
                          ("1", "2", "3"), ended=True)
                for i, round_s in zip(range(2, 6), (0.3, 0.3, 0.6, 0.6), strict=True)]
    queued = _streams(clients, worker_class="sync", workers=2)
    assert (queued.served_at_once, queued.held_at_once) == (2, 2)
    assert queued.rss_per_stream == pytest.approx(50 * KiB * 6 / 2)  # per stream held at once
    # Slow first events alone are not a queue: on ASGI, 200 accepted slowly, none ended yet.
    slow = _streams([_client(i, sent_s=0.0, late_s=()) for i in range(200)])
    slow = dataclasses.replace(slow, clients=tuple(
        dataclasses.replace(c, arrivals=tuple(t + 0.5 for t in c.arrivals)) for c in slow.clients))
    assert (slow.served_at_once, slow.held_at_once) == (200, 200)


def test_the_event_streams_summary_carries_every_worker_class():
    sync = _streams([_client(i) for i in range(2)] + [
        ClientRun(2, 0.0, (0.31, 0.41, 0.51), ("1", "2", "3"), ended=True)],
        worker_class="sync", workers=2)
    gthread = _streams([_client(i) for i in range(4)], worker_class="gthread", threads=4)
    summary = sse_bench.bench_summary([_good(), sync, gthread])
    assert json.loads(json.dumps(summary)) == summary
    assert [t["met"] for t in summary["targets"]] == [True, True, True]  # judged on ASGI
    assert [(r["worker_class"], r["workers"], r["threads"], r["clients"], r["served_at_once"])
            for r in summary["runs"]] == [("asgi", 1, None, 200, 200), ("sync", 2, None, 3, 2),
                                          ("gthread", 1, 4, 4, 4)]
    text = sse_bench.format_summary(summary)
    assert "sync: 2 of 3 clients got their first event at once; the other 1 waited" in text
    assert "a worker, 20 MiB" in text  # 40 MiB before the streams, over two workers
    assert "[met] event streams: worker memory" in text
    assert "Event stream targets" not in sse_bench.format_summary(summary, targets=False)
    with pytest.raises(ValueError, match="at least one run"):
        sse_bench.bench_summary([])


def _server(name, *, lag_s=0.002, client_cpu_s=0.3, n=1000, **options):
    run = _good(n)
    run = dataclasses.replace(run, clients=tuple(
        dataclasses.replace(c, lags=(lag_s,) * len(c.ids)) for c in run.clients), **options)
    return server_bench.ServerStreams(name, "1.0", run, worker_cpu_s=0.6, client_cpu_s=client_cpu_s,
                                      worker_threads=n + 1, worker_nofile=20000)


def test_server_streams_are_judged_ranked_and_their_client_checked():
    """Made up: one server meets every target; one is late after sending (stamped delay)
    and had its listen queue overflow, while the client kept a core busy."""
    good, late = _server("uvicorn"), _server("daphne", lag_s=0.3, client_cpu_s=0.95,
                                             listen_overflows=600)
    assert [t.met for t in server_bench.evaluate_server(good)] == [True] * 4
    assert [t.met for t in server_bench.evaluate_server(late)] == [True, False, True, True]
    assert good.cpu_per_1000_events == pytest.approx(0.6 / 3000 * 1000)  # 3,000 events
    limits = server_bench.ClientLimits(soft=20000, hard=20000, soft_before=1024, needed=1100)
    summary = server_bench.bench_summary([late, good], limits, seconds=12.0)
    assert json.loads(json.dumps(summary)) == summary
    assert [s["server"] for s in summary["servers"]] == ["uvicorn", "daphne"]  # ranked
    assert summary["servers"][1]["targets_met"] == ["held", "schedule p95", "memory"]
    assert [t["name"].split(": ")[0] for t in summary["targets"]] == (
        ["server streams, daphne"] * 4 + ["server streams, uvicorn"] * 4)  # in run order
    text = server_bench.format_summary(summary)
    assert "RLIMIT_NOFILE 20000 (hard 20000, raised from 1024) for at most 1100" in text
    assert "daphne: the client used 95% of a core: it may be the bottleneck" in text
    assert "daphne: the kernel dropped 600 connection attempts" in text
    assert "uvicorn: the client used" not in text
    assert "[MISSED] server streams, daphne: stamped delay p95" in text
    assert "Server stream targets" not in server_bench.format_summary(summary, targets=False)
    with pytest.raises(ValueError, match="at least one server"):
        server_bench.bench_summary([], limits, seconds=0.0)


def test_a_missed_target_is_reported_as_missed():
    assert all(t.met for t in bench_report.evaluate(SIZES, SWEEP))
    leaky_point = dataclasses.replace(SIZES.streaming[-1], worker_rss_delta=50 * MiB)
    leaky = dataclasses.replace(SIZES, streaming=[SIZES.streaming[0], leaky_point])
    missed = [t.name for t in bench_report.evaluate(leaky, SWEEP) if not t.met]
    assert missed == ["streaming worker memory"]
    # Per-row production costs 0.1 s / rows; make each chunk cost as much as 4096 rows.
    costly_point = dataclasses.replace(SWEEP.points[0], server_cpu_s=0.11 + 0.1 * 4096)
    costly_chunks = dataclasses.replace(SWEEP, points=[costly_point, SWEEP.points[1]])
    missed = [t.name for t in bench_report.evaluate(SIZES, costly_chunks) if not t.met]
    assert missed == ["default chunk_rows"]
    costs = bench_report.chunk_costs(SWEEP)
    assert costs.per_chunk_server_s == pytest.approx((1.5 - 0.11) / (ROWS - 49))
    assert costs.overhead < 0.05
    without_default = dataclasses.replace(SWEEP, points=SWEEP.points[:1])
    default_target = bench_report.evaluate(SIZES, without_default)[-1]
    assert (default_target.name, default_target.measured, default_target.met) == (
        "default chunk_rows", "4096 not in the sweep", False)


def _made_up_results():
    timeline = [(0.0, 0), (0.004, 1000), (0.05, MiB)]
    run = bench_results.ArrivalRun(ttfb_s=0.004, total_s=0.05, timeline=timeline)
    peak = bench_results.ClientPeak(how="content", bytes=MiB, peak=2 * MiB, read_size=64 * KiB)
    return bench_results.BenchResults(
        created="2030-01-01T00:00:00+00:00",
        config=bench_results.BenchConfig(sizes=[MiB, 16 * MiB], repeats=1),
        machine=bench_results.Machine(versions={"django": "5.2", "nginx": None}, platform="test",
                              cpus=2, memory_total=4 * 2**30, load_average=[0.5, 0.4, 0.3]),
        default_chunk_rows=4096, max_plain_rows=2_000_000, sizes=SIZES, chunks=SWEEP,
        arrival=bench_results.Arrival(rows=50_000, bytes=MiB, streaming=run, plain=run),
        client_memory=bench_results.ClientMemory(
            rows=50_000, bytes=MiB, content=peak,
            iter_content=dataclasses.replace(peak, how="iter_content", peak=70 * KiB)),
        elapsed_s=1.5, targets=bench_report.evaluate(SIZES, SWEEP))


def test_results_round_trip_through_json_with_their_schema_version():
    results = _made_up_results()
    text = results.to_json()
    data = json.loads(text)
    assert next(iter(data)) == "schema_version"
    assert data["schema_version"] == bench_results.SCHEMA_VERSION
    again = bench_results.BenchResults.from_json(text)
    assert again == results
    assert again.arrival.streaming.timeline == [(0.0, 0), (0.004, 1000), (0.05, MiB)]
    assert isinstance(again.sizes.streaming[0].worker_rss_delta, int)
    assert again.machine.versions["nginx"] is None


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.pop("schema_version"), r"has no schema version .*run `make bench` again"),
    (lambda d: d.update(schema_version=bench_results.SCHEMA_VERSION + 1),
     rf"has schema version {bench_results.SCHEMA_VERSION + 1}, .* reads schema version "
     rf"{bench_results.SCHEMA_VERSION}: run `make bench` again"),
    (lambda d: d["chunks"]["points"][1].pop("share"),
     r"^results.json: chunks.points\[1\]: missing 'share' \(a ChunkPoint has chunk_rows, "),
    (lambda d: d["sizes"]["plain"][0].update(ttfb_ms=5),
     r"^results.json: sizes.plain\[0\]: unexpected 'ttfb_ms'"),
    (lambda d: d["arrival"]["plain"].update(timeline=[[0.0, 0, 1]]),
     r"arrival.plain.timeline\[0\]: expected a list of 2, got \[0.0, 0, 1\]"),
    (lambda d: d["client_memory"]["content"].update(peak="big"),
     r"client_memory.content.peak: expected an int, got 'big'"),
    (lambda d: d["targets"][0].update(met=1), r"targets\[0\].met: expected a bool, got 1"),
])
def test_a_file_this_version_cannot_read_says_so(change, message):
    data = _made_up_results().to_dict()
    change(data)
    with pytest.raises(SchemaError, match=message):
        bench_results.BenchResults.from_dict(data, "results.json")


def test_the_report_is_built_with_the_shared_table_formatter():
    report = bench_report.format_table(_made_up_results())
    size_table = format_table(bench_report._size_rows(SIZES), right=(
        "body", "TTFB ms", "total ms", "MiB/s", "worker RSS +MB"))
    assert size_table in report
    lines = report.splitlines()
    header = next(line for line in lines if line.startswith("kind"))
    first = lines[lines.index(header) + 2]
    assert first.startswith("StreamingHttpResponse") and first.endswith("0.0")
    assert "[met] streaming TTFB flat" in report and "Chunk sizes, 4.0 MiB streamed" in report


def test_format_table_right_aligns_the_columns_asked_for_and_adds_a_title():
    rows = [{"name": "a", "n": "1"}, {"name": "bbb", "n": "100"}]
    assert format_table(rows, right=("n",), title="Counts:").splitlines() == [
        "Counts:", "name    n", "----  ---", "a       1", "bbb   100"]
    assert format_table(rows).splitlines()[2] == "a     1"  # left-aligned by default
    assert format_table([], title="Nothing:") == "Nothing:\n(no rows)"
    with pytest.raises(ValueError, match="columns the rows do not have"):
        format_table(rows, right=("count",))
