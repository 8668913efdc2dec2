"""The figure of ``make bench``'s per-server event streams (``server_bench``).

One figure, one message: which server keeps a thousand streams on time, and what each
stream costs it. Like ``plots``, the function returns ``(figure, reading)``, the sentence
computed from the same numbers; a script saves the figure and closes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from .bench_results import KiB
from .server_bench import ALL_SERVERS, ServerStreams, ranked, server_summary
from .sse_bench import MEMORY_LIMIT, P95_LIMIT_MS

FLOOR_MS = 0.01  # a delay below this is drawn at it (a log axis has no zero)


def _color(server: str) -> str:
    """The same colour for a server in every panel and every run."""
    return f"C{ALL_SERVERS.index(server) % 10}" if server in ALL_SERVERS else "grey"


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"


def _cumulative(ax: Axes, delays_s: Sequence[float], color: str, label: str) -> None:
    delays = sorted(max(d * 1000, FLOOR_MS) for d in delays_s)
    if delays:
        ax.plot(delays, [(i + 1) / len(delays) for i in range(len(delays))], color=color,
                linewidth=2, label=label)


def server_streams_figure(results: Sequence[ServerStreams]) -> tuple[Figure, str]:
    """Per server, best-ranked first: every event's stamped delay and its delay against the
    schedule (cumulative, log scale), the worker's RSS per stream held, its CPU per event."""
    if not results:
        raise ValueError("server_streams_figure needs at least one server's run.")
    by_name = {r.server: r for r in results}
    order = [s["server"] for s in ranked([server_summary(r) for r in results])]
    figure, axes = plt.subplots(2, 2, figsize=(13.0, 9.0), layout="constrained")
    (stamped, schedule), (memory, cpu) = axes
    clients = max(len(r.run.clients) for r in results)
    figure.suptitle(f"Up to {clients:,} event streams at {1 / results[0].run.interval_s:g} "
                    "events/s each, on one worker process per server: on time, and at what cost")
    for name in order:
        result = by_name[name]
        run = result.run
        q_stamped = run.delay_percentiles_ms(result.lags_s)["p95"]
        q_schedule = run.delay_percentiles_ms()["p95"]
        label = (f"{name}: {len(run.clients)} streams x {run.count} events; p95 stamped "
                 f"{_ms(q_stamped)}, against the schedule {_ms(q_schedule)}")
        _cumulative(stamped, result.lags_s, _color(name), label)
        _cumulative(schedule, run.delays_s, _color(name), label)
    for ax, title, xlabel in (
        (stamped, "After the server sent it: arrival minus the event's send stamp",
         f"stamped delay (ms, log scale; below {FLOOR_MS:g} drawn at {FLOOR_MS:g})"),
        (schedule, "Against the schedule: also counts a generator that woke late",
         f"delay against the schedule (ms, log scale; 0 drawn at {FLOOR_MS:g})"),
    ):
        ax.axvline(P95_LIMIT_MS, color="black", linestyle="--", linewidth=1,
                   label=f"target for the 95th percentile: {P95_LIMIT_MS:g} ms"
                   if ax is stamped else None)
        ax.axhline(0.95, color="grey", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.set_ylim(0, 1.02)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("share of events at most this late")
        ax.grid(True, which="major", alpha=0.3)
    handles, labels = stamped.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=2, fontsize="small")

    rows = list(range(len(order)))[::-1]  # the best-ranked server on top
    per_stream = [(by_name[n].run.rss_per_stream or 0) / KiB for n in order]
    cost = [by_name[n].cpu_per_1000_events or 0 for n in order]
    colors = [_color(n) for n in order]
    memory.barh(rows, per_stream, color=colors)
    memory.axvline(MEMORY_LIMIT / KiB, color="black", linestyle="--", linewidth=1,
                   label=f"target: {MEMORY_LIMIT / KiB:g} KiB per stream")
    memory.set_xlabel("worker RSS growth per stream held (KiB)")
    memory.set_title("Memory: the worker's growth over the streams it held at once")
    memory.legend(loc="lower right", fontsize="small")
    cpu.barh(rows, cost, color=colors)
    cpu.set_xlabel("worker CPU time per 1,000 events received (s, user + system)")
    cpu.set_title("CPU: starting the requests included, so fewer events weigh more")
    labels = [f"{n}\n{by_name[n].run.held_at_once} held" for n in order]
    for ax, values, form, floor in ((memory, per_stream, "{:.0f}", MEMORY_LIMIT / KiB),
                                    (cpu, cost, "{:.3f}", 0.0)):
        ax.set_yticks(rows, labels, fontsize="small")
        ax.grid(True, axis="x", alpha=0.3)
        for row, value in zip(rows, values, strict=True):
            ax.annotate(form.format(value), (value, row), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize="small")
        ax.set_xlim(0, max(*values, floor) * 1.25 or 1)

    held = [n for n in order if by_name[n].run.held_at_once >= clients]
    on_time = [n for n in order if by_name[n].run.delay_percentiles_ms(
        by_name[n].lags_s)["p95"] <= P95_LIMIT_MS]
    cheapest = min(order, key=lambda n: by_name[n].cpu_per_1000_events or float("inf"))
    reading = (f"Best ranked: {order[0]}, last: {order[-1]}. Held all {clients:,} streams at "
               f"once: {', '.join(held) or 'none'}. Stamped p95 within {P95_LIMIT_MS:g} ms: "
               f"{', '.join(on_time) or 'none'}. Least CPU per 1,000 events: {cheapest} "
               f"({by_name[cheapest].cpu_per_1000_events or 0:.3f} s).")
    return figure, reading
