"""The benchmark's figures, shared by notebook 04 and ``scripts/bench.py``.

Each function takes one of the typed results that ``streamlab.measurement.bench``
returns (``Arrival``, ``SizeSeries``, ``ClientMemory``, ``ChunkSweep``) and gives
back ``(figure, reading)``: the matplotlib Figure and one sentence saying what
the figure shows, with the numbers computed from the same data. The sentence
is never typed in by hand, so it stays true when the measurements change.

Figures are made with pyplot so that a notebook shows them inline; a script
should save them and call ``plt.close(figure)``.
"""

from __future__ import annotations

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
    ax.legend(loc="lower right")
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
    """The worker's peak RSS above its baseline against body size, both kinds."""
    figure, ax = _figure("Gunicorn worker memory during one request")
    for kind in KINDS:
        points = sizes.points(kind)
        ax.plot([p.bytes / MiB for p in points],
                [p.worker_rss_delta / MiB for p in points],
                marker=MARKERS[kind], color=COLORS[kind], label=LABELS[kind])
    ax.set_xscale("log")
    ax.set_xlabel("body size (MiB, log scale)")
    ax.set_ylabel("worker peak RSS above baseline (MiB)")
    ax.legend(loc="upper left")
    streaming, plain = sizes.streaming, sizes.plain
    top = max(streaming, key=lambda p: p.worker_rss_delta)
    biggest = plain[-1]
    reading = (
        f"Streaming raised the worker's memory by at most {top.worker_rss_delta / MiB:.1f} MiB "
        f"at every size up to {_mib(streaming[-1].bytes)}; "
        f"the whole-body response raised it by {biggest.worker_rss_delta / MiB:.0f} MiB for "
        f"a {_mib(biggest.bytes)} body, {biggest.worker_rss_delta / biggest.bytes:.1f} "
        "times the body's size."
    )
    return figure, reading


def client_memory_figure(client: ClientMemory) -> tuple[Figure, str]:
    """Peak Python memory of the client: ``.content`` against ``iter_content``."""
    size = client.bytes
    figure, ax = _figure(f"Client memory while downloading {_mib(size)}")
    content, pieces = client.content, client.iter_content
    names = [".content", f"iter_content({pieces.read_size // KiB} KiB)"]
    peaks = [content.peak / MiB, pieces.peak / MiB]
    bars = ax.bar(names, peaks, color=["tab:red", "tab:green"], width=0.5)
    ax.bar_label(bars, labels=[f"{p:.2f} MiB" for p in peaks])
    ax.axhline(size / MiB, color="grey", linestyle="--", label=f"body size ({_mib(size)})")
    ax.set_yscale("log")
    ax.set_ylabel("peak traced Python memory (MiB, log scale)")
    ax.set_xlabel("how the client reads the body (requests)")
    ax.legend(loc="upper right")
    reading = (
        f"Reading .content held {content.peak / MiB:.1f} MiB at its peak, "
        f"{content.peak / size:.1f} times the {_mib(size)} body; iter_content held "
        f"{pieces.peak / MiB:.2f} MiB, {content.peak / pieces.peak:.0f} times less."
    )
    return figure, reading


def chunk_throughput_figure(chunks: ChunkSweep) -> tuple[Figure, str]:
    """Streaming throughput against rows per chunk, with the in-process ceiling."""
    points = chunks.points
    rows = [p.chunk_rows for p in points]
    figure, ax = _figure(f"Throughput against chunk size ({_mib(chunks.bytes)} streamed)",
                         TALL)
    ax.plot(rows, [p.generation_best / MiB for p in points],
            color="grey", linestyle="--", marker=".",
            label="ceiling: producing the rows in-process, fastest run (no HTTP)")
    medians = [p.throughput / MiB for p in points]
    spread = [[m - min(p.throughput_runs) / MiB for m, p in zip(medians, points, strict=True)],
              [max(p.throughput_runs) / MiB - m for m, p in zip(medians, points, strict=True)]]
    ax.errorbar(rows, medians, yerr=spread, color=COLORS["streaming"], marker="o", capsize=3,
                label="StreamingHttpResponse over HTTP (median, bars: min to max)")
    ax.axhline(chunks.plain.throughput / MiB, color=COLORS["plain"], linestyle=":",
               label="HttpResponse, same rows (whole body)")
    default = chunks.default_chunk_rows
    ax.axvline(default, color="black", alpha=0.3, label=f"default chunk_rows = {default}")
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("rows per chunk (log scale; one row is about 20 bytes)")
    ax.set_ylabel("throughput (MiB/s)")
    top = ax.secondary_xaxis(
        "top", functions=(lambda r: r * chunks.bytes / chunks.rows / KiB,
                          lambda k: k * KiB * chunks.rows / chunks.bytes))
    top.set_xlabel("chunk size (KiB)")
    figure.legend(loc="outside lower center", ncols=2, fontsize="small")
    per_row = chunks.smallest()
    best = chunks.best()
    reading = (
        f"{_rows(per_row.chunk_rows)} per chunk moved {per_row.throughput / MiB:.1f} MiB/s, "
        f"{best.throughput / per_row.throughput:.0f} times slower than the best chunk "
        f"size ({best.chunk_rows} rows, about {best.chunk_bytes / KiB:.0f} KiB: "
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
