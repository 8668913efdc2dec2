"""Many event streams open at once against one server: who is served, when, and at what cost.

``open_streams`` opens ``clients`` connections to an event stream at the same
moment, from one event loop in this process (one socket each, no thread per
client), reads every one to its end, and notes when each event arrived. While
they run it samples the RSS of the server's workers. The result says how many
clients got their first event at once, how late each event came against its
schedule (the view sends event k of a connection ``k * interval_ms`` after
that connection's first), and the worker memory each open stream cost.

Notebook 09 uses it with a handful of clients per worker class (sync: a
whole worker per stream; gthread: a thread; ASGI: a task), and ``make bench``
(``bench_streams``) with hundreds on one ASGI worker, judged against the
issue's three targets (``evaluate_streams``), beside the sync and gthread
workers given a few more clients than they have workers or threads.
Everything runs on 127.0.0.1, with a bounded number of clients and a deadline.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..servers.gunicorn import DemoServer
from ..tables import format_table
from ..wire.chunked import parse_size_line
from ..wire.http1 import build_request, split_url
from ..wire.sse import EventStreamParser
from .bench_results import KiB, MiB, Target, target_lines
from .memory import RssSampler

T = TypeVar("T")

QUICK_S = 0.25  # a first event within this long after connecting did not wait for anything
MAX_CLIENTS = 2000  # a bound on any one run, whatever is asked


@dataclass(frozen=True)
class ClientRun:
    """One client's stream: when it sent its request, and when each event arrived."""

    index: int
    sent_s: float  # when the request was sent, since the run started
    arrivals: tuple[float, ...]  # each event's arrival, seconds after the request was sent
    ids: tuple[str, ...]  # each event's last event id, in arrival order
    ended: bool  # the stream's "end" event arrived
    error: str | None = None
    lags: tuple[float, ...] = ()  # stamped events (stamp=1): arrival minus "sent", time.time()

    @property
    def first_event_s(self) -> float | None:
        return self.arrivals[0] if self.arrivals else None

    @property
    def slow_start(self) -> bool:
        """True when the first event came later than a free server sends it (``QUICK_S``)."""
        return self.first_event_s is None or self.first_event_s > QUICK_S

    @property
    def span(self) -> tuple[float, float] | None:
        """From its first event to its last, in seconds since the run started."""
        if not self.arrivals:
            return None
        return self.sent_s + self.arrivals[0], self.sent_s + self.arrivals[-1]


@dataclass(frozen=True)
class StreamsRun:
    """``clients`` streams of ``count`` events, ``interval_s`` apart, on one server."""

    worker_class: str
    count: int
    interval_s: float
    clients: tuple[ClientRun, ...]
    seconds: float  # from the first request to the last stream's end
    rss_baseline: int | None  # the workers' summed RSS before the first request, bytes
    rss_peak: int | None  # the largest summed RSS seen while the streams were open, bytes
    workers: int = 1
    threads: int | None = None  # gthread's threads per worker; None for the other classes
    listen_overflows: int | None = None  # connections the kernel dropped meanwhile (see below)

    @property
    def served_at_once(self) -> int:
        """Clients that did not wait for another stream to end. A client waited when its first
        event came later than ``QUICK_S`` after it connected *and* after another client's
        stream had ended: hundreds of connections take the ASGI worker a moment to accept,
        but none of them waits for a stream."""
        ends = sorted((span[1], c.index) for c in self.clients if (span := c.span) is not None)

        def waited(client: ClientRun) -> bool:
            if client.span is None:
                return True
            other_ends = [end for end, index in ends[:2] if index != client.index]
            return client.slow_start and bool(other_ends) and other_ends[0] < client.span[0]

        return sum(not waited(c) for c in self.clients)

    @property
    def held_at_once(self) -> int:
        """The most streams receiving events at the same moment, by this process's clock: each
        stream counts from its first event to its last (on sync, a worker's next stream starts
        only after its last one ended)."""
        spans = [span for c in self.clients if (span := c.span) is not None]
        edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
        held = most = 0
        for _, step in edges:  # an end sorts before a start at the same moment
            held += step
            most = max(most, held)
        return most

    @property
    def lost_events(self) -> int:
        """Events a client never got: ids of ``1..count`` missing from what it received."""
        expected = {str(n) for n in range(1, self.count + 1)}
        return sum(len(expected - set(c.ids)) for c in self.clients)

    @property
    def reordered_events(self) -> int:
        """Events that came after a later one, or twice: an id not above the one before it."""
        def number(event_id: str) -> int:
            return int(event_id) if event_id.isdigit() else -1

        return sum(number(now) <= number(before) for c in self.clients
                   for before, now in zip(c.ids, c.ids[1:], strict=False))

    @property
    def failed_clients(self) -> int:
        return sum(c.error is not None for c in self.clients)

    @property
    def all_in_order(self) -> bool:
        """Every client got every event, ids 1..count in order, and the end event."""
        expected = tuple(str(n) for n in range(1, self.count + 1))
        return all(c.ended and c.ids == expected and c.error is None for c in self.clients)

    @property
    def delays_s(self) -> list[float]:
        """How late each event came against its schedule. Event k of a connection is due
        ``k * interval_s`` after that connection's start on the server, a moment the client
        cannot see; so each connection's schedule is anchored at the earliest start its
        arrivals allow (``min(t_k - k * interval_s)``), and no event counts as early."""
        delays = []
        for client in self.clients:
            offsets = [t - k * self.interval_s for k, t in enumerate(client.arrivals)]
            earliest = min(offsets, default=0.0)  # once: a stream may have thousands of events
            delays += [offset - earliest for offset in offsets]
        return delays

    def delay_percentiles_ms(self, delays: Sequence[float] | None = None) -> dict[str, float]:
        delays = sorted(self.delays_s if delays is None else delays) or [0.0]  # or others, s
        q = statistics.quantiles(delays, n=100, method="inclusive") if len(delays) > 1 else (
            delays * 99)
        return {"p50": q[49] * 1000, "p95": q[94] * 1000, "max": delays[-1] * 1000}

    @property
    def worker_rss(self) -> float | None:
        """One worker process's RSS before the streams, in bytes: on the sync worker, what
        one more stream held at once costs (one more worker)."""
        return None if self.rss_baseline is None else self.rss_baseline / self.workers

    @property
    def rss_per_stream(self) -> float | None:
        """The workers' memory growth, per stream held at once (``held_at_once``), in bytes."""
        if self.rss_baseline is None or self.rss_peak is None or not self.held_at_once:
            return None
        return (self.rss_peak - self.rss_baseline) / self.held_at_once

    def row(self, *, memory: bool = True) -> dict[str, object]:
        """A table row; ``memory`` adds the RSS per stream (meaningful only when the streams
        were all open at once, and many: RSS grows in steps)."""
        firsts = [c.first_event_s for c in self.clients if c.first_event_s is not None]
        row: dict[str, object] = {
            "worker": self.worker_class, "clients": len(self.clients),
            "served at once": self.served_at_once,
            "last first event s": f"{max(firsts, default=float('nan')):.2f}",
            "all events, in order": self.all_in_order, "run s": f"{self.seconds:.2f}",
        }
        if memory:
            per_stream = self.rss_per_stream
            row["RSS per stream KiB"] = "-" if per_stream is None else f"{per_stream / 1024:.0f}"
        return row


async def _read_chunked_events(reader: asyncio.StreamReader, sent: float,
                               ) -> tuple[list[float], list[str], bool, list[float]]:
    """Read a chunked event stream to its end: each event's arrival, id and lag; ended or not."""
    parser = EventStreamParser()
    arrivals: list[float] = []
    ids: list[str] = []
    ended = False
    lags: list[float] = []
    while True:
        size, _ = parse_size_line((await reader.readline()).rstrip(b"\r\n"))
        data = await reader.readexactly(size + 2)
        if size == 0:
            return arrivals, ids, ended, lags
        now, wall = time.perf_counter(), time.time()
        for event in parser.feed(data[:-2]):
            if event.type == "end":
                ended = True
            else:
                arrivals.append(now - sent)
                ids.append(event.last_event_id)
                if '"sent": ' in event.data:
                    lags.append(wall - json.loads(event.data.rpartition("\n")[2])["sent"])


async def _client(index: int, url: str, start: float, deadline: float) -> ClientRun:
    host, port, target, netloc = split_url(url)
    sent, writer = time.perf_counter(), None
    try:
        async with asyncio.timeout(deadline - sent):  # one timer for the client, not one per read
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(build_request(target, netloc))
            head = await reader.readuntil(b"\r\n\r\n")
            if b" 200 " not in head.split(b"\r\n", 1)[0] or b"chunked" not in head.lower():
                raise ValueError(f"expected a 200 chunked event stream, got {head[:80]!r}")
            arrivals, ids, ended, lags = await _read_chunked_events(reader, sent)
        return ClientRun(index, sent - start, tuple(arrivals), tuple(ids), ended, lags=tuple(lags))
    except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError) as error:
        return ClientRun(index, sent - start, (), (), False, f"{type(error).__name__}: {error}")
    finally:
        if writer is not None:
            writer.close()


def listen_overflows() -> int | None:
    """How many connections the kernel has dropped because a listen queue was full
    (``TcpExt: ListenOverflows`` in /proc/net/netstat; machine-wide, so another program's
    overflows in the same moment count too), or None where the kernel does not say.

    A client whose connection was dropped so sends its SYN again, after a second on Linux:
    its first event comes a second late. Gunicorn's ASGI worker hands its socket to
    asyncio's ``create_server``, which listens again with asyncio's default backlog (100),
    whatever ``--backlog`` says; the sync and gthread workers keep Gunicorn's 2048.
    """
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            found = table.get("ListenOverflows")
            return int(found) if found is not None and found.isdigit() else None
    return None


def in_own_thread(function: Callable[[], T]) -> T:
    """Run ``function`` in a new thread and return its result: a notebook's kernel already
    runs an event loop in its main thread, where ``asyncio.run`` is refused."""
    result: dict[str, T] = {}
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result["value"] = function()
        except BaseException as error:  # handed back to the caller's thread
            failure.append(error)

    thread = threading.Thread(target=run, name="streams", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result["value"]


def open_streams(
    server: DemoServer, *, clients: int, count: int, interval_ms: int,
    timeout: float = 60.0, extra_query: str = "",
) -> StreamsRun:
    """Open ``clients`` event streams on ``server`` at once and read them all to the end."""
    if not 1 <= clients <= MAX_CLIENTS:
        raise ValueError(f"clients must be between 1 and {MAX_CLIENTS}, got {clients}.")
    url = server.url(f"/events?count={count}&interval_ms={interval_ms}&heartbeat_s=0"
                     + (f"&{extra_query}" if extra_query else ""))

    async def run_all() -> list[ClientRun]:
        start = time.perf_counter()
        deadline = start + timeout
        return await asyncio.gather(*(_client(i, url, start, deadline) for i in range(clients)))

    workers = server.worker_processes()
    overflows_before = listen_overflows()
    start = time.perf_counter()
    with RssSampler(workers, interval=0.02) as rss:
        runs = in_own_thread(lambda: asyncio.run(run_all()))
    seconds = time.perf_counter() - start
    overflows_after = listen_overflows()
    baseline = rss.baseline_total if workers else None
    peak = sum(rss.peak.values()) if workers else None
    return StreamsRun(
        server.worker_class, count, interval_ms / 1000, tuple(runs), seconds, baseline, peak,
        workers=server.workers,
        threads=server.threads if server.worker_class == "gthread" else None,
        listen_overflows=None if overflows_before is None or overflows_after is None
        else overflows_after - overflows_before)


# -- `make bench`: hundreds of streams on one ASGI worker, sync and gthread beside it -----------

BENCH_CLIENTS = 200  # streams held at once by one ASGI worker: the target's floor
BENCH_COUNT = 60  # events per stream: 6 s at 10 events/s, longer than a client waits whose
# connection the ASGI worker's listen queue (backlog 100) drops twice (SYN sent again at 1 s, 3 s)
BENCH_INTERVAL_MS = 100  # 10 events/s per client
P95_LIMIT_MS = 100.0  # delay of an event against its schedule, 95th percentile
MEMORY_LIMIT = 64 * KiB  # worker RSS per open stream
# The sync and gthread workers serve one stream per worker, or per thread: they get this many
# times as many clients as that, and streams of at most SHORT_COUNT events (1 s at 10 events/s),
# so the queue shows within seconds.
SYNC_WORKERS = 2
GTHREAD_THREADS = 4
QUEUE_ROUNDS = 3
SHORT_COUNT = 10
WARM_UP_CLIENTS = 10


def _capacity(worker_class: str, options: dict[str, int]) -> int | None:
    """How many streams the configuration can serve at once (None: no fixed number)."""
    if worker_class == "asgi":
        return None
    return options.get("workers", 1) * options.get("threads", 1)


def bench_streams(
    *, clients: int = BENCH_CLIENTS, count: int = BENCH_COUNT,
    interval_ms: int = BENCH_INTERVAL_MS, log: Callable[[str], object] = print,
) -> list[StreamsRun]:
    """``clients`` event streams at once on one ASGI worker, then Gunicorn's sync worker
    (SYNC_WORKERS workers) and gthread worker (GTHREAD_THREADS threads), each given
    QUEUE_ROUNDS times as many clients as it can serve at once. The ASGI run comes first.

    Each server serves a few streams before the measured run, so the memory figure leaves
    out what a worker allocates once, on its first requests.
    """
    if not 2 <= count <= 1000:
        raise ValueError(f"count must be between 2 and 1000 events per stream, got {count}.")
    if not 1 <= interval_ms <= 1000:
        raise ValueError(f"interval_ms must be between 1 and 1000, got {interval_ms}.")
    plans = [("asgi", {}, count),
             ("sync", {"workers": SYNC_WORKERS}, min(count, SHORT_COUNT)),
             ("gthread", {"threads": GTHREAD_THREADS}, min(count, SHORT_COUNT))]
    runs = []
    for worker_class, options, events in plans:
        capacity = _capacity(worker_class, options)
        many = clients if capacity is None else QUEUE_ROUNDS * capacity
        rounds = 1 if capacity is None else QUEUE_ROUNDS
        log(f"event streams: {many} clients x {events} events, {interval_ms} ms apart, on "
            f"Gunicorn's {worker_class} worker" + (f" ({capacity} at once)" if capacity else ""))
        with DemoServer(name=f"bench-sse-{worker_class}", worker_class=worker_class,
                        **options) as server:
            open_streams(server, clients=min(many, WARM_UP_CLIENTS), count=2, interval_ms=0)
            runs.append(open_streams(
                server, clients=many, count=events, interval_ms=interval_ms,
                timeout=30 + rounds * events * interval_ms / 1000 * 3))
    return runs


def none_lost_target(run: StreamsRun, name: str, floor: int, where: str, *,
                     held: str = "held") -> Target:
    """At least ``floor`` streams held at once (``where`` says by what), and every client got
    every event, in order: the first target of every event-stream benchmark."""
    events = len(run.clients) * run.count
    return Target(
        f"{name}: none lost or reordered",
        f">= {floor} streams {where}; every client gets every event, in order",
        f"{run.held_at_once} of {len(run.clients)} streams {held} at once; "
        f"{run.lost_events} of {events:,} events lost, {run.reordered_events} reordered, "
        f"{run.failed_clients} clients failed",
        run.held_at_once >= floor and run.lost_events == 0
        and run.reordered_events == 0 and run.failed_clients == 0,
    )


def evaluate_streams(run: StreamsRun) -> list[Target]:
    """The three targets of the event streams, judged on ``run`` (the ASGI worker's)."""
    q = run.delay_percentiles_ms()
    per_stream = run.rss_per_stream
    rate = 1 / run.interval_s if run.interval_s else math.inf
    return [
        none_lost_target(run, "event streams", BENCH_CLIENTS,
                         f"open at once on one {run.worker_class} worker", held="open"),
        Target(
            "event streams: delay p95",
            f"p95 delay against the schedule <= {P95_LIMIT_MS:g} ms, at "
            f">= {1000 / BENCH_INTERVAL_MS:g} events/s per client",
            f"p95 {q['p95']:.1f} ms (p50 {q['p50']:.1f} ms, max {q['max']:.1f} ms), "
            f"at {rate:g} events/s per client",
            bool(run.delays_s) and q["p95"] <= P95_LIMIT_MS
            and run.interval_s * 1000 <= BENCH_INTERVAL_MS,
        ),
        Target(
            "event streams: worker memory",
            f"<= {MEMORY_LIMIT / KiB:g} KiB of worker RSS per open stream",
            "not measured" if per_stream is None else
            f"{per_stream / KiB:.0f} KiB per stream (peak "
            f"{(run.rss_peak or 0) / MiB:.1f} MiB, {(run.rss_baseline or 0) / MiB:.1f} MiB "
            f"before, {run.held_at_once} streams open at once)",
            per_stream is not None and per_stream <= MEMORY_LIMIT,
        ),
    ]


def run_summary(run: StreamsRun) -> dict[str, Any]:
    """One worker class's figures, as plain JSON data (times in s or ms, memory in KiB)."""
    firsts = sorted(c.first_event_s for c in run.clients if c.first_event_s is not None)
    per_stream = run.rss_per_stream
    worker = run.worker_rss
    return {
        "worker_class": run.worker_class, "workers": run.workers, "threads": run.threads,
        "clients": len(run.clients), "events": run.count,
        "interval_ms": round(run.interval_s * 1000),
        "held_at_once": run.held_at_once, "served_at_once": run.served_at_once,
        "all_events_in_order": run.all_in_order, "lost_events": run.lost_events,
        "reordered_events": run.reordered_events, "failed_clients": run.failed_clients,
        "listen_overflows": run.listen_overflows,
        "first_event_s": {"p50": statistics.median(firsts) if firsts else None,
                          "max": firsts[-1] if firsts else None},
        "delay_ms": run.delay_percentiles_ms(),
        "worker_rss_kib": None if worker is None else worker / KiB,
        "worker_rss_per_stream_kib": None if per_stream is None else per_stream / KiB,
        "seconds": run.seconds,
    }


def bench_summary(runs: Sequence[StreamsRun]) -> dict[str, Any]:
    """What ``make bench`` writes to ``event_streams/summary.json``: the targets, judged on
    the first run (the ASGI worker's), then every run's figures."""
    if not runs:
        raise ValueError("bench_summary needs at least one run.")
    return {"targets": [asdict(t) for t in evaluate_streams(runs[0])],
            "runs": [run_summary(run) for run in runs]}


def _cell(value: float | None, form: str) -> str:
    return "-" if value is None else format(value, form)


def _stream_memory(run: dict[str, Any]) -> str:
    """What one more stream held at once costs: on the sync worker a whole worker process
    (its RSS); on the others the workers' growth per stream held."""
    if run["worker_class"] == "sync":
        rss = run["worker_rss_kib"]
        return "-" if rss is None else f"a worker, {rss / 1024:.0f} MiB"
    return _cell(run["worker_rss_per_stream_kib"], ".0f") + " KiB"


def format_summary(summary: dict[str, Any], *, targets: bool = True) -> str:
    """The event streams as text: a table of the worker classes, a line on who waited, and
    (``targets``) the three targets, each with the value measured."""
    runs = summary["runs"]
    rows = [{
        "worker": r["worker_class"],
        "workers x threads": f"{r['workers']} x {r['threads'] or 1}",
        "clients": r["clients"], "events each": r["events"],
        "open at once": r["held_at_once"], "first event at once": r["served_at_once"],
        "last first event s": _cell(r["first_event_s"]["max"], ".2f"),
        "delay p50/p95/max ms": "/".join(f"{r['delay_ms'][k]:.0f}" for k in ("p50", "p95", "max")),
        "lost": r["lost_events"], "reordered": r["reordered_events"],
        "memory per stream held": _stream_memory(r),
    } for r in runs]
    right = [k for k in rows[0] if k not in ("worker", "workers x threads")]
    lines = [format_table(rows, right=right, title=(
        f"Event streams, one event every {runs[0]['interval_ms']} ms per client "
        "(clients connected at the same moment):"))]
    for r in runs:
        waited = r["clients"] - r["served_at_once"]
        if waited:
            lines.append(f"  {r['worker_class']}: {r['served_at_once']} of {r['clients']} clients "
                         f"got their first event at once; the other {waited} waited for a "
                         f"stream to end (the last after {r['first_event_s']['max']:.2f} s)")
        if r["listen_overflows"]:
            backlog = (" (Gunicorn's ASGI worker listens with asyncio's default backlog, 100)"
                       if r["worker_class"] == "asgi" else "")
            lines.append(f"  {r['worker_class']}: the kernel dropped {r['listen_overflows']} "
                         f"connection attempts at a full listen queue{backlog}; their clients "
                         "sent the SYN again a second later, and got their first event that "
                         "much later")
    if targets:
        lines += ["", "Event stream targets:",
                  *target_lines(Target(**t) for t in summary["targets"])]
    return "\n".join(lines)
