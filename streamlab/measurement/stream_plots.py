"""The figures of long-lived streams: cut by a proxy's timeouts (notebooks 08 and 09), tokens
and events reaching their clients (notebook 09 and ``make bench``'s event streams).

Each function returns ``(figure, reading)``, like ``plots.py``: the matplotlib Figure
and one sentence with the numbers it shows, computed from the same data.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from .plots import _figure, _ms
from .worker_plots import WORKER_COLORS


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
