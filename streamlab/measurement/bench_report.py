"""What the benchmark's results say: the fixed cost of a chunk, the targets, the table.

Everything here reads a ``BenchResults`` (or its parts) and measures nothing:
``chunk_costs`` splits the CPU cost of streaming into a cost per chunk and a cost
per row (notebook 04), ``evaluate`` judges the benchmark's five targets, and
``format_table`` prints what ``make bench`` shows. ``bench`` runs the series.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import tables
from .bench_results import (
    KINDS,
    LABELS,
    BenchResults,
    ChunkCosts,
    ChunkPoint,
    ChunkSweep,
    KiB,
    MiB,
    SizePoint,
    SizeSeries,
    Target,
    target_lines,
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
