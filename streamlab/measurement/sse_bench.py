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
with hundreds on one ASGI worker. Everything runs on 127.0.0.1, with a bounded
number of clients and a deadline.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..servers.gunicorn import DemoServer
from ..wire.chunked import parse_size_line
from ..wire.http1 import build_request, split_url
from ..wire.sse import EventStreamParser
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

    @property
    def first_event_s(self) -> float | None:
        return self.arrivals[0] if self.arrivals else None

    @property
    def waited(self) -> bool:
        """True when the first event came later than a free server sends it (``QUICK_S``)."""
        return self.first_event_s is None or self.first_event_s > QUICK_S


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

    @property
    def served_at_once(self) -> int:
        return sum(not c.waited for c in self.clients)

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
            delays += [offset - min(offsets) for offset in offsets]
        return delays

    def delay_percentiles_ms(self) -> dict[str, float]:
        delays = sorted(self.delays_s) or [0.0]
        q = statistics.quantiles(delays, n=100, method="inclusive") if len(delays) > 1 else (
            delays * 99)
        return {"p50": q[49] * 1000, "p95": q[94] * 1000, "max": delays[-1] * 1000}

    @property
    def rss_per_stream(self) -> float | None:
        """The workers' memory growth with every stream open, per stream, in bytes."""
        if self.rss_baseline is None or self.rss_peak is None or not self.clients:
            return None
        return (self.rss_peak - self.rss_baseline) / len(self.clients)

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
                               deadline: float) -> tuple[list[float], list[str], bool]:
    """Read a chunked event stream to its end: each event's arrival and id; ended or not."""
    parser = EventStreamParser()
    arrivals: list[float] = []
    ids: list[str] = []
    ended = False
    while True:
        size_line = await asyncio.wait_for(reader.readline(), deadline - time.perf_counter())
        size, _ = parse_size_line(size_line.rstrip(b"\r\n"))
        data = await asyncio.wait_for(reader.readexactly(size + 2), deadline - time.perf_counter())
        if size == 0:
            return arrivals, ids, ended
        now = time.perf_counter()
        for event in parser.feed(data[:-2]):
            if event.type == "end":
                ended = True
            else:
                arrivals.append(now - sent)
                ids.append(event.last_event_id)


async def _client(index: int, url: str, start: float, deadline: float) -> ClientRun:
    host, port, target, netloc = split_url(url)
    sent = time.perf_counter()
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                deadline - sent)
        writer.write(build_request(target, netloc))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), deadline - sent)
        if b" 200 " not in head.split(b"\r\n", 1)[0] or b"chunked" not in head.lower():
            raise ValueError(f"expected a 200 chunked event stream, got {head[:80]!r}")
        arrivals, ids, ended = await _read_chunked_events(reader, sent, deadline)
        return ClientRun(index, sent - start, tuple(arrivals), tuple(ids), ended)
    except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError) as error:
        return ClientRun(index, sent - start, (), (), False, f"{type(error).__name__}: {error}")
    finally:
        if writer is not None:
            writer.close()


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
    start = time.perf_counter()
    with RssSampler(workers, interval=0.02) as rss:
        runs = in_own_thread(lambda: asyncio.run(run_all()))
    seconds = time.perf_counter() - start
    baseline = rss.baseline_total if workers else None
    peak = sum(rss.peak.values()) if workers else None
    return StreamsRun(server.worker_class, count, interval_ms / 1000, tuple(runs), seconds,
                      baseline, peak)


# -- `make bench`: hundreds of streams on one ASGI worker ---------------------------------------

BENCH_CLIENTS = 200
BENCH_COUNT = 20
BENCH_INTERVAL_MS = 250


def bench_streams(
    *, clients: int = BENCH_CLIENTS, count: int = BENCH_COUNT,
    interval_ms: int = BENCH_INTERVAL_MS, log: Callable[[str], object] = print,
) -> StreamsRun:
    """One ASGI worker, ``clients`` event streams at once (5 s each by default), on loopback."""
    log(f"event streams: {clients} clients x {count} events, {interval_ms} ms apart, "
        "on one ASGI worker")
    with DemoServer(name="bench-sse", worker_class="asgi") as server:
        return open_streams(server, clients=clients, count=count, interval_ms=interval_ms,
                            timeout=30 + count * interval_ms / 1000 * 3)


def bench_summary(run: StreamsRun) -> dict[str, object]:
    """The figures ``make bench`` reports for the event streams, as plain JSON data."""
    firsts = sorted(c.first_event_s for c in run.clients if c.first_event_s is not None)
    per_stream = run.rss_per_stream
    return {
        "worker_class": run.worker_class, "clients": len(run.clients), "events": run.count,
        "interval_ms": round(run.interval_s * 1000), "all_events_in_order": run.all_in_order,
        "failed_clients": sum(c.error is not None for c in run.clients),
        "first_event_s": {"p50": statistics.median(firsts) if firsts else None,
                          "max": firsts[-1] if firsts else None},
        "delay_ms": run.delay_percentiles_ms(),
        "worker_rss_per_stream_kib": None if per_stream is None else per_stream / 1024,
        "seconds": run.seconds,
    }


def format_summary(summary: dict[str, object]) -> str:
    """One paragraph for the terminal."""
    delay = summary["delay_ms"]
    first = summary["first_event_s"]
    per_stream = summary["worker_rss_per_stream_kib"]
    return (
        f"Event streams: {summary['clients']} clients on one {summary['worker_class']} worker, "
        f"{summary['events']} events each, {summary['interval_ms']} ms apart: every event to "
        f"every client in order: {summary['all_events_in_order']} "
        f"({summary['failed_clients']} clients failed). Delay against the schedule: "
        f"p50 {delay['p50']:.1f} ms, p95 {delay['p95']:.1f} ms, max {delay['max']:.1f} ms. "
        f"First event: median {first['p50']:.2f} s, last {first['max']:.2f} s after connecting. "
        f"Worker memory per open stream: "
        + ("n/a" if per_stream is None else f"{per_stream:.0f} KiB") + "."
    )
