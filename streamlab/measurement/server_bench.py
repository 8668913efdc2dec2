"""A thousand event streams on one worker process of each ASGI server, gthread beside them.

``make bench``'s per-server section: ``bench_servers`` starts each server of notebook 11 in
turn (Gunicorn's asgi worker, uvicorn, uvicorn-worker, Daphne, Hypercorn, Granian; one
worker process each, on 127.0.0.1) and opens ``SERVER_CLIENTS`` event streams on it from
one event loop (``sse_bench.open_streams``), each of ``SERVER_COUNT`` events 100 ms apart.
Gunicorn's gthread worker follows for contrast: one stream per thread, so it gets
``QUEUE_ROUNDS`` times its ``GTHREAD_THREADS`` clients, as ``sse_bench`` gives it.

Each event is stamped by the server as it is sent (``/events?stamp=1``): client and server
share the machine's clock, so the *stamped delay*, arrival minus ``"sent"``, shows a
lateness that every event of a stream shares, which the schedule-based delay
(``StreamsRun.delays_s``, kept beside it) cannot. Per server the run records the streams
held at once, events lost or reordered, the worker's RSS growth per stream held
(``RssSampler``) and its CPU time (user + system, from ``psutil``) per 1,000 events.

The client is checked too, so that it is shown not to be the bottleneck, or named as it:
its ``RLIMIT_NOFILE`` against the sockets it needs (raised toward the hard limit first if
short; the servers started afterwards inherit it), its own CPU time against the run's wall
time (one Python process: one core at most), and the kernel's listen-queue overflows.

Every client connects at the same moment. Gunicorn's asgi worker listens with asyncio's
backlog of 100 whatever ``--backlog`` says, and Daphne with Twisted's 50: the kernel drops
the connections beyond, whose clients send their SYN again 1, 3 and 7 s after the first.
That costs them seconds before their first event, not events: each event's delay is read
from its own stamp, and the streams (``SERVER_COUNT``) last long enough that the last
client to get in is served while the first are still open. (Opening them in waves was
tried: the servers accepted no faster, and the early streams' events slowed the later
requests, so fewer streams were ever open together.)
"""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from ..servers.asgi_servers import SERVER_CLASSES, SERVERS
from ..servers.gunicorn import DemoServer
from ..servers.process import ManagedProcess
from ..tables import format_table
from .bench import _load_average
from .bench_results import KiB, Target, target_lines
from .memory import RssSampler, total_cpu
from .sse_bench import (
    BENCH_INTERVAL_MS,
    MAX_CLIENTS,
    MEMORY_LIMIT,
    P95_LIMIT_MS,
    QUEUE_ROUNDS,
    SHORT_COUNT,
    WARM_UP_CLIENTS,
    StreamsRun,
    _cell,
    none_lost_target,
    open_streams,
    run_summary,
)

SERVER_CLIENTS = 1000  # streams held at once by one worker process: the target's floor
# Events per stream: 10 s at 10 events/s. A client whose SYN a full listen queue dropped three
# times gets in 7 s after the first, and one worker took 4 to 7 s to start 1,000 Django
# requests here: a stream of 10 s is still open when the last one starts, and the seven
# servers take about two and a half minutes.
SERVER_COUNT = 100
GTHREAD_THREADS = 32  # gthread holds one stream per thread: QUEUE_ROUNDS times this many clients
CLIENT_CORE_SHARE = 0.85  # a client busier than this share of one core may be the bottleneck
ASGI_SERVERS = ("gunicorn-asgi", "uvicorn", "uvicorn-worker", "daphne", "hypercorn", "granian")
ALL_SERVERS = (*ASGI_SERVERS, "gunicorn-gthread")
TARGETS = ("held", "stamped p95", "schedule p95", "memory")  # evaluate_server's, for tables


@dataclass(frozen=True)
class ClientLimits:
    """The client process's file descriptor limit against the sockets the run needs."""

    soft: int
    hard: int
    soft_before: int  # the soft limit before the benchmark raised it (equal: not raised)
    needed: int  # one socket per client, plus what the process had open already


@dataclass(frozen=True)
class ServerStreams:
    """One server's run: the streams (``StreamsRun``), its worker's CPU, the client's."""

    server: str  # a name of ALL_SERVERS
    version: str
    run: StreamsRun
    worker_cpu_s: float | None  # the worker processes' user + system CPU during the run
    client_cpu_s: float  # this process's user + system CPU during the run (every thread)
    worker_threads: int | None  # the most threads the worker processes ran at once
    worker_nofile: int | None  # the worker's soft RLIMIT_NOFILE

    @property
    def lags_s(self) -> list[float]:
        """Every stamped event's delay: its arrival (this process's clock) minus the server's
        ``"sent"`` stamp, in seconds."""
        return [lag for client in self.run.clients for lag in client.lags]

    @property
    def events(self) -> int:
        """Events received, over all clients."""
        return sum(len(client.ids) for client in self.run.clients)

    @property
    def cpu_per_1000_events(self) -> float | None:
        """Worker CPU seconds per 1,000 events received (starting the requests included)."""
        if self.worker_cpu_s is None or not self.events:
            return None
        return self.worker_cpu_s / self.events * 1000

    @property
    def client_core_share(self) -> float:
        """The client's CPU time over the run's wall time: 1.0 is one core kept busy."""
        return self.client_cpu_s / self.run.seconds if self.run.seconds else 0.0


class _ThreadSampler(RssSampler):
    """The most threads ``processes`` ran at once (``peak_threads``), sampled like RSS.

    Django's ASGI handler runs each request's sync parts (middleware, the view) in a thread
    of the request's own (``ThreadSensitiveContext``), kept until the response ends: under
    every ASGI server, one more thread per open stream, and part of its memory.
    """

    def __init__(self, processes: list[psutil.Process], interval: float = 0.1) -> None:
        super().__init__(processes, interval)
        self.peak_threads: int | None = None

    def _sample(self) -> None:
        with contextlib.suppress(psutil.Error):
            now = sum(p.num_threads() for p in self.processes)
            self.peak_threads = max(self.peak_threads or 0, now)


def client_limits(clients: int) -> ClientLimits:
    """Make sure this process may open a socket per client: raise the soft RLIMIT_NOFILE
    toward the hard limit if it is short (servers started later inherit it), and say so."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = clients + psutil.Process().num_fds() + 16  # 16: the samplers, a server's pipes
    raised = soft
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed * 2 if hard == resource.RLIM_INFINITY else min(hard, needed * 2)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    return ClientLimits(soft=raised, hard=hard, soft_before=soft, needed=needed)


def start(server: str) -> ManagedProcess:
    """The server called ``server`` (one of ALL_SERVERS), one worker process, not started:
    use it in a ``with``."""
    name = f"bench-streams-{server}"
    if server == "gunicorn-asgi":
        return DemoServer(name=name, worker_class="asgi")
    if server == "gunicorn-gthread":
        return DemoServer(name=name, worker_class="gthread", threads=GTHREAD_THREADS)
    return SERVER_CLASSES[server](name=name)


def version(server: str) -> str:
    """The installed version of the server called ``server`` (gthread's is Gunicorn's)."""
    return SERVERS["gunicorn" if server.startswith("gunicorn-") else server].version


def _nofile(processes: Sequence[psutil.Process]) -> int | None:
    with contextlib.suppress(psutil.Error, IndexError):
        return processes[0].rlimit(psutil.RLIMIT_NOFILE)[0]
    return None


def measure(server: ManagedProcess, name: str, *, clients: int, count: int,
            interval_ms: int = BENCH_INTERVAL_MS) -> ServerStreams:
    """``clients`` stamped streams on a running ``server``, after a warm-up of a few (so the
    memory figure leaves out what a worker allocates once), with the worker's and this
    process's CPU time around them."""
    open_streams(server, clients=min(clients, WARM_UP_CLIENTS), count=2,  # type: ignore[arg-type]
                 interval_ms=0, extra_query="stamp=1")
    workers = server.worker_processes()  # type: ignore[attr-defined]
    me = psutil.Process()
    worker_before, client_before = total_cpu(workers), me.cpu_times()
    with _ThreadSampler(workers) as threads:
        run = open_streams(server, clients=clients, count=count,  # type: ignore[arg-type]
                           interval_ms=interval_ms, extra_query="stamp=1",
                           timeout=30 + count * interval_ms / 1000 * 3 * QUEUE_ROUNDS)
    worker_after, client_after = total_cpu(workers), me.cpu_times()
    return ServerStreams(
        server=name, version=version(name), run=run,
        worker_cpu_s=worker_after - worker_before if workers else None,
        client_cpu_s=(client_after.user + client_after.system)
        - (client_before.user + client_before.system),
        worker_threads=threads.peak_threads, worker_nofile=_nofile(workers))


def bench_servers(
    *, clients: int = SERVER_CLIENTS, count: int = SERVER_COUNT,
    servers: Sequence[str] = ALL_SERVERS, log: Callable[[str], object] = print,
) -> tuple[list[ServerStreams], ClientLimits]:
    """``clients`` stamped event streams of ``count`` events on each ASGI server named in
    ``servers``, one server at a time; gthread (if named) gets QUEUE_ROUNDS clients per
    thread and at most SHORT_COUNT events each, as in ``sse_bench.bench_streams``."""
    if not 1 <= clients <= MAX_CLIENTS:
        raise ValueError(f"clients must be between 1 and {MAX_CLIENTS}, got {clients}.")
    if not 2 <= count <= 1000:
        raise ValueError(f"count must be between 2 and 1000 events per stream, got {count}.")
    unknown = [s for s in servers if s not in ALL_SERVERS]
    if unknown or not servers:
        raise ValueError(f"Unknown server {unknown[0] if unknown else ''!r}: choose from "
                         f"{', '.join(ALL_SERVERS)}.")
    gthread_clients = QUEUE_ROUNDS * GTHREAD_THREADS
    limits = client_limits(max(clients, gthread_clients))
    results = []
    for name in servers:
        gthread = name == "gunicorn-gthread"
        many, events = (gthread_clients, min(count, SHORT_COUNT)) if gthread else (clients, count)
        log(f"server streams: {many} clients x {events} events, {BENCH_INTERVAL_MS} ms apart, "
            f"on {name} {version(name)}" + (f" ({GTHREAD_THREADS} threads)" if gthread else ""))
        with start(name) as server:
            results.append(measure(server, name, clients=many, count=events))
    return results, limits


# -- Targets, summary and table ---------------------------------------------------------------


def evaluate_server(result: ServerStreams) -> list[Target]:
    """The event streams' targets, judged on one server's run: held and none lost, the
    stamped delay, the delay against the schedule, and worker memory."""
    run, lags = result.run, result.lags_s
    stamped, schedule = run.delay_percentiles_ms(lags), run.delay_percentiles_ms()
    per_stream = run.rss_per_stream
    rate = f"{1000 / BENCH_INTERVAL_MS:g} events/s per client"
    on_rate = run.interval_s * 1000 <= BENCH_INTERVAL_MS
    prefix = f"server streams, {result.server}"
    return [
        none_lost_target(run, prefix, SERVER_CLIENTS, "held at once by one worker process"),
        Target(
            f"{prefix}: stamped delay p95",
            f"p95 of arrival minus the server's send stamp <= {P95_LIMIT_MS:g} ms, at {rate}",
            f"p95 {stamped['p95']:.1f} ms (p50 {stamped['p50']:.1f} ms, max "
            f"{stamped['max']:.1f} ms) over {len(lags):,} stamped events",
            0 < len(lags) == result.events and stamped["p95"] <= P95_LIMIT_MS and on_rate,
        ),
        Target(
            f"{prefix}: schedule delay p95",
            f"p95 delay against the schedule <= {P95_LIMIT_MS:g} ms, at {rate}",
            f"p95 {schedule['p95']:.1f} ms (p50 {schedule['p50']:.1f} ms, max "
            f"{schedule['max']:.1f} ms)",
            bool(run.delays_s) and schedule["p95"] <= P95_LIMIT_MS and on_rate,
        ),
        Target(
            f"{prefix}: worker memory",
            f"<= {MEMORY_LIMIT / KiB:g} KiB of worker RSS per stream held",
            "not measured" if per_stream is None else
            f"{per_stream / KiB:.0f} KiB per stream ({run.held_at_once} held at once)",
            per_stream is not None and per_stream <= MEMORY_LIMIT,
        ),
    ]


def server_summary(result: ServerStreams, targets: Sequence[Target] | None = None,
                   ) -> dict[str, Any]:
    """One server's figures as plain JSON data: ``sse_bench.run_summary``'s, then the stamped
    delay, the CPU times, the worker's threads and the targets it met (``targets``, if
    already judged by ``evaluate_server``)."""
    run = result.run
    lags = result.lags_s
    judged = evaluate_server(result) if targets is None else targets
    return {
        "server": result.server, "version": result.version, **run_summary(run),
        "events_received": result.events, "stamped_events": len(lags),
        "stamped_delay_ms": run.delay_percentiles_ms(lags),
        "min_stamped_delay_ms": min(lags, default=0.0) * 1000,
        "worker_cpu_s": result.worker_cpu_s, "cpu_s_per_1000_events": result.cpu_per_1000_events,
        "worker_core_share": None if result.worker_cpu_s is None or not run.seconds
        else result.worker_cpu_s / run.seconds,
        "worker_threads": result.worker_threads, "worker_nofile": result.worker_nofile,
        "client_cpu_s": result.client_cpu_s, "client_core_share": result.client_core_share,
        "targets_met": [short for short, t in zip(TARGETS, judged, strict=True) if t.met],
    }


def ranked(servers: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The servers that held all their clients' streams at once first (gthread, one stream
    per thread, does not); then most targets met, the lower stamped p95, the less CPU."""
    def key(s: dict[str, Any]) -> tuple[bool, int, float, float]:
        cpu = s["cpu_s_per_1000_events"]
        return (s["held_at_once"] < s["clients"], -len(s["targets_met"]),
                s["stamped_delay_ms"]["p95"], float("inf") if cpu is None else cpu)

    return sorted(servers, key=key)


def bench_summary(results: Sequence[ServerStreams], limits: ClientLimits, *, seconds: float,
                  load_before: Sequence[float] | None = None) -> dict[str, Any]:
    """What ``make bench`` writes to ``server_streams/summary.json``: the section's settings,
    the client's limits, every server's targets (in run order), the servers ranked."""
    if not results:
        raise ValueError("bench_summary needs at least one server's run.")
    judged = [evaluate_server(r) for r in results]
    return {
        "clients": max(len(r.run.clients) for r in results), "interval_ms": BENCH_INTERVAL_MS,
        "seconds": seconds, "cpus": os.cpu_count(),
        "load_average": {"before": list(load_before) if load_before else None,
                         "after": _load_average()},
        "client_limits": asdict(limits),
        "targets": [asdict(t) for targets in judged for t in targets],
        "servers": ranked([server_summary(r, t) for r, t in zip(results, judged, strict=True)]),
    }


def _ms(delays: dict[str, float]) -> str:
    return "/".join(f"{delays[k]:.0f}" for k in ("p50", "p95", "max"))


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}"


def ranking_rows(summary: dict[str, Any]) -> list[dict[str, object]]:
    """The ranking table's rows, one per server, best first."""
    return [{
        "rank": rank, "server": s["server"], "version": s["version"],
        "clients x events": f"{s['clients']} x {s['events']}",
        "held at once": s["held_at_once"], "lost": s["lost_events"],
        "reordered": s["reordered_events"],
        "stamped ms p50/p95/max": _ms(s["stamped_delay_ms"]),
        "schedule ms p50/p95/max": _ms(s["delay_ms"]),
        "KiB/stream": _cell(s["worker_rss_per_stream_kib"], ".0f"),
        "worker threads": _cell(s["worker_threads"], "d"),
        "CPU s/1k events": _cell(s["cpu_s_per_1000_events"], ".3f"),
        "worker % core": _share(s["worker_core_share"]),
        "targets met": f"{len(s['targets_met'])}/{len(TARGETS)} "
                       + (", ".join(s["targets_met"]) or "none"),
    } for rank, s in enumerate(summary["servers"], 1)]


def client_rows(summary: dict[str, Any]) -> list[dict[str, object]]:
    """The client-side checks, one row per server, in the ranking's order."""
    return [{
        "server": s["server"], "sockets": s["clients"],
        "worker RLIMIT_NOFILE": _cell(s["worker_nofile"], "d"),
        "listen overflows": _cell(s["listen_overflows"], "d"),
        "last first event s": _cell(s["first_event_s"]["max"], ".1f"),
        "client CPU s": f"{s['client_cpu_s']:.1f}", "run s": f"{s['seconds']:.1f}",
        "client % core": _share(s["client_core_share"]),
    } for s in summary["servers"]]


def format_summary(summary: dict[str, Any], *, targets: bool = True) -> str:
    """The ranking table, the client-side checks with what they mean, the section's wall time
    and (``targets``) every server's targets, each with the value measured."""
    rows = ranking_rows(summary)
    lines = [format_table(rows, right=[k for k in rows[0] if k not in (
        "server", "version", "clients x events", "targets met")], title=(
        f"Event streams per server, one worker process each, one event every "
        f"{summary['interval_ms']} ms per client. Ranked: all its clients held at once, then "
        "targets met, stamped p95, CPU per event. Stamped delay: arrival minus the server's "
        "send stamp; schedule delay: against the plan, so it also counts a generator that "
        "woke late."))]
    limits = summary["client_limits"]
    raised = (f", raised from {limits['soft_before']}"
              if limits["soft"] != limits["soft_before"] else "")
    enough = limits["soft"] >= limits["needed"]
    checks = client_rows(summary)
    lines += ["", format_table(checks, right=[k for k in checks[0] if k != "server"], title=(
        f"Client-side checks: RLIMIT_NOFILE {limits['soft']} (hard {limits['hard']}{raised}) "
        f"for at most {limits['needed']} descriptors needed: "
        + ("enough." if enough else "TOO FEW, the client is the limit.")
        + " The client is one Python process: one core at most."))]
    for s in summary["servers"]:
        name = s["server"]
        if s["client_core_share"] >= CLIENT_CORE_SHARE:
            lines.append(f"  {name}: the client used {s['client_core_share']:.0%} of a core: it "
                         "may be the bottleneck, and its delays are an upper bound")
        if s["listen_overflows"]:
            lines.append(f"  {name}: the kernel dropped {s['listen_overflows']} connection "
                         "attempts at a full listen queue (a machine-wide count); those clients "
                         "sent their SYN again 1, 3 or 7 s later, and started that much later")
        if s["failed_clients"] or s["stamped_events"] != s["events_received"]:
            lines.append(f"  {name}: {s['failed_clients']} clients failed; "
                         f"{s['stamped_events']} of {s['events_received']} events stamped")
    load = summary["load_average"]
    lines.append(f"Section wall time {summary['seconds']:.0f} s on {summary['cpus']} CPUs; load "
                 f"average before {_cell((load['before'] or [None])[0], '.1f')}, after "
                 f"{_cell((load['after'] or [None])[0], '.1f')} (other programs share the "
                 "machine's cores)")
    if targets:
        lines += ["", "Server stream targets:",
                  *target_lines(Target(**t) for t in summary["targets"])]
    return "\n".join(lines)
