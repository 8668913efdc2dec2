"""The figures of notebook 07: a download's arrival, and what sending a file costs the worker.

Each function returns ``(figure, reading)``, like ``plots.py``: the matplotlib Figure
and one sentence with the numbers it shows, computed from the same data.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from .bench_results import KiB, MiB
from .plots import PAGE, _figure, _ms


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
