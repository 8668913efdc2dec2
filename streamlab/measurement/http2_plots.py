"""The figures of notebook 10: two streams on one HTTP/2 connection, a stalled window, and
what the framing costs.

Each function returns ``(figure, reading)``, like ``plots.py``: the matplotlib Figure
and one sentence with the numbers it shows, computed from the same data.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .plots import _figure, _ms


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
