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
``BenchResults``, which ``to_json()`` writes and ``BenchResults.load()`` reads
back. The file carries ``SCHEMA_VERSION``: a file of another version is
refused with a ``SchemaError`` that says to run ``make bench`` again, instead
of being misread.
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

from .. import tables
from ..environment import package_versions
from ..servers.gunicorn import DemoServer, start_server
from .bench_results import (
    KINDS,
    LABELS,
    Arrival,
    ArrivalRun,
    BenchConfig,
    BenchResults,
    ChunkCosts,
    ChunkPoint,
    ChunkSweep,
    ClientMemory,
    ClientPeak,
    KiB,
    Machine,
    MiB,
    SizePoint,
    SizeSeries,
    Target,
    WholeBody,
    target_lines,
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


def chunk_costs(chunks: ChunkSweep, chunk_rows: int | None = None) -> ChunkCosts:
    """Split the CPU cost of streaming into a fixed cost per chunk and a cost per row.

    Between the smallest chunk size of the sweep and ``chunk_rows`` (default:
    the app's default) the rows are the same and only the number of chunks
    changes, so the difference in CPU seconds divided by the difference in
    chunks is what one chunk costs the worker and the client. ``overhead`` is
    that fixed cost as a fraction of producing one chunk's rows in-process.
    Load on the machine stretches CPU times less than wall-clock times, and it
    stretches both sides of that fraction alike, so the fraction holds up on a
    busy machine where the throughputs do not.
    """
    small = chunks.smallest()
    ref = chunks.point(chunk_rows or chunks.default_chunk_rows)
    extra = small.chunks - ref.chunks
    if extra <= 0:
        raise ValueError("chunk_costs needs a sweep with smaller chunks than the one asked about.")
    server = (small.server_cpu_s - ref.server_cpu_s) / extra
    client = (small.client_cpu_s - ref.client_cpu_s) / extra
    per_row = ref.generation_cpu_s / chunks.rows
    return ChunkCosts(
        chunk_rows=ref.chunk_rows,
        per_chunk_server_s=server,
        per_chunk_client_s=client,
        per_row_s=per_row,
        overhead=(server + client) / (ref.chunk_rows * per_row) if per_row > 0 else None,
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


# -- targets -------------------------------------------------------------------

TTFB_LIMIT_S = 0.020
TTFB_FLATNESS = 2.0
STREAMING_MEMORY_LIMIT = 10 * 10**6
CEILING_SHARE = 0.75
DEFAULT_OVERHEAD = 0.05


def evaluate(sizes: SizeSeries, chunks: ChunkSweep) -> list[Target]:
    """The benchmark's targets, each with the measured value and whether it was met."""
    best = chunks.best()
    return [
        _ttfb_target(sizes.streaming),
        _memory_target(sizes.streaming),
        _ceiling_target(best),
        _whole_body_target(chunks, best),
        _default_target(chunks, best),
    ]


def _ttfb_target(streaming: list[SizePoint]) -> Target:
    smallest, largest = streaming[0], streaming[-1]
    flat = largest.ttfb_s / smallest.ttfb_s
    return Target(
        "streaming TTFB flat",
        f"at {_mib(largest.bytes)} within {TTFB_FLATNESS:g}x of {_mib(smallest.bytes)}"
        f", and under {TTFB_LIMIT_S * 1000:g} ms",
        f"{largest.ttfb_s * 1000:.1f} ms vs {smallest.ttfb_s * 1000:.1f} ms ({flat:.2f}x)",
        flat <= TTFB_FLATNESS and largest.ttfb_s < TTFB_LIMIT_S,
    )


def _memory_target(streaming: list[SizePoint]) -> Target:
    worst = max(streaming, key=lambda p: p.worker_rss_delta)
    return Target(
        "streaming worker memory",
        f"peak RSS above baseline under {STREAMING_MEMORY_LIMIT / 1e6:g} MB at every size",
        f"largest {worst.worker_rss_delta / 1e6:.1f} MB, at {_mib(worst.bytes)}",
        all(p.worker_rss_delta < STREAMING_MEMORY_LIMIT for p in streaming),
    )


def _ceiling_target(best: ChunkPoint) -> Target:
    return Target(
        "batched streaming vs in-process",
        f"best chunk size reaches >= {CEILING_SHARE:.0%} of generating the rows in-process",
        f"{best.chunk_rows} rows/chunk: {_rate(best.throughput)}, {best.share:.0%} of "
        f"{_rate(best.generation_throughput)}{_cpu_note(best)}",
        best.share >= CEILING_SHARE,
    )


def _whole_body_target(chunks: ChunkSweep, best: ChunkPoint) -> Target:
    return Target(
        "batched streaming vs whole body",
        f"best chunk size no slower end to end than HttpResponse at {_mib(chunks.bytes)}",
        f"{best.total_s * 1000:.0f} ms streamed vs {chunks.plain.total_s * 1000:.0f} ms whole",
        best.total_s <= chunks.plain.total_s,
    )


def _default_target(chunks: ChunkSweep, best: ChunkPoint) -> Target:
    """Is the default chunk size on the plateau, without making the first byte wait?

    "On the plateau" is judged from CPU time (``chunk_costs``): the fixed cost
    per chunk must be a small fraction of producing the chunk's rows. The
    wall-clock throughput against the fastest chunk size is reported too, but
    not judged: on a shared machine the fastest point is whichever run the
    neighbours disturbed least.
    """
    name = "default chunk_rows"
    target = (f"fixed cost per chunk <= {DEFAULT_OVERHEAD:.0%} of producing a default chunk "
              f"(CPU time), and its first byte under {TTFB_LIMIT_S * 1000:g} ms")
    default = chunks.by_rows().get(chunks.default_chunk_rows)
    if default is None:
        return Target(name, target, f"{chunks.default_chunk_rows} not in the sweep", False)
    try:
        overhead = chunk_costs(chunks).overhead
    except ValueError:
        overhead = None
    if overhead is None:
        return Target(name, target, "the sweep has no smaller chunk size to compare with", False)
    return Target(
        name, target,
        f"{default.chunk_rows} rows (~{default.chunk_bytes / KiB:.0f} KiB): fixed cost "
        f"{overhead:.1%}, first byte after {default.ttfb_s * 1000:.1f} ms; wall clock "
        f"{_rate(default.throughput)}, {default.throughput / best.throughput:.0%} of "
        f"the fastest ({best.chunk_rows} rows)",
        overhead <= DEFAULT_OVERHEAD and default.ttfb_s < TTFB_LIMIT_S,
    )


def _cpu_note(point: ChunkPoint) -> str:
    if not point.cpu_share:
        return ""
    return f" (in CPU time the worker needed {1 / point.cpu_share:.2f}x the in-process cost)"


def _mib(nbytes: float) -> str:
    return f"{nbytes / MiB:,.0f} MiB" if nbytes >= 10 * MiB else f"{nbytes / MiB:.1f} MiB"


def _rate(bytes_per_s: float) -> str:
    return f"{bytes_per_s / MiB:.1f} MiB/s"


# -- text output ---------------------------------------------------------------


CHUNK_COLUMNS = ("chunk_rows", "~KiB", "MiB/s", "in-process", "share", "worker CPU s",
                 "client CPU s", "in-process CPU s")


def _load(load: Sequence[float] | None) -> str:
    return "n/a" if not load else f"{load[0]:.1f}"


def format_table(results: BenchResults) -> str:
    """The size series, the chunk sweep, client memory and the targets, as text."""
    machine, chunks, client = results.machine, results.chunks, results.client_memory
    sizes = tables.format_table(
        _size_rows(results.sizes), right=("body", "TTFB ms", "total ms", "MiB/s", "worker RSS +MB"),
        title=f"Body sizes, each request on a fresh worker ({_runs(results.config.repeats)}):")
    sweep = tables.format_table(
        _chunk_rows(chunks), right=CHUNK_COLUMNS,
        title=f"Chunk sizes, {_mib(chunks.bytes)} streamed "
              f"(HttpResponse, same rows: {_rate(chunks.plain.throughput)}):")
    lines = [f"{machine.cpus} CPUs; load average (1 min) before "
             f"{_load(machine.load_average_before)}, after {_load(machine.load_average)}",
             "", sizes, "", sweep, "",
             f"Client memory for {_mib(client.bytes)}: .content peak "
             f"{client.content.peak / MiB:.1f} MiB, iter_content peak "
             f"{client.iter_content.peak / MiB:.2f} MiB", "", "Targets:",
             *target_lines(results.targets)]
    return "\n".join(lines)


def _runs(repeats: int) -> str:
    return "one run" if repeats == 1 else f"median of {repeats} runs"


def _size_rows(sizes: SizeSeries) -> list[dict[str, str]]:
    return [{"kind": LABELS[kind], "body": _mib(p.bytes), "TTFB ms": f"{p.ttfb_s * 1000:.1f}",
             "total ms": f"{p.total_s * 1000:.0f}", "MiB/s": f"{p.throughput / MiB:.1f}",
             "worker RSS +MB": f"{p.worker_rss_delta / 1e6:.1f}"}
            for kind in KINDS for p in sizes.points(kind)]



def _chunk_rows(chunks: ChunkSweep) -> list[dict[str, str]]:
    return [dict(zip(CHUNK_COLUMNS, (
        str(p.chunk_rows), f"{p.chunk_bytes / KiB:.1f}", f"{p.throughput / MiB:.1f}",
        f"{p.generation_throughput / MiB:.1f}", f"{p.share:.0%}", f"{p.server_cpu_s:.2f}",
        f"{p.client_cpu_s:.2f}", f"{p.generation_cpu_s:.2f}"), strict=True))
        for p in chunks.points]
