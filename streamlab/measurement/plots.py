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


# -- Notebook 08: idle and total timeouts --------------------------------------------------------


def idle_timeout_figure(runs: dict[str, Any], idle_timeout_s: float) -> tuple[Figure, str]:
    """Body bytes against time for streams read with ``proxies.read_stream``, whole or cut.

    ``runs`` maps a label to a ``StreamRead``. Each line ends where the server
    closed the connection: a dot if the body was whole, a cross if it was cut.
    A cut run that had gone silent for ``idle_timeout_s`` met an idle timeout;
    one that never had, a total timeout.
    """
    figure, ax = _figure(f"Idle or total timeout: which streams are cut "
                         f"(idle limit {idle_timeout_s:g} s)")
    groups: dict[str, list[str]] = {"idle": [], "total": [], "whole": []}
    for label, run in runs.items():
        t, received = zip(*run.timeline, strict=True)
        # A cut run is dashed and drawn on top: it may retrace the start of a whole one.
        (line,) = ax.step([*t, run.elapsed_s], [*received, received[-1]], where="post",
                          linewidth=2 if run.complete else 2.5,
                          linestyle="-" if run.complete else "--", zorder=2 if run.complete else 3,
                          label=f"{label}: {'whole' if run.complete else 'cut'}")
        ax.plot(run.elapsed_s, received[-1], "o" if run.complete else "X", markersize=10,
                color=line.get_color(), zorder=4)
        group = "whole" if run.complete else (
            "idle" if run.longest_silence_s >= 0.9 * idle_timeout_s else "total")
        groups[group].append(f"{label} ({run.elapsed_s:.1f} s, longest silence "
                             f"{run.longest_silence_s:.2f} s)")
    ax.set_xlabel("time since the request was sent (s)")
    ax.set_ylabel("body bytes received (chunk framing included)")
    ax.legend(loc="upper left", fontsize="small")
    reading = (f"Cut after a silence of about {idle_timeout_s:g} s: "
               f"{'; '.join(groups['idle']) or 'none'}. Cut though never that silent (a total "
               f"timeout): {'; '.join(groups['total']) or 'none'}. "
               f"Whole: {'; '.join(groups['whole']) or 'none'}.")
    return figure, reading


# -- Notebooks 05 and 06: worker classes, and Django's ASGI handler -----------------------------

WORKER_COLORS = {"sync": "tab:red", "gthread": "tab:blue", "gevent": "tab:purple",
                 "asgi": "tab:green"}


def request_timeline_figure(timelines: list[Any]) -> tuple[Figure, str]:
    """One row per worker class: the long stream and the probes sent while it ran.

    ``timelines`` are ``workers.Timeline`` objects. A probe is a dot where it
    was sent and, if it waited (``Span.waited``), a red bar up to its answer.
    """
    figure, ax = _figure(f"A {timelines[0].stream.seconds:.0f} s stream and "
                         f"{len(timelines[0].probes)} probes, one worker process each",
                         size=(8.0, 1.1 + 0.9 * len(timelines)))
    for row, timeline in enumerate(timelines):
        stream = timeline.stream
        ax.barh(row - 0.2, stream.seconds, left=stream.sent_s, height=0.25, color="tab:gray",
                label="the stream" if row == 0 else None)
        for k, probe in enumerate(timeline.probes):
            y = row + 0.1 + 0.15 * k
            color = "tab:red" if probe.waited else "tab:green"
            ax.barh(y, probe.seconds, left=probe.sent_s, height=0.12, color=color)
            ax.plot(probe.sent_s, y, "o", color=color, markersize=5)
    ax.plot([], [], "o-", color="tab:green", label="probe answered at once")
    ax.plot([], [], "o-", color="tab:red", label="probe waited (bar: until answered)")
    ax.set_yticks(range(len(timelines)), [t.worker_class for t in timelines])
    ax.invert_yaxis()
    ax.set_xlabel("time since the stream was requested (s)")
    ax.set_ylabel("worker class")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    blocked = [t.worker_class for t in timelines if all(p.waited for p in t.probes)]
    free = [t for t in timelines if not any(p.waited for p in t.probes)]
    slowest = max((p.seconds for t in free for p in t.probes), default=0.0)
    reading = (f"Every probe waited for the end of the stream on: {', '.join(blocked) or 'none'}; "
               f"none waited on {', '.join(t.worker_class for t in free) or 'none'} "
               f"(slowest answer {_ms(slowest)}).")
    return figure, reading


def heartbeat_figure(timelines: list[Any], timeout_s: float | None = None) -> tuple[Figure, str]:
    """The age of each worker's heartbeat while the same stream ran on it."""
    figure, ax = _figure("How long ago each worker last said it was alive, during a stream")
    for timeline in timelines:
        t, age = zip(*timeline.heartbeat, strict=True)
        ax.plot(t, age, color=WORKER_COLORS.get(timeline.worker_class), linewidth=2,
                label=timeline.worker_class)
    if timeout_s is not None:
        ax.axhline(timeout_s, ls="--", color="black", label=f"a --timeout of {timeout_s:g} s")
    ax.set_xlabel("time since the stream was requested (s)")
    ax.set_ylabel("heartbeat age (s)")
    ax.legend(loc="upper left", fontsize="small")
    ages = {t.worker_class: t.max_heartbeat_age_s for t in timelines}
    oldest = max(ages, key=ages.__getitem__)
    others = max(age for kind, age in ages.items() if kind != oldest)
    reading = (f"The {oldest} worker's heartbeat aged with the stream, to {ages[oldest]:.1f} s; "
               f"the others' never passed {others:.1f} s.")
    return figure, reading


def iterator_matrix_figure(matrix: list[dict[str, Any]]) -> tuple[Figure, str]:
    """First and last byte, and the worker's memory rise, for each server and iterator pair.

    ``matrix`` is ``workers.run_matrix``'s list of rows (every row the same body).
    """
    body_mib = matrix[0]["nbytes"] / MiB
    labels = [f"{r['kind']} + {r['iterator'].split()[0]}\n"
              f"({'matching' if r['matched'] else 'mismatched'})" for r in matrix]
    x = list(range(len(matrix)))
    figure, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
    ax_time.bar([i - 0.2 for i in x], [r["ttfb_s"] for r in matrix], 0.4,
                label="time to first byte")
    ax_time.bar([i + 0.2 for i in x], [r["total_s"] for r in matrix], 0.4, label="total time")
    ax_time.set(ylabel="time since the request (s)", title="When the body arrived")
    ax_mem.bar(x, [r["worker_rss_delta_mib"] for r in matrix], 0.5, color="tab:gray",
               label="worker RSS rise")
    ax_mem.axhline(body_mib, ls="--", color="tab:red", label=f"body size ({body_mib:.0f} MiB)")
    ax_mem.set(ylabel="worker RSS rise (MiB)", title="Worker memory during the request")
    for ax in (ax_time, ax_mem):
        ax.set_xticks(x, labels)
        ax.set_ylim(top=ax.get_ylim()[1] * 1.3)
        ax.legend(loc="upper center", ncol=2)
    figure.suptitle(f"Only matching pairs stream ({body_mib:.0f} MiB body, same bytes in "
                    "every case)")
    matched = [r for r in matrix if r["matched"]]
    mismatched = [r for r in matrix if not r["matched"]]
    reading = (
        f"Matching pairs sent their first byte after at most "
        f"{_ms(max(r['ttfb_s'] for r in matched))} and their worker grew by at most "
        f"{max(r['worker_rss_delta_mib'] for r in matched):.1f} MiB; mismatched pairs waited "
        f"at least {min(r['ttfb_s'] / r['total_s'] for r in mismatched):.0%} of their total "
        f"time and grew by at least {min(r['worker_rss_delta_mib'] for r in mismatched):.1f} "
        f"MiB, for a body of {body_mib:.1f} MiB."
    )
    return figure, reading


def chunk_layout_figure(chunk_sizes: dict[str, list[int]]) -> tuple[Figure, str]:
    """How one body was cut into chunks on the wire: one row per server, one segment per chunk."""
    total = sum(next(iter(chunk_sizes.values())))
    figure, ax = _figure(f"One yielded item of {_mib(total)}, as chunks on the wire",
                         size=(8.0, 1.2 + 0.8 * len(chunk_sizes)))
    for row, sizes in enumerate(chunk_sizes.values()):
        offsets = [sum(sizes[:i]) / MiB for i in range(len(sizes))]
        ax.broken_barh(list(zip(offsets, [s / MiB for s in sizes], strict=True)),
                       (row - 0.3, 0.6), facecolors=["tab:blue", "tab:orange"] * len(sizes),
                       edgecolor="white")
    ax.plot([], [], "s", color="tab:blue", label="one chunk (colours alternate)")
    ax.set_yticks(range(len(chunk_sizes)), list(chunk_sizes))
    ax.invert_yaxis()
    ax.set_xlabel("position in the body (MiB)")
    ax.set_ylabel("server")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    reading = "; ".join(f"{label}: {len(sizes)} chunk{'s' if len(sizes) > 1 else ''}, the "
                        f"largest {max(sizes) / KiB:,.0f} KiB"
                        for label, sizes in chunk_sizes.items())
    return figure, reading + "."


# -- Notebook 07: rows and files ----------------------------------------------------------------


def download_arrival_figure(
    timelines: dict[str, list[tuple[float, int]]], title: str
) -> tuple[Figure, str]:
    """Body bytes received against time, one line per download (notebook 07).

    ``timelines`` maps a label to a ``Measurement.timeline``: (seconds, bytes so far).
    """
    figure, ax = _figure(title)
    styles = ["-", "--", ":", "-."]
    for number, (label, timeline) in enumerate(timelines.items()):
        t, received = zip(*timeline, strict=True)
        ax.step([x * 1000 for x in t], [b / MiB for b in received], where="post",
                linestyle=styles[number % len(styles)], linewidth=2, label=label)
    ax.set_xlabel("time since the request was sent (ms)")
    ax.set_ylabel("body bytes received (MiB)")
    ax.set_ylim(bottom=0)
    figure.legend(loc="outside lower center", ncols=min(len(timelines), 2), fontsize="small")
    firsts = []
    for label, timeline in timelines.items():
        first = next((t for t, received in timeline if received > 0), timeline[-1][0])
        firsts.append(f"{_ms(first)} ({label}, all of it by {_ms(timeline[-1][0])})")
    return figure, "The first bytes arrived after " + "; ".join(firsts) + "."


def file_send_cpu_figure(cpu: dict[str, tuple[float, float]], what: str) -> tuple[Figure, str]:
    """Worker CPU seconds, user and system stacked, per way of sending a file (notebook 07).

    A linear axis: bars measure from zero. ``cpu`` maps a label to (user, system).
    """
    labels = list(cpu)[::-1]  # the first entry on top
    user = [cpu[label][0] for label in labels]
    system = [cpu[label][1] for label in labels]
    figure, ax = _figure(f"Gunicorn sync worker CPU time: {what}", (7.0, 3.4))
    ax.barh(labels, user, color="tab:orange", label="user: Python and Gunicorn's own code")
    ax.barh(labels, system, left=user, color="tab:blue",
            label="system: the kernel reading the file and writing the socket")
    ax.set_xlabel("worker CPU seconds")
    ax.grid(True, axis="x", alpha=0.3)
    ax.grid(False, axis="y")
    figure.legend(loc="outside lower center", ncols=1, fontsize="small")
    least = min(cpu, key=lambda label: cpu[label][0])
    most = max(cpu, key=lambda label: cpu[label][0])
    reading = (
        f"User CPU, the worker's own work: {cpu[least][0]:.2f} s for {least}, "
        f"{cpu[most][0]:.2f} s for {most}. In all (user + system): "
        + ", ".join(f"{label} {sum(cpu[label]):.2f} s" for label in cpu) + "."
    )
    return figure, reading


def file_memory_figure(rises: dict[str, dict[int, int]]) -> tuple[Figure, str]:
    """Worker peak RSS rise against file size, log-log, one line per setup (notebook 07).

    ``rises`` maps a label to {file size in MiB: rise in bytes}. As in
    ``worker_memory_figure``, a rise under one page is drawn on the one-page
    line with a downward triangle ("at most this"), never at zero.
    """
    figure, ax = _figure("Gunicorn worker memory while sending a file")
    sizes = sorted({size for points in rises.values() for size in points})
    ax.plot(sizes, sizes, color="grey", linestyle=":", label="a rise equal to the file")
    ax.axhline(PAGE / MiB, color="grey", linestyle="--", linewidth=1,
               label=f"one {PAGE // KiB} KiB page: the smallest rise RSS shows")
    markers = ["o", "s", "^", "D"]
    for number, (label, points) in enumerate(rises.items()):
        x = sorted(points)
        y = [max(points[size], PAGE) / MiB for size in x]
        (line,) = ax.plot(x, y, label=label, zorder=3)
        for xi, yi, size in zip(x, y, x, strict=True):
            small = points[size] < PAGE
            ax.plot(xi, yi, color=line.get_color(), zorder=4, markersize=8,
                    marker="v" if small else markers[number % len(markers)])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sizes, [str(size) for size in sizes])
    ax.minorticks_off()
    ax.set_xlabel("file size (MiB, log scale)")
    ax.set_ylabel("worker peak RSS above baseline (MiB, log scale)")
    figure.legend(loc="outside lower center", ncols=2, fontsize="small")
    largest = sizes[-1]
    reading = f"For the {largest} MiB file the worker's memory rose by " + ", ".join(
        f"{points[largest] / MiB:.1f} MiB ({label})" for label, points in rises.items()
        if largest in points
    ) + "."
    return figure, reading


# -- Notebook 09: streams to a browser ------------------------------------------------------------


def token_arrival_figure(timelines: list[Any], think_s: float) -> tuple[Figure, str]:
    """Characters of a chat answer received against time, one line per client (notebook 09).

    ``timelines`` are ``sse_clients.TokenTimeline`` objects; ``think_s`` is the
    server's think time, drawn as a dashed line: no client can see a token before it.
    """
    figure, ax = _figure("A token stream, read by Python clients and by a browser")
    styles = ["-", "--", ":", "-."]
    for number, timeline in enumerate(timelines):
        t, chars = zip(*timeline.arrivals, strict=True)
        ax.step([0.0, *t], [0, *chars], where="post", linewidth=2,
                linestyle=styles[number % len(styles)], label=timeline.client)
    ax.axvline(think_s, color="black", linestyle="--", linewidth=1,
               label=f"the server's think time ({_ms(think_s)})")
    ax.set_xlabel("time since the request was sent (s)")
    ax.set_ylabel("characters of the answer received")
    ax.set_ylim(bottom=0)
    figure.legend(loc="outside lower center", ncols=2, fontsize="small")
    firsts = "; ".join(f"{t.client} {_ms(t.first_token_s)}" for t in timelines)
    spread = max(t.first_token_s for t in timelines) - min(t.first_token_s for t in timelines)
    reading = (f"First token after: {firsts}. Every client saw it within {_ms(spread)} of the "
               f"others, the whole answer arriving as it was produced.")
    return figure, reading


def open_streams_figure(runs: list[Any], *, share: bool = False) -> tuple[Figure, str]:
    """When each of many simultaneous clients got its first event, per worker class.

    ``runs`` are ``sse_bench.StreamsRun`` objects (clients connected at the same moment).
    ``share`` puts each client at its place among its run's clients (0 to 1), so runs of
    very different sizes (``make bench``: 200 on ASGI, a dozen on gthread) fill one axis.
    """
    figure, ax = _figure("Clients connected at the same moment: when each got its first event")
    for run in runs:
        firsts = sorted(c.first_event_s for c in run.clients if c.first_event_s is not None)
        places = [(i + 1) / len(run.clients) if share else i + 1 for i in range(len(firsts))]
        ax.plot(places, firsts, "o-", markersize=3 if share else 5,
                drawstyle="steps-pre" if share else "default",
                color=WORKER_COLORS.get(run.worker_class),
                label=f"{run.worker_class}: {run.served_at_once} of {len(run.clients)} at once"
                + ("; the step at 1 s: connections dropped at a full listen queue, sent again"
                   if run.listen_overflows else ""))
    ax.set_xlabel("share of the run's clients, in the order their first event came" if share
                  else "client, in the order its first event came")
    ax.set_ylabel("first event after (s)")
    ax.set_ylim(bottom=0)
    if share:
        ax.set_xlim(0, 1.02)
    ax.legend(loc="upper left", fontsize="small")
    reading = "; ".join(
        f"{run.worker_class}: {run.served_at_once} of {len(run.clients)} clients served at once, "
        f"the last first event after "
        f"{_ms(max(c.first_event_s or 0.0 for c in run.clients))}"
        + (f" ({run.listen_overflows} connection attempts dropped at a full listen queue, "
           "each tried again a second later)" if run.listen_overflows else "")
        for run in runs) + "."
    return figure, reading


# -- Notebook 10: HTTP/2 -------------------------------------------------------------------


def two_streams_figure(
    panels: dict[str, tuple[list[tuple[float, int]], list[tuple[float, int]]]],
    labels: tuple[str, str] = ("slow stream", "large download"),
) -> tuple[Figure, str]:
    """Body bytes received against time for two streams sharing one HTTP/2 connection,
    one panel per server (notebook 10). ``panels`` maps a server's label to the two
    timelines, (seconds since the requests were sent, bytes so far), slow one first."""
    figure, axes = plt.subplots(1, len(panels), figsize=(8.0, 3.8), sharey=True,
                                layout="constrained")
    figure.suptitle("Two streams on one HTTP/2 connection: does one hold the other up?")
    readings = []
    for ax, (server, timelines) in zip(list(axes), panels.items(), strict=True):
        for timeline, label, color in zip(timelines, labels, ("tab:orange", "tab:blue"),
                                          strict=True):
            t, received = zip(*[(s, max(n, 1)) for s, n in timeline], strict=True)
            ax.step(t, received, where="post", color=color, label=label, marker=".")
        ax.set_title(server)
        ax.set_yscale("log")
        ax.set_xlabel("seconds since both requests were sent")
        ax.grid(True, alpha=0.3)
        slow, big = timelines
        readings.append(f"{server}: the download's first byte at {_ms(big[1][0])}, its last at "
                        f"{_ms(big[-1][0])}; the slow stream's last at {_ms(slow[-1][0])}")
    axes[0].set_ylabel("body bytes received (log scale)")
    axes[0].legend(loc="lower right", fontsize="small")
    return figure, "; ".join(readings) + "."


def stall_figure(timeline: list[tuple[float, int]], window: int, reset_s: float | None
                 ) -> tuple[Figure, str]:
    """Body bytes received by a client that never sends WINDOW_UPDATE (notebook 10)."""
    figure, ax = _figure("HTTP/2 flow control: a client that gives no credit back")
    t, received = zip(*timeline, strict=True)
    ax.step(t, received, where="post", color="tab:blue", marker=".", label="body bytes received")
    ax.axhline(window, color="grey", linestyle="--", linewidth=1,
               label=f"the stream's window: {window:,} bytes")
    if reset_s is not None:
        ax.axvline(reset_s, color="tab:red", linestyle=":",
                   label="RST_STREAM from the server")
    ax.set_xlabel("seconds since the request was sent")
    ax.set_ylabel("body bytes received")
    ax.set_ylim(0, window * 1.3)
    ax.legend(loc="lower right", fontsize="small")
    last = min(s for s, n in timeline if n == received[-1])  # when the total was reached
    reading = (f"{received[-1]:,} bytes arrived, the last of them at {_ms(last)}; "
               "then nothing" + (f" until the server reset the stream at {_ms(reset_s)}."
                                 if reset_s is not None else "."))
    return figure, reading


def framing_overhead_figure(points: dict[str, list[tuple[float, float]]]) -> tuple[Figure, str]:
    """Framing bytes as a share of the body against the size of the pieces a view yields,
    one line per protocol (notebook 10). ``points`` maps a protocol to
    [(bytes per piece, framing bytes per 100 body bytes)]."""
    figure, ax = _figure("What framing costs: HTTP/1.1 chunks against HTTP/2 DATA frames")
    for (protocol, series), marker in zip(points.items(), ("o", "s"), strict=False):
        x, y = zip(*series, strict=True)
        ax.plot(x, y, marker=marker, label=protocol)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("bytes per yielded piece (log scale)")
    ax.set_ylabel("framing, % of the body (log scale)")
    ax.legend()
    smallest = {p: s[0][1] for p, s in points.items()}
    largest = {p: s[-1][1] for p, s in points.items()}
    reading = ("Framing as a share of the body, smallest pieces: " + ", ".join(
        f"{p} {v:.1f}%" for p, v in smallest.items()) + "; largest pieces: " + ", ".join(
        f"{p} {v:.3f}%" for p, v in largest.items()) + ".")
    return figure, reading


def stream_delays_figure(*runs: Any, limit_ms: float | None = None) -> tuple[Figure, str]:
    """How late each event of many simultaneous streams came against its schedule (make bench).

    Each run is an ``sse_bench.StreamsRun``: every client's events, each due ``k * interval``
    after that client's first event; one cumulative curve per run, and ``limit_ms`` (a
    target) as a vertical line.
    """
    first = runs[0]
    title = (f"{len(first.clients)} event streams on one {first.worker_class} worker: "
             "lateness of every event") if len(runs) == 1 else (
             "Event streams on each worker class: lateness of every event")
    figure, ax = _figure(title)
    for run in runs:
        delays = sorted(d * 1000 for d in run.delays_s)
        ax.plot(delays, [(i + 1) / len(delays) for i in range(len(delays))], linewidth=2,
                color=WORKER_COLORS.get(run.worker_class) if len(runs) > 1 else None,
                label=f"{run.worker_class}: {len(run.clients)} clients, {len(delays):,} events, "
                      f"{run.count} per client, {run.interval_s * 1000:.0f} ms apart")
    if limit_ms is not None:
        ax.axvline(limit_ms, color="black", linestyle="--", linewidth=1,
                   label=f"target for the 95th percentile: {limit_ms:g} ms")
        ax.axhline(0.95, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("delay against the event's schedule (ms)")
    ax.set_ylabel("share of events at most this late")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.legend(loc="lower right", fontsize="small")
    parts = []
    for run in runs:
        q = run.delay_percentiles_ms()
        parts.append(f"{run.worker_class}: half the events came within {q['p50']:.1f} ms of their "
                     f"schedule, 95% within {q['p95']:.1f} ms, the latest {q['max']:.1f} ms late; "
                     f"every client got every event in order: {run.all_in_order}")
    return figure, "; ".join(parts) + "."
