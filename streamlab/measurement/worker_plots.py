"""The figures of notebooks 05 and 06: worker classes side by side, and Django's ASGI handler.

Each function returns ``(figure, reading)``, like ``plots.py``: the matplotlib Figure
and one sentence with the numbers it shows, computed from the same data.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .bench_results import KiB, MiB
from .plots import _figure, _mib, _ms

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

    ``matrix`` is ``iterators.run_matrix``'s list of rows (every row the same body).
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
