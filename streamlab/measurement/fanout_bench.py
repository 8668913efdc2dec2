"""``make bench``'s fan-out section (notebook 12): a thousand topic streams across two workers.

``bench_fanout`` starts a throwaway PostgreSQL and the demo app under Gunicorn's ASGI
worker with ``FANOUT_WORKERS`` worker processes, opens ``FANOUT_STREAMS`` streams of one
topic (``delivery=worker``: one ``LISTEN`` connection per worker, handing each event to
that worker's streams; ``fanout.TopicStreams`` shares them equally between the workers),
publishes one event per second, and judges every (stream, event) pair: delivered once,
and how long after the publisher's commit (the server's clock; the client runs on the
same machine). Two targets: nothing lost or repeated, and a delay p95 of at most
``P95_LIMIT_MS``. The client is one Python process reading every socket from one event
loop, so its own parsing is part of each delay: the figure is an upper bound on the
server's.

Without PostgreSQL (``postgres_version()`` is None) the section is skipped, and says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from ..servers.gunicorn import DemoServer
from ..servers.postgres import postgres_version
from ..tables import format_table
from .bench_results import Target, target_lines
from .database import app_database
from .fanout import FanoutRun, fanout

FANOUT_STREAMS = 1000  # open streams, shared equally by the workers: the target's floor
FANOUT_WORKERS = 2
FANOUT_EVENTS = 10  # published one a second: ten seconds of the streams held open
FANOUT_INTERVAL_S = 1.0
P95_LIMIT_MS = 100.0
TIMEOUT_S = 120.0  # for opening every stream, and for the last event to reach them all


def bench_fanout(*, streams: int = FANOUT_STREAMS, events: int = FANOUT_EVENTS,
                 log: Callable[[str], None] = print) -> FanoutRun | None:
    """Measure the fan-out (see the module's docstring); None without PostgreSQL."""
    if postgres_version() is None:
        log("fan-out: skipped, PostgreSQL is not installed (apt-get install postgresql)")
        return None
    log(f"fan-out: {streams} topic streams across {FANOUT_WORKERS} ASGI workers, "
        f"{events} events one a second")
    database = app_database(0, name="bench-fanout")
    try:
        with DemoServer(name="bench-fanout", worker_class="asgi", workers=FANOUT_WORKERS,
                        env={"DEMO_DATABASE_URL": database.database_url()}) as server:
            return fanout(server, database, delivery="worker", streams=streams, events=events,
                          interval_s=FANOUT_INTERVAL_S, workers=FANOUT_WORKERS,
                          timeout=TIMEOUT_S)
    finally:
        database.stop()


def evaluate_fanout(run: FanoutRun) -> list[Target]:
    """The section's two targets, judged on ``run``."""
    delivered = len(run.delays_s)
    return [
        Target(
            "fan-out: none lost or repeated",
            f">= {FANOUT_STREAMS:,} streams across {FANOUT_WORKERS} workers; every stream gets "
            "every event exactly once",
            f"{run.streams:,} streams ({'/'.join(map(str, sorted(run.by_worker.values())))} per "
            f"worker); {delivered:,} of {run.expected:,} deliveries, {run.lost} lost, "
            f"{run.repeated} repeated",
            run.streams >= FANOUT_STREAMS and len(run.by_worker) >= FANOUT_WORKERS
            and run.lost == 0 and run.repeated == 0,
        ),
        Target(
            "fan-out: delay p95",
            f"p95 delay from the publisher's commit to each client <= {P95_LIMIT_MS:g} ms, "
            f"at one event per {FANOUT_INTERVAL_S:g} s",
            f"p95 {run.p(95) * 1000:.1f} ms (p50 {run.p(50) * 1000:.1f} ms, max "
            f"{run.p(100) * 1000:.1f} ms), {sum(run.connections.values())} PostgreSQL "
            "connections",
            bool(run.delays_s) and run.p(95) * 1000 <= P95_LIMIT_MS,
        ),
    ]


def fanout_summary(run: FanoutRun, *, seconds: float) -> dict[str, Any]:
    """What ``make bench`` writes to ``fanout/summary.json``."""
    return {
        "postgresql": postgres_version(), "workers": FANOUT_WORKERS, "streams": run.streams,
        "by_worker": {str(pid): n for pid, n in sorted(run.by_worker.items())},
        "events": len(run.published), "interval_s": FANOUT_INTERVAL_S,
        "delivered": len(run.delays_s), "expected": run.expected, "lost": run.lost,
        "repeated": run.repeated,
        "delay_ms": {name: run.p(q) * 1000 for name, q in (("p50", 50), ("p95", 95),
                                                          ("max", 100))},
        "connections": run.connections, "queries_per_s": run.queries_per_s,
        "seconds": seconds, "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "targets": [asdict(t) for t in evaluate_fanout(run)],
    }


def format_summary(summary: dict[str, Any], *, targets: bool = True) -> str:
    """The fan-out as text: one row of figures, then (``targets``) its two targets."""
    delays = summary["delay_ms"]
    row = {
        "workers": summary["workers"], "streams": summary["streams"],
        "per worker": "/".join(str(n) for n in sorted(summary["by_worker"].values())),
        "events": summary["events"], "delivered": f"{summary['delivered']:,}",
        "lost": summary["lost"], "repeated": summary["repeated"],
        "delay p50/p95/max ms": "/".join(f"{delays[k]:.0f}" for k in ("p50", "p95", "max")),
        "PostgreSQL connections": sum(summary["connections"].values()),
    }
    lines = [format_table([row], right=list(row), title=(
        f"Fan-out, one LISTEN per worker, one event every {summary['interval_s']:g} s "
        f"({summary['postgresql']}):"))]
    if targets:
        lines += ["", "Fan-out targets:", *target_lines(Target(**t) for t in summary["targets"])]
    return "\n".join(lines)
