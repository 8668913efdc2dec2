"""The figures of the PostgreSQL sections: cursors and connections per stream (notebook 07),
and carrying events to every worker's streams (notebook 12).

Each function returns ``(figure, reading)``, like ``plots.py``: the matplotlib Figure
and one sentence with the numbers it shows, computed from the same data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

from .bench_results import MiB
from .database import ConcurrentExports
from .fanout import FanoutRun
from .request import Measurement


def cursor_figure(runs: Mapping[str, Measurement], what: str) -> tuple[Figure, str]:
    """Worker memory rise and time to first byte, one bar per way of reading the rows.

    Linear axes from zero: the message is how many times larger one bar is."""
    labels = list(runs)[::-1]  # the first entry on top
    rise = [max(runs[label].worker_rss_delta or 0, 0) / MiB for label in labels]
    ttfb = [runs[label].ttfb_s * 1000 for label in labels]
    figure, (memory, first) = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True,
                                           layout="constrained")
    figure.suptitle(f"PostgreSQL export under Gunicorn's sync worker: {what}")
    memory.barh(labels, rise, color="tab:orange")
    memory.set_xlabel("worker peak memory rise (MiB)")
    first.barh(labels, ttfb, color="tab:blue")
    first.set_xlabel("time to first byte (ms)")
    for axes, values, unit in ((memory, rise, "MiB"), (first, ttfb, "ms")):
        axes.grid(True, axis="x", alpha=0.3)
        for y, value in enumerate(values):
            axes.annotate(f" {value:,.1f} {unit}" if unit == "MiB" else f" {value:,.0f} {unit}",
                          (value, y), va="center", fontsize="small")
        axes.set_xlim(0, max(values) * 1.3 or 1)
    low = min(runs, key=lambda label: runs[label].worker_rss_delta)
    high = max(runs, key=lambda label: runs[label].worker_rss_delta)
    reading = (
        f"Memory rise from {runs[low].worker_rss_delta / MiB:.1f} MiB ({low}) to "
        f"{runs[high].worker_rss_delta / MiB:.1f} MiB ({high}); first byte after "
        + ", ".join(f"{runs[label].ttfb_s * 1000:.0f} ms ({label})" for label in runs) + "."
    )
    return figure, reading


def connections_figure(held: Mapping[str, ConcurrentExports], slots: int) -> tuple[Figure, str]:
    """Per connection setting: exports streamed and refused, and the app's connections to
    PostgreSQL while they streamed and after they ended, against the slots it may use."""
    labels = list(held)
    series = {
        "exports streamed (200)": [held[label].streamed for label in labels],
        "exports refused (503)": [len(held[label].refusals) for label in labels],
        "connections while streaming": [len(held[label].during) for label in labels],
        "connections after the last one ended": [len(held[label].after) for label in labels],
    }
    colors = ["tab:blue", "tab:red", "tab:orange", "tab:grey"]
    figure, ax = plt.subplots(figsize=(9, 4.2), layout="constrained")
    n = len(held[labels[0]].statuses)
    ax.set_title(f"{n} slow exports at once, one Gunicorn gthread worker with {n} threads")
    width = 0.8 / len(series)
    for number, ((name, values), color) in enumerate(zip(series.items(), colors, strict=True)):
        x = [i + (number - (len(series) - 1) / 2) * width for i in range(len(labels))]
        bars = ax.bar(x, values, width, label=name, color=color)
        ax.bar_label(bars, fontsize="small")
    ax.axhline(slots, color="black", linestyle="--", linewidth=1,
               label=f"connections the app may open (max_connections minus reserved): {slots}")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel("count")
    ax.set_ylim(0, max(max(v) for v in series.values()) + 3)
    ax.grid(True, axis="y", alpha=0.3)
    figure.legend(loc="outside lower center", ncols=2, fontsize="small")
    reading = " ".join(
        f"{label}: {held[label].streamed} streamed, {len(held[label].refusals)} refused, "
        f"{len(held[label].during)} connections while streaming, {len(held[label].after)} "
        "after." for label in labels)
    return figure, reading


# -- Notebook 12: one event, every worker ------------------------------------------------------


def polling_figure(polls: Mapping[int, Sequence[FanoutRun]],
                   listening: Sequence[FanoutRun]) -> tuple[Figure, str]:
    """Queries per second against open streams: one line per polling interval (ms), and
    the streams that listen (one connection per worker) beside them."""
    figure, axes = plt.subplots(figsize=(8, 4.2), layout="constrained")
    for poll_ms, runs in polls.items():
        axes.plot([r.streams for r in runs], [r.queries_per_s for r in runs], "o-",
                  label=f"polling every {poll_ms} ms")
    axes.plot([r.streams for r in listening], [max(r.queries_per_s, 0.1) for r in listening],
              "s--", color="black", label="LISTEN, one connection per worker")
    axes.set_yscale("log")
    axes.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.yaxis.set_major_formatter(ScalarFormatter())
    axes.yaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("open streams (shared by 2 workers)")
    axes.set_ylabel("database queries per second (log)")
    axes.set_title("The database's load: polling pays for every open stream, idle or not")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    busiest = max((r for runs in polls.values() for r in runs), key=lambda r: r.queries_per_s)
    quietest = max(listening, key=lambda r: r.streams)
    reading = (f"{busiest.streams} streams polling cost {busiest.queries_per_s:,.0f} queries/s; "
               f"{quietest.streams} listening streams, {quietest.queries_per_s:,.0f}.")
    return figure, reading


FLOOR_MS = 0.1


def delivery_delay_figure(runs: Mapping[str, FanoutRun]) -> tuple[Figure, str]:
    """The delay from commit to arrival of every (stream, event) pair, as a cumulative share,
    one line per delivery; a log scale, since they differ by an order of magnitude.

    Delays under ``FLOOR_MS`` (none, where the commit time is PostgreSQL's own; a
    worker's clock can stamp a commit late, and a delay then comes out negative) are drawn
    at it.
    """
    figure, axes = plt.subplots(figsize=(8, 4.2), layout="constrained")
    for label, run in runs.items():
        delays = sorted(max(d * 1000, FLOOR_MS) for d in run.delays_s)
        share = [(i + 1) / len(delays) for i in range(len(delays))]
        axes.step(delays, share, where="post",
                  label=f"{label}: {run.streams} streams, p95 {run.p(95) * 1000:.0f} ms, "
                        f"{sum(run.connections.values())} connections")
    axes.axhline(0.95, color="grey", linestyle=":", linewidth=1)
    axes.set_xscale("log")
    axes.set_xlim(left=FLOOR_MS)
    axes.xaxis.set_major_formatter(ScalarFormatter())
    axes.set_xlabel(f"delay from the publisher's commit to the client (ms, log; under "
                    f"{FLOOR_MS} ms drawn at {FLOOR_MS})")
    axes.set_ylabel("share of deliveries")
    axes.set_title("Every delivery's delay, 2 workers: the sooner a line rises, the better")
    axes.grid(True, which="both", alpha=0.3)
    figure.legend(loc="outside lower center", fontsize="small")
    reading = "; ".join(f"{label}: p50 {run.p(50) * 1000:.0f} ms, p95 {run.p(95) * 1000:.0f} ms"
                        for label, run in runs.items()) + "."
    return figure, reading
