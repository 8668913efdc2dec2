"""The measurement series behind notebook 04 and ``make bench``.

Each series repeats ``streamlab.measure()`` and keeps the median, because the
machine is shared: one slow run says more about the neighbours than about
Django. Repeats are taken round-robin (every configuration once, then again),
so a burst of background load spreads over all of them instead of landing on
one.

Memory is measured on a fresh worker every time. CPython and the C allocator
keep some freed memory for reuse instead of returning it to the system, so a
worker that already built a big body can start the next request with a raised
baseline and then show a smaller rise. ``fresh_worker()`` stops the worker,
lets the Gunicorn master fork a replacement (the app is preloaded, so that
takes a fraction of a second) and warms it up with two tiny requests, so the
first-request set-up cost is not counted as the response's memory or time.

Every series returns a typed result (``SizeSeries``, ``ChunkSweep``,
``Arrival``, ``ClientMemory``); ``run()`` returns them all as one
``BenchResults``, judged by ``bench_report.evaluate``, which ``to_json()``
writes and ``BenchResults.load()`` reads back. The file carries
``SCHEMA_VERSION``: a file of another version is refused with a
``SchemaError`` that says to run ``make bench`` again, instead of being
misread.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import psutil
import requests
from tqdm import tqdm

from demo_app import csvgen
from demo_app import settings as demo_settings

from ..environment import package_versions
from ..servers.gunicorn import DemoServer, start_server
from .bench_report import evaluate
from .bench_results import (
    KINDS,
    Arrival,
    ArrivalRun,
    BenchConfig,
    BenchResults,
    ChunkPoint,
    ChunkSweep,
    ClientMemory,
    ClientPeak,
    Machine,
    SizePoint,
    SizeSeries,
    WholeBody,
)
from .request import READ_SIZE, Measurement, measure

PATHS = {"plain": "/download_csv", "streaming": "/download_csv_streaming"}
WARM_UP_ROWS = 10_000

# -- URLs and sizes ---------------------------------------------------------------


def csv_url(server: DemoServer, kind: str, rows: int, chunk_rows: int | None = None) -> str:
    """The demo app's URL for ``rows`` CSV rows sent whole (``plain``) or ``streaming``."""
    if kind not in PATHS:
        raise ValueError(f"kind must be one of {sorted(PATHS)}, got {kind!r}.")
    query = f"rows={rows}" + (f"&chunk_rows={chunk_rows}" if chunk_rows is not None else "")
    return server.url(f"{PATHS[kind]}?{query}")


def size_plan(sizes: Iterable[int], max_plain_rows: int | None = None) -> dict[str, list[int]]:
    """Row counts per kind for the body sizes asked for.

    The plain view refuses more than ``settings.DEMO_MAX_ROWS`` rows (it would
    hold the whole body several times over in the worker), so sizes beyond the
    cap are measured once, at the cap, for that kind.
    """
    cap = demo_settings.DEMO_MAX_ROWS if max_plain_rows is None else max_plain_rows
    streaming = sorted({csvgen.rows_for_size(size) for size in sizes})
    plain = sorted({min(rows, cap) for rows in streaming})
    return {"streaming": streaming, "plain": plain}


# -- a fresh worker for every memory measurement -----------------------------------


def bench_server(name: str = "bench", timeout: float = 600) -> DemoServer:
    """One sync worker with the app preloaded in the master, so a new worker is a quick fork.

    The timeout is long because the sync worker is killed by the master when a
    single request outlasts it, and a 1 GiB stream takes tens of seconds here.
    """
    return start_server(worker_class="sync", workers=1, timeout=timeout,
                        extra_args=["--preload"], name=name)


def fresh_worker(
    server: DemoServer, *, warm_up: bool = True, timeout: float = 15.0
) -> psutil.Process:
    """Replace the server's worker with a new one that has served only two tiny requests.

    The old worker is asked to exit (SIGTERM, which a Gunicorn worker treats as
    "finish and leave"); the master forks a replacement. The warm-up requests
    pay for what any first request pays (URL resolver, lazy imports, first
    allocations), so the measured request starts from a settled baseline.
    ``warm_up=False`` leaves the new worker cold, to show that cost.
    """
    old = server.worker_processes()
    if not old:
        raise RuntimeError(f"The server has no worker to replace. Its log:\n{server.log_tail()}")
    for process in old:
        process.terminate()
    psutil.wait_procs(old, timeout=timeout)
    old_pids = {p.pid for p in old}
    deadline = time.monotonic() + timeout
    while True:
        workers = server.worker_processes()
        if workers and not {w.pid for w in workers} & old_pids:
            break
        if time.monotonic() > deadline or not server.running:
            raise RuntimeError(
                f"Gunicorn did not start a replacement worker within {timeout:g} s. "
                f"Its log:\n{server.log_tail()}"
            )
        time.sleep(0.01)
    for kind in KINDS if warm_up else ():
        requests.get(csv_url(server, kind, WARM_UP_ROWS), timeout=timeout).raise_for_status()
    _wait_until_idle(workers[0], timeout)
    return workers[0]


def _wait_until_idle(process: psutil.Process, timeout: float) -> None:
    """Wait until the worker sleeps (back in accept) and its RSS has stopped moving."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        rss = process.memory_info().rss
        if rss == last and process.status() == psutil.STATUS_SLEEPING:
            return
        last = rss
        time.sleep(0.02)


def measure_on_fresh_worker(server: DemoServer, url: str) -> Measurement:
    """``measure()`` one request on a worker that has served nothing big before it."""
    fresh_worker(server)
    return measure(url, server=server)


def _checked(measurement: Measurement, expected_bytes: int, server: DemoServer) -> Measurement:
    if measurement.status != 200 or measurement.nbytes != expected_bytes:
        raise RuntimeError(
            f"{measurement.url} gave status {measurement.status} and {measurement.nbytes} bytes, "
            f"expected 200 and {expected_bytes}. The server's log:\n{server.log_tail()}"
        )
    return measurement


# -- the series ----------------------------------------------------------------


def _median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def _progress(total: int, desc: str, enabled: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit="req", disable=not enabled, leave=True)




def size_series(
    server: DemoServer,
    sizes: Sequence[int],
    repeats: int = 3,
    *,
    max_plain_rows: int | None = None,
    progress: bool = False,
) -> SizeSeries:
    """TTFB, total time and worker memory per kind and body size (medians over ``repeats``).

    Every request runs on a fresh worker (see ``fresh_worker``). The streaming
    view uses the app's default ``chunk_rows``, as a caller who does not tune
    anything would get.
    """
    plan = size_plan(sizes, max_plain_rows)
    runs: dict[tuple[str, int], list[Measurement]] = {}
    steps = [(kind, rows) for kind in KINDS for rows in plan[kind]]
    with _progress(len(steps) * repeats, "sizes", progress) as bar:
        for _ in range(repeats):
            for kind, rows in steps:
                m = measure_on_fresh_worker(server, csv_url(server, kind, rows))
                runs.setdefault((kind, rows), []).append(_checked(m, csvgen.csv_size(rows), server))
                bar.update()
    points = {kind: [_size_point(kind, rows, runs[kind, rows]) for rows in plan[kind]]
              for kind in KINDS}
    return SizeSeries(streaming=points["streaming"], plain=points["plain"])


def _size_point(kind: str, rows: int, runs: list[Measurement]) -> SizePoint:
    return SizePoint(
        kind=kind,
        rows=rows,
        bytes=runs[0].nbytes,
        chunk_rows=demo_settings.DEMO_DEFAULT_CHUNK_ROWS if kind == "streaming" else None,
        chunked=runs[0].chunked,
        repeats=len(runs),
        headers_s=_median(m.headers_s for m in runs),
        ttfb_s=_median(m.ttfb_s or 0.0 for m in runs),
        total_s=_median(m.total_s for m in runs),
        throughput=_median(m.throughput for m in runs),
        worker_rss_baseline=int(_median(m.worker_rss_baseline or 0 for m in runs)),
        worker_rss_delta=int(_median(m.worker_rss_delta or 0 for m in runs)),
        ttfb_s_runs=[m.ttfb_s for m in runs],
        total_s_runs=[m.total_s for m in runs],
        worker_rss_delta_runs=[m.worker_rss_delta for m in runs],
    )


def generation_throughput(rows: int, chunk_rows: int) -> float:
    """Bytes per second of producing the CSV in-process: ``iter_chunks`` plus encoding, no HTTP.

    This is the ceiling for streaming the same rows: the view cannot send
    faster than it can produce. Encoding is included because Django encodes
    each ``str`` chunk to bytes before the server writes it.
    """
    start = time.perf_counter()
    nbytes = sum(len(chunk.encode()) for chunk in csvgen.iter_chunks(rows, chunk_rows))
    return nbytes / (time.perf_counter() - start)


@dataclass(frozen=True)
class _StreamedRun:
    """One streamed request of the chunk sweep, with the CPU both sides spent on it."""

    throughput: float
    total_s: float
    ttfb_s: float
    server_cpu_s: float
    client_cpu_s: float


def chunk_series(
    server: DemoServer,
    body: int,
    chunk_rows: Sequence[int],
    repeats: int = 3,
    *,
    progress: bool = False,
) -> ChunkSweep:
    """Throughput of the streaming view per ``chunk_rows``, with the in-process ceiling.

    Each streamed request is followed at once by producing the same rows
    in-process, and both are summarised the same way, by their median over
    ``repeats``: on a shared machine background load slows both, and comparing
    one side's median with the other side's best run would not be fair. The
    fastest in-process run is kept as well (``generation_best``): it is the
    ceiling drawn in the figure, since load only ever slows a run down.
    The same rows sent whole by the plain view are the end-to-end reference.

    CPU seconds are recorded too: the worker's and this client's per request,
    and the in-process run's. ``cpu_share`` (in-process CPU over worker CPU for
    the same rows) shows the overhead of Django, Gunicorn and the socket in a
    measure that load on the machine disturbs less than wall-clock time.
    """
    rows = csvgen.rows_for_size(body)
    expected = csvgen.csv_size(rows)
    streamed: dict[int, list[_StreamedRun]] = {c: [] for c in chunk_rows}
    generated: dict[int, list[tuple[float, float]]] = {c: [] for c in chunk_rows}
    plain: list[Measurement] = []
    worker = server.worker_processes()[0]
    with _progress((len(chunk_rows) + 1) * repeats, "chunk sizes", progress) as bar:
        for _ in range(repeats):
            for c in chunk_rows:
                streamed[c].append(_timed_with_cpu(server, worker, rows, c, expected))
                generated[c].append(_generated_with_cpu(rows, c))
                bar.update()
            plain.append(_checked(measure(csv_url(server, "plain", rows)), expected, server))
            bar.update()
    return ChunkSweep(
        rows=rows,
        bytes=expected,
        repeats=repeats,
        read_size=READ_SIZE,
        default_chunk_rows=demo_settings.DEMO_DEFAULT_CHUNK_ROWS,
        plain=WholeBody(
            total_s=_median(m.total_s for m in plain),
            ttfb_s=_median(m.ttfb_s or 0.0 for m in plain),
            throughput=_median(m.throughput for m in plain),
        ),
        points=[_chunk_point(c, rows, expected, streamed[c], generated[c]) for c in chunk_rows],
    )


def _chunk_point(
    chunk_rows: int, rows: int, expected: int, runs: list[_StreamedRun],
    generated: list[tuple[float, float]],
) -> ChunkPoint:
    """Medians of one chunk size's streamed runs and in-process ``(speed, cpu)`` runs."""
    chunks = -(-rows // chunk_rows)
    throughput = _median(r.throughput for r in runs)
    server_cpu_s = _median(r.server_cpu_s for r in runs)
    generation = _median(speed for speed, _ in generated)
    generation_cpu_s = _median(cpu for _, cpu in generated)
    return ChunkPoint(
        chunk_rows=chunk_rows,
        chunk_bytes=expected / chunks,
        chunks=chunks,
        throughput=throughput,
        total_s=_median(r.total_s for r in runs),
        ttfb_s=_median(r.ttfb_s for r in runs),
        server_cpu_s=server_cpu_s,
        client_cpu_s=_median(r.client_cpu_s for r in runs),
        generation_throughput=generation,
        generation_best=max(speed for speed, _ in generated),
        generation_cpu_s=generation_cpu_s,
        share=throughput / generation,
        # psutil's CPU times tick in 10 ms steps: a tiny body may show none at all.
        cpu_share=generation_cpu_s / server_cpu_s if server_cpu_s > 0 else None,
        throughput_runs=[r.throughput for r in runs],
        generation_throughput_runs=[speed for speed, _ in generated],
    )


def _timed_with_cpu(
    server: DemoServer, worker: psutil.Process, rows: int, chunk_rows: int, expected: int
) -> _StreamedRun:
    before_worker = sum(worker.cpu_times()[:2])
    before_client = time.process_time()
    m = _checked(measure(csv_url(server, "streaming", rows, chunk_rows)), expected, server)
    return _StreamedRun(
        throughput=m.throughput,
        total_s=m.total_s,
        ttfb_s=m.ttfb_s or 0.0,
        server_cpu_s=sum(worker.cpu_times()[:2]) - before_worker,
        client_cpu_s=time.process_time() - before_client,
    )


def _generated_with_cpu(rows: int, chunk_rows: int) -> tuple[float, float]:
    """``generation_throughput`` and the CPU seconds it took: ``(bytes/s, cpu_s)``."""
    cpu_before = time.process_time()
    speed = generation_throughput(rows, chunk_rows)
    return speed, time.process_time() - cpu_before


def arrival(server: DemoServer, body: int) -> Arrival:
    """Bytes received over time for the same CSV sent whole and streamed (one run each)."""
    rows = csvgen.rows_for_size(body)
    expected = csvgen.csv_size(rows)
    runs = {}
    for kind in KINDS:
        m = _checked(measure_on_fresh_worker(server, csv_url(server, kind, rows)),
                     expected, server)
        runs[kind] = ArrivalRun(ttfb_s=m.ttfb_s, total_s=m.total_s, timeline=list(m.timeline))
    return Arrival(rows=rows, bytes=expected, streaming=runs["streaming"], plain=runs["plain"])


def client_peak_memory(url: str, how: str, read_size: int = READ_SIZE) -> ClientPeak:
    """Peak Python memory of this process while downloading ``url`` with ``requests``.

    ``how="content"`` is ``requests.get(url).content`` (the whole body in one
    bytes object); ``how="iter_content"`` reads ``read_size`` pieces with
    ``stream=True`` and keeps only their count. tracemalloc counts every
    allocation Python makes, so the peak includes requests' own buffers.
    """
    if how not in ("content", "iter_content"):
        raise ValueError(f"how must be 'content' or 'iter_content', got {how!r}.")
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    baseline, _ = tracemalloc.get_traced_memory()
    nbytes = 0
    try:
        if how == "content":
            response = requests.get(url, timeout=120)
            nbytes = len(response.content)
            del response
        else:
            with requests.get(url, stream=True, timeout=120) as response:
                for piece in response.iter_content(read_size):
                    nbytes += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return ClientPeak(how=how, bytes=nbytes, peak=peak - baseline, read_size=read_size)


def client_memory(server: DemoServer, body: int) -> ClientMemory:
    """``.content`` against ``iter_content`` for the same streamed CSV."""
    rows = csvgen.rows_for_size(body)
    url = csv_url(server, "streaming", rows)
    return ClientMemory(
        rows=rows,
        bytes=csvgen.csv_size(rows),
        content=client_peak_memory(url, "content"),
        iter_content=client_peak_memory(url, "iter_content"),
    )


# -- the whole benchmark ---------------------------------------------------------


def _load_average() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def machine_info(load_average_before: list[float] | None = None) -> Machine:
    """Versions and the machine, so a result file says what it was measured on."""
    return Machine(
        versions=package_versions(),
        platform=platform.platform(),
        cpus=os.cpu_count(),
        memory_total=psutil.virtual_memory().total,
        load_average=_load_average(),
        load_average_before=load_average_before,
    )


def run(
    config: BenchConfig,
    *,
    server: DemoServer | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> BenchResults:
    """Every series of the benchmark; starts (and stops) its own server unless given one."""
    say = log or (lambda _message: None)
    own = server is None
    load_before = _load_average()
    server = server or bench_server()
    started = time.perf_counter()
    try:
        say(f"Demo app under Gunicorn at {server.base_url} ({server.worker_class} worker)")
        sizes = size_series(server, config.sizes, config.repeats, progress=progress)
        chunks = chunk_series(server, config.chunk_body, config.chunk_rows, config.repeats,
                              progress=progress)
        timelines = arrival(server, max(p.bytes for p in sizes.plain))
        client = client_memory(server, config.client_body)
    finally:
        if own:
            server.stop()
    return BenchResults(
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        config=BenchConfig(**asdict(config)),  # a copy: the caller may change theirs
        machine=machine_info(load_before),
        default_chunk_rows=demo_settings.DEMO_DEFAULT_CHUNK_ROWS,
        max_plain_rows=demo_settings.DEMO_MAX_ROWS,
        sizes=sizes,
        chunks=chunks,
        arrival=timelines,
        client_memory=client,
        elapsed_s=time.perf_counter() - started,
        targets=evaluate(sizes, chunks),
    )
