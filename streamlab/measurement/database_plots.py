"""The figures of notebook 07's PostgreSQL sections: cursors, and connections per stream.

Each function returns ``(figure, reading)``, like ``plots.py``: the matplotlib Figure
and one sentence with the numbers it shows, computed from the same data.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .bench_results import MiB
from .database import ConcurrentExports
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
