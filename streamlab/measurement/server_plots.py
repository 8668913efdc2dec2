"""The figures of notebook 11: the series' headline per server, and a stalled client.

Each function draws one message on a matplotlib ``Axes`` pair or figure and returns the
figure, so the notebook shows it and ``make run`` keeps it with the executed notebook.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .server_facts import MiB, SizePair, StalledReader

STREAMED, WHOLE = "#1f77b4", "#d62728"


def headline_per_server(pairs: Sequence[SizePair]) -> Figure:
    """Time to first byte and worker memory rise for the largest body, streamed against
    built whole, one pair of bars per server (log scales: the two differ by decades)."""
    largest = max(p.nbytes for p in pairs)
    shown = [p for p in pairs if p.nbytes == largest]
    names = [p.server for p in shown]
    x = range(len(shown))
    fig, (ttfb, memory) = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True)
    width = 0.38
    for axes, values in (
        (ttfb, [(p.streamed.ttfb_s * 1000, p.whole.ttfb_s * 1000) for p in shown]),
        (memory, [(max((p.streamed.worker_rss_delta or 0) / MiB, 0.1),
                   max((p.whole.worker_rss_delta or 0) / MiB, 0.1)) for p in shown]),
    ):
        axes.bar([i - width / 2 for i in x], [v[0] for v in values], width,
                 label="streamed (matching generator)", color=STREAMED)
        axes.bar([i + width / 2 for i in x], [v[1] for v in values], width,
                 label="built whole (HttpResponse)", color=WHOLE)
        axes.set_yscale("log")
        axes.set_xticks(list(x), names, rotation=30, ha="right")
        axes.grid(axis="y", which="both", alpha=0.3)
    ttfb.set_ylabel("time to first byte (ms, log scale)")
    ttfb.set_title(f"First byte of the {largest / MiB:.0f} MiB CSV")
    memory.set_ylabel("worker RSS rise (MiB, log scale)")
    memory.set_title("Worker memory rise, same CSV (a bar at 0.1 MiB: no rise)")
    handles, labels = ttfb.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=9)
    fig.suptitle("Streamed against built whole on eight servers: the same gains everywhere "
                 "but Daphne")
    return fig


def stalled_memory(runs: Sequence[StalledReader]) -> Figure:
    """The worker's RSS growth while a client reads nothing, one line per server."""
    fig, axes = plt.subplots(figsize=(10, 4.2), constrained_layout=True)
    for run in runs:
        times = [t for t, _ in run.timeline]
        growth = [g for _, g in run.timeline]
        style = "-" if run.back_pressure else "--"
        axes.plot(times, growth, style, label=f"{run.server} "
                  f"({'paused' if run.back_pressure else 'buffered'})")
    body = max(r.body_mib for r in runs)
    axes.axhline(body, color="grey", linewidth=0.8, linestyle=":")
    axes.annotate(f"the whole body, {body:.0f} MiB", (0, body), xytext=(4, -12),
                  textcoords="offset points", fontsize=9, color="grey")
    axes.set_xlabel("seconds since the request (the client reads nothing)")
    axes.set_ylabel("worker RSS growth (MiB)")
    axes.set_title("A client that stops reading: who holds the body?")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig
