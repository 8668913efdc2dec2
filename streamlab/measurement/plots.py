"""The benchmark's figures, shared by notebook 04 and ``scripts/bench.py``.

Each function takes one of the typed results that ``streamlab.measurement.bench``
returns (``Arrival``, ``SizeSeries``, ``ClientMemory``, ``ChunkSweep``) and gives
back ``(figure, reading)``: the matplotlib Figure and one sentence saying what
the figure shows, with the numbers computed from the same data. The sentence
is never typed in by hand, so it stays true when the measurements change.

Figures are made with pyplot so that a notebook shows them inline; a script
should save them and call ``plt.close(figure)``.

The other notebooks' figures live beside this module, each with the same
``(figure, reading)`` shape: ``worker_plots`` (05, 06), ``file_plots`` (07),
``stream_plots`` (08, 09, the benchmark's event streams), ``http2_plots`` (10),
``database_plots`` (07, 12), ``server_plots`` and ``server_bench_plots`` (11).
"""

from __future__ import annotations

import mmap
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .bench_results import (
    KINDS,
    LABELS,
    Arrival,
    BenchResults,
    ChunkSweep,
    ClientMemory,
    KiB,
    MiB,
    SizeSeries,
)

COLORS = {"streaming": "tab:blue", "plain": "tab:orange"}
MARKERS = {"streaming": "o", "plain": "s"}
SIZE = (7.0, 4.2)
TALL = (7.0, 5.0)
PAGE = mmap.PAGESIZE  # RSS is counted in whole pages: the smallest rise it can show


def _figure(title: str, size: tuple[float, float] = SIZE) -> tuple[Figure, Any]:
    figure, ax = plt.subplots(figsize=size, layout="constrained")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    return figure, ax


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"


def _mib(nbytes: float) -> str:
    return f"{nbytes / MiB:.1f} MiB" if nbytes < 10 * MiB else f"{nbytes / MiB:,.0f} MiB"


def arrival_figure(arrival: Arrival) -> tuple[Figure, str]:
    """Bytes received against time, the same CSV streamed and sent whole."""
    size = arrival.bytes
    figure, ax = _figure(f"When the bytes arrive: one {_mib(size)} CSV, two ways")
    for kind in KINDS:
        t, received = zip(*arrival.run(kind).timeline, strict=True)
        ax.step([x * 1000 for x in t], [b / MiB for b in received], where="post",
                color=COLORS[kind], label=LABELS[kind], linewidth=2)
    ax.set_xlabel("time since the request was sent (ms)")
    ax.set_ylabel("body bytes received (MiB)")
    ax.legend(loc="upper left")
    streaming, plain = arrival.streaming, arrival.plain
    half = _time_to_reach(streaming.timeline, size / 2)
    plain_ttfb = plain.ttfb_s or 0.0
    reading = (
        f"Streaming delivered its first byte after {_ms(streaming.ttfb_s or 0.0)} and half the "
        f"body by {_ms(half)}; the whole-body response sent nothing for "
        f"{_ms(plain_ttfb)}, then all {_mib(size)} in the last "
        f"{_ms(plain.total_s - plain_ttfb)}."
    )
    return figure, reading


def _time_to_reach(timeline: list[tuple[float, int]], nbytes: float) -> float:
    return next(t for t, received in timeline if received >= nbytes)


def ttfb_figure(sizes: SizeSeries) -> tuple[Figure, str]:
    """Time to first body byte against body size, log-log, both kinds."""
    figure, ax = _figure("Time to first byte against body size")
    for kind in KINDS:
        points = sizes.points(kind)
        ax.plot([p.bytes / MiB for p in points], [p.ttfb_s * 1000 for p in points],
                marker=MARKERS[kind], color=COLORS[kind], label=LABELS[kind])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("body size (MiB, log scale)")
    ax.set_ylabel("time to first body byte (ms, log scale)")
    ax.legend()
    streaming, plain = sizes.streaming, sizes.plain
    low = min(p.ttfb_s for p in streaming)
    high = max(p.ttfb_s for p in streaming)
    per_mib = plain[-1].ttfb_s / (plain[-1].bytes / MiB)
    reading = (
        f"From {_mib(streaming[0].bytes)} to {_mib(streaming[-1].bytes)} the streaming "
        f"response's first byte came after {_ms(low)} to {_ms(high)}, whatever the size; the "
        f"whole-body response's first byte came after {_ms(plain[0].ttfb_s)} at "
        f"{_mib(plain[0].bytes)} and {_ms(plain[-1].ttfb_s)} at "
        f"{_mib(plain[-1].bytes)}, about {_ms(per_mib)} per MiB of body."
    )
    return figure, reading


def worker_memory_figure(sizes: SizeSeries) -> tuple[Figure, str]:
    """The worker's peak RSS above its baseline against body size, log-log, both kinds.

    The rises span decades (a few pages for a stream, hundreds of MiB for a big
    whole body), hence both axes logarithmic. RSS grows in whole pages, so a rise
    of less than one page cannot be told from none: such a point is drawn on the
    one-page line with a downward triangle ("at most this"), never at zero, which
    a log axis cannot show.
    """
    figure, ax = _figure("Gunicorn worker memory during one request")
    bodies = [p.bytes / MiB for p in sizes.plain + sizes.streaming]
    span = [min(bodies), max(bodies)]
    ax.plot(span, span, color="grey", linestyle=":", label="a rise equal to the body")
    ax.axhline(PAGE / MiB, color="grey", linestyle="--", linewidth=1,
               label=f"one {PAGE // KiB} KiB page: the smallest rise RSS shows")
    for kind in KINDS:
        points = sizes.points(kind)
        x = [p.bytes / MiB for p in points]
        y = [max(p.worker_rss_delta, PAGE) / MiB for p in points]
        seen = [i for i, p in enumerate(points) if p.worker_rss_delta >= PAGE]
        ax.plot(x, y, color=COLORS[kind], marker=MARKERS[kind], markevery=seen,
                label=LABELS[kind], zorder=3)
        below = [(x[i], y[i]) for i in range(len(points)) if i not in seen]
        if below:
            ax.plot(*zip(*below, strict=True), color=COLORS[kind], linestyle="none",
                    marker="v", markersize=9, zorder=4,
                    label=f"{LABELS[kind]}: less than one page")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("body size (MiB, log scale)")
    ax.set_ylabel("worker peak RSS above baseline (MiB, log scale)")
    # Between the two kinds' lines is empty: the legend goes there, clear of the data.
    ax.legend(loc="center right", bbox_to_anchor=(1.0, 0.3), fontsize="small")
    streaming, plain = sizes.streaming, sizes.plain
    top = max(p.worker_rss_delta for p in streaming)
    pages = top // PAGE
    biggest = plain[-1]
    reading = (
        f"Built whole, a {_mib(biggest.bytes)} body raised the worker's memory by "
        f"{biggest.worker_rss_delta / MiB:.0f} MiB, {biggest.worker_rss_delta / biggest.bytes:.1f}"
        f" times the body; streamed, the largest rise at any size up to "
        f"{_mib(streaming[-1].bytes)} was {top:,} bytes ({pages} page{'s' * (pages != 1)} of "
        f"{PAGE // KiB} KiB; a triangle on the dashed line means less than one page)."
    )
    return figure, reading


def client_memory_figure(client: ClientMemory) -> tuple[Figure, str]:
    """Peak Python memory of the client: ``.content`` against ``iter_content``.

    A linear axis: bars measure from zero, so their lengths compare only on one.
    The small bar is labelled with its value.
    """
    size = client.bytes
    content, pieces = client.content, client.iter_content
    figure, ax = _figure(f"Client memory while downloading {_mib(size)}: "
                         f".content {content.peak / size:.1f}x the body")
    names = [".content", f"iter_content({pieces.read_size // KiB} KiB)"]
    peaks = [content.peak / MiB, pieces.peak / MiB]
    bars = ax.bar(names, peaks, color=["tab:red", "tab:green"], width=0.5)
    ax.bar_label(bars, labels=[f"{p:.2f} MiB" for p in peaks], padding=2)
    ax.axhline(size / MiB, color="grey", linestyle="--", label=f"body size ({_mib(size)})")
    ax.set_ylim(0, max(peaks) * 1.15)
    ax.set_ylabel("peak traced Python memory (MiB)")
    ax.set_xlabel("how the client reads the body (requests)")
    ax.legend(loc="upper right")
    reading = (
        f"Reading .content held {content.peak / MiB:.1f} MiB at its peak, "
        f"{content.peak / size:.1f} times the {_mib(size)} body; iter_content held "
        f"{pieces.peak / MiB:.2f} MiB, {content.peak / pieces.peak:.0f} times less."
    )
    return figure, reading


def chunk_throughput_figure(chunks: ChunkSweep) -> tuple[Figure, str]:
    """Streaming throughput against rows per chunk: one message, batch your rows.

    Only what that message needs: the streamed throughput (median, bars from the
    slowest to the fastest run) and, as the ceiling it climbs towards, the speed
    of producing the same rows in-process with no HTTP at all.
    """
    points = chunks.points
    rows = [p.chunk_rows for p in points]
    per_row, best = chunks.smallest(), chunks.best()
    slower = best.throughput / per_row.throughput
    figure, ax = _figure(f"Batch your rows: {_rows(per_row.chunk_rows)} per chunk streams "
                         f"{slower:.0f} times slower", TALL)
    ax.plot(rows, [p.generation_best / MiB for p in points],
            color="grey", linestyle="--", marker=".",
            label="ceiling: producing the rows in-process (no HTTP)")
    medians = [p.throughput / MiB for p in points]
    spread = [[m - min(p.throughput_runs) / MiB for m, p in zip(medians, points, strict=True)],
              [max(p.throughput_runs) / MiB - m for m, p in zip(medians, points, strict=True)]]
    ax.errorbar(rows, medians, yerr=spread, color=COLORS["streaming"], marker="o", capsize=3,
                label="StreamingHttpResponse (median; bars: slowest to fastest run)")
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("rows per chunk (log scale; one row is about 20 bytes)")
    ax.set_ylabel("throughput (MiB/s)")
    top = ax.secondary_xaxis(
        "top", functions=(lambda r: r * chunks.bytes / chunks.rows / KiB,
                          lambda k: k * KiB * chunks.rows / chunks.bytes))
    top.set_xlabel("chunk size (KiB, log scale)")
    ax.legend(loc="lower right", fontsize="small")
    reading = (
        f"{_rows(per_row.chunk_rows)} per chunk moved {per_row.throughput / MiB:.1f} MiB/s, "
        f"{slower:.0f} times slower than the best chunk size "
        f"({best.chunk_rows} rows, about {best.chunk_bytes / KiB:.0f} KiB: "
        f"{best.throughput / MiB:.1f} MiB/s, "
        f"{best.share:.0%} of producing the same rows in-process, median against median)."
    )
    return figure, reading


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def all_figures(results: BenchResults) -> dict[str, tuple[Figure, str]]:
    """Every figure of a ``bench.run()`` result, by file name."""
    return {
        "arrival": arrival_figure(results.arrival),
        "ttfb_vs_size": ttfb_figure(results.sizes),
        "worker_memory_vs_size": worker_memory_figure(results.sizes),
        "client_memory": client_memory_figure(results.client_memory),
        "throughput_vs_chunk_size": chunk_throughput_figure(results.chunks),
    }
