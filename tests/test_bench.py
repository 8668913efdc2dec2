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
from streamlab.measurement import bench, bench_results
from streamlab.paths import PROJECT_ROOT
from streamlab.schema import SchemaError, decode
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
        "--no-progress", "--out", str(out),
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
    assert len(results.targets) == 5 and all(isinstance(t.met, bool) for t in results.targets)
    for t in results.targets:
        assert t.measured in done.stdout
    assert "StreamingHttpResponse" in done.stdout and "in-process CPU s" in done.stdout
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == sorted(f"{name}.png" for name in (
        "arrival", "ttfb_vs_size", "worker_memory_vs_size", "client_memory",
        "throughput_vs_chunk_size"))
    assert all((out / name).stat().st_size > 10_000 for name in pngs)


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


def test_a_missed_target_is_reported_as_missed():
    assert all(t.met for t in bench.evaluate(SIZES, SWEEP))
    leaky_point = dataclasses.replace(SIZES.streaming[-1], worker_rss_delta=50 * MiB)
    leaky = dataclasses.replace(SIZES, streaming=[SIZES.streaming[0], leaky_point])
    missed = [t.name for t in bench.evaluate(leaky, SWEEP) if not t.met]
    assert missed == ["streaming worker memory"]
    # Per-row production costs 0.1 s / rows; make each chunk cost as much as 4096 rows.
    costly_point = dataclasses.replace(SWEEP.points[0], server_cpu_s=0.11 + 0.1 * 4096)
    costly_chunks = dataclasses.replace(SWEEP, points=[costly_point, SWEEP.points[1]])
    missed = [t.name for t in bench.evaluate(SIZES, costly_chunks) if not t.met]
    assert missed == ["default chunk_rows"]
    costs = bench.chunk_costs(SWEEP)
    assert costs.per_chunk_server_s == pytest.approx((1.5 - 0.11) / (ROWS - 49))
    assert costs.overhead < 0.05
    without_default = dataclasses.replace(SWEEP, points=SWEEP.points[:1])
    default_target = bench.evaluate(SIZES, without_default)[-1]
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
        elapsed_s=1.5, targets=bench.evaluate(SIZES, SWEEP))


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
    report = bench.format_table(_made_up_results())
    size_table = format_table(bench._size_rows(SIZES), right=(
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
