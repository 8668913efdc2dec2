"""The benchmark library at tiny sizes, against a real Gunicorn.

Values are checked for sanity (positive, byte counts exact); timing only as
generous ratios measured in the same run.
"""

import copy
import json
import subprocess
import sys

import pytest

from demo_app import csvgen
from streamlab.measurement import bench
from streamlab.paths import PROJECT_ROOT

KiB, MiB = bench.KiB, bench.MiB


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
    assert set(series) == {"streaming", "plain"}
    for kind, points in series.items():
        assert [p["rows"] for p in points] == sorted(p["rows"] for p in points)
        assert len(points) == 2
        for p in points:
            assert p["kind"] == kind and p["repeats"] == 1
            assert p["bytes"] == csvgen.csv_size(p["rows"]) >= 64 * KiB
            assert 0 < p["headers_s"] <= p["ttfb_s"] <= p["total_s"]
            assert p["throughput"] > 0
            assert p["worker_rss_baseline"] > 10 * MiB  # a Django worker is not tiny
            assert p["worker_rss_delta"] >= 0
            assert p["chunked"] is (kind == "streaming")
    big_plain, big_streaming = series["plain"][-1], series["streaming"][-1]
    # The whole 1 MiB body is held (several times over) by the plain view only.
    assert big_plain["worker_rss_delta"] > big_streaming["worker_rss_delta"] + 1 * MiB
    json.dumps(series)


def test_size_plan_caps_the_plain_view():
    plan = bench.size_plan([1 * MiB, 1024 * MiB], max_plain_rows=100_000)
    assert plan["streaming"] == [csvgen.rows_for_size(MiB), csvgen.rows_for_size(1024 * MiB)]
    assert plan["plain"] == [csvgen.rows_for_size(MiB), 100_000]


def test_chunk_series_per_row_is_slower_than_batched(server):
    sweep = bench.chunk_series(server, 256 * KiB, [1, 2048], repeats=1)
    assert sweep["bytes"] == csvgen.csv_size(sweep["rows"])
    per_row, batched = sweep["points"]
    assert per_row["chunks"] == sweep["rows"] and batched["chunks"] == -(-sweep["rows"] // 2048)
    for p in sweep["points"]:
        assert p["throughput"] > 0 and p["generation_throughput"] > 0
        assert p["server_cpu_s"] >= 0 and p["client_cpu_s"] > 0
    # CPU time, not wall-clock: another process on the machine stretches the latter.
    cpu = {name: p["server_cpu_s"] + p["client_cpu_s"] for name, p in
           (("per_row", per_row), ("batched", batched))}
    assert cpu["per_row"] > 2 * cpu["batched"], cpu
    assert sweep["plain"]["total_s"] > 0
    json.dumps(sweep)


def test_client_memory_content_holds_the_body_iter_content_does_not(server):
    result = bench.client_memory(server, 2 * MiB)
    body = result["bytes"]
    assert result["content"]["bytes"] == result["iter_content"]["bytes"] == body
    assert result["content"]["peak"] >= body
    assert result["iter_content"]["peak"] < body / 4


def test_the_script_writes_json_and_figures_and_checks_targets(tmp_path):
    out = tmp_path / "bench"
    command = [
        sys.executable, "scripts/bench.py", "--sizes", "0.1,0.5", "--repeats", "1",
        "--chunk-rows", "1,4096", "--chunk-mib", "0.25", "--client-mib", "0.5",
        "--no-progress", "--out", str(out),
    ]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert {"sizes", "chunks", "arrival", "client_memory", "machine", "targets"} <= set(results)
    assert results["machine"]["versions"]["django"]
    for kind in ("streaming", "plain"):
        for p in results["sizes"][kind]:
            assert p["bytes"] == csvgen.csv_size(p["rows"])
    names = [t["name"] for t in results["targets"]]
    assert len(names) == 5 and all(isinstance(t["met"], bool) for t in results["targets"])
    for t in results["targets"]:
        assert t["measured"] in done.stdout
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == sorted(f"{name}.png" for name in (
        "arrival", "ttfb_vs_size", "worker_memory_vs_size", "client_memory",
        "throughput_vs_chunk_size"))
    assert all((out / name).stat().st_size > 10_000 for name in pngs)


def test_a_missed_target_is_reported_as_missed():
    points = {"streaming": [
        {"bytes": MiB, "ttfb_s": 0.004, "worker_rss_delta": 0},
        {"bytes": 16 * MiB, "ttfb_s": 0.005, "worker_rss_delta": 0},
    ]}
    rows = 200_000
    common = {"generation_throughput": 40 * MiB, "generation_cpu_s": 0.1, "ttfb_s": 0.005}
    sweep = {"bytes": 4 * MiB, "rows": rows, "default_chunk_rows": 4096,
             "plain": {"total_s": 0.2}, "points": [
        {**common, "chunk_rows": 1, "chunks": rows, "chunk_bytes": 20, "throughput": 2 * MiB,
         "share": 0.05, "total_s": 2.0, "server_cpu_s": 1.5, "client_cpu_s": 1.0},
        {**common, "chunk_rows": 4096, "chunks": 49, "chunk_bytes": 80 * KiB,
         "throughput": 38 * MiB, "share": 0.95, "total_s": 0.1, "server_cpu_s": 0.11,
         "client_cpu_s": 0.01},
    ]}
    results = {"sizes": points, "chunks": sweep, "default_chunk_rows": 4096}
    assert all(t["met"] for t in bench.evaluate(results))
    leaky = copy.deepcopy(results)
    leaky["sizes"]["streaming"][-1]["worker_rss_delta"] = 50 * MiB
    missed = [t["name"] for t in bench.evaluate(leaky) if not t["met"]]
    assert missed == ["streaming worker memory"]
    # Per-row production costs 0.1 s / rows; make each chunk cost as much as 4096 rows.
    costly_chunks = copy.deepcopy(results)
    costly_chunks["chunks"]["points"][0]["server_cpu_s"] = 0.11 + 0.1 * 4096
    missed = [t["name"] for t in bench.evaluate(costly_chunks) if not t["met"]]
    assert missed == ["default chunk_rows"]
    costs = bench.chunk_costs(results["chunks"])
    assert costs["per_chunk_server_s"] == pytest.approx((1.5 - 0.11) / (rows - 49))
    assert costs["overhead"] < 0.05
