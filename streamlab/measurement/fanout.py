"""Many topic streams held open across workers, events published, every arrival timed.

``TopicStreams`` opens ``streams`` connections to ``/topics/stream`` from one
event loop in a thread of its own (one socket each, no thread per client) and
keeps them open, noting each event's id and arrival (``time.time()``) until it
is closed. Each stream's first event, ``hello``, names the worker process that
serves it. Gunicorn's ASGI worker accepts a burst of connections in one go
(asyncio accepts up to 100 per wake-up), so one worker can take them all:
with ``balanced=True`` a connection that lands on a worker that already holds
its share is closed and opened again, until every worker holds the same number.

``publish`` posts one event and returns when it was committed (PostgreSQL's
commit timestamp, or the worker's clock where the database does not keep
them); ``fanout`` puts the two together for one delivery method and says
what arrived: the delay from commit to arrival for every (stream, event)
pair, events lost and repeated, and the database connections the app held
meanwhile (``pg_stat_activity``, by purpose). The clock is shared: the
server, the client and the database run on this machine.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from ..servers.process import ManagedProcess
from ..wire.chunked import parse_size_line
from ..wire.http1 import build_request, split_url
from ..wire.sse import EventStreamParser

MAX_STREAMS = 2000  # a bound on any one run
CONNECT_AT_ONCE = 20  # streams being opened at the same moment


@dataclass
class StreamLog:
    """One client's stream: the worker that served it, and each event's id and arrival."""

    index: int
    worker: int | None = None
    opened: float | None = None  # time.time() when its hello arrived
    ids: list[int] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # time.time(), one per id
    hello: dict[str, Any] | None = None
    reopened: int = 0  # connections closed because their worker already held its share
    error: str | None = None


class TopicStreams:
    """``streams`` open topic streams, read in a background thread until ``close()``."""

    def __init__(self, server: ManagedProcess, *, streams: int, topic: str = "orders",
                 delivery: str = "worker", query: str = "", balanced: bool = True,
                 workers: int = 2, last_event_id: int | None = None,
                 timeout: float = 60.0) -> None:
        if not 1 <= streams <= MAX_STREAMS:
            raise ValueError(f"streams must be between 1 and {MAX_STREAMS}, got {streams}.")
        if balanced and streams % workers:
            raise ValueError(f"{streams} streams cannot be shared equally by {workers} workers.")
        self.url = server.url(f"/topics/stream?topic={topic}&delivery={delivery}"
                              + (f"&{query}" if query else ""))
        self.logs = [StreamLog(i) for i in range(streams)]
        self.share = streams // workers if balanced else None
        self.workers = workers
        self.last_event_id = last_event_id
        self.timeout = timeout
        self._held: collections.Counter[int] = collections.Counter()
        self._loop = asyncio.new_event_loop()
        self._opened = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="topic-streams", daemon=True)

    # -- the caller's side -------------------------------------------------------------------
    def open(self) -> TopicStreams:
        """Open every stream; return once each has its hello (or raise, saying why not)."""
        self._thread.start()
        if not self._opened.wait(self.timeout) or self._failure is not None:
            self.close()
            failed = [log.error for log in self.logs if log.error]
            opened = sum(1 for log in self.logs if log.worker)
            raise RuntimeError(
                f"{opened} of {len(self.logs)} topic streams opened within {self.timeout:g} s "
                f"(per worker: {dict(self._held)}, {sum(log.reopened for log in self.logs)} "
                f"reopened): {self._failure or (failed[0] if failed else 'no hello')}")
        return self

    def close(self) -> list[StreamLog]:
        """Close every stream (the server sees each client leave) and return the logs."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(30)
        return self.logs

    def __enter__(self) -> TopicStreams:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def by_worker(self) -> dict[int, int]:
        """How many of the streams each worker process serves."""
        return dict(collections.Counter(log.worker for log in self.logs if log.worker))

    def wait_for(self, ids: Sequence[int], timeout: float = 10.0) -> bool:
        """Wait until every stream has seen every id in ``ids``; False at the timeout."""
        wanted = set(ids)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(wanted <= set(log.ids) for log in self.logs):
                return True
            time.sleep(0.02)
        return False

    def settle(self, quiet_s: float = 0.3, timeout: float = 10.0) -> None:
        """Wait until no event has arrived for ``quiet_s`` (a poller's interval, say)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = max((log.arrivals[-1] for log in self.logs if log.arrivals), default=0.0)
            if time.time() - last >= quiet_s:
                return
            time.sleep(0.05)

    # -- the loop's side ---------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as error:  # handed to open()
            self._failure = error
            self._opened.set()
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self._hellos = [asyncio.Event() for _ in self.logs]
        gate = asyncio.Semaphore(CONNECT_AT_ONCE)
        tasks = [asyncio.create_task(self._hold(log, gate)) for log in self.logs]
        try:
            async with asyncio.timeout(self.timeout):
                every_hello = asyncio.ensure_future(
                    asyncio.gather(*(hello.wait() for hello in self._hellos)))
                await asyncio.wait([*tasks, every_hello], return_when=asyncio.FIRST_COMPLETED)
                for index, task in enumerate(tasks):  # refused or cut before its hello: say why
                    if task.done() and not self._hellos[index].is_set():
                        raise task.exception() or RuntimeError(self.logs[index].error)
                await every_hello
            self._opened.set()
            await self._stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _hold(self, log: StreamLog, gate: asyncio.Semaphore) -> None:
        host, port, target, netloc = split_url(self.url)
        headers = {} if self.last_event_id is None else {"Last-Event-ID": str(self.last_event_id)}
        while True:
            async with gate:
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(build_request(target, netloc, headers=headers))
                head = await reader.readuntil(b"\r\n\r\n")
                status = head.split(b"\r\n", 1)[0]
                if b" 200 " not in status:
                    rest = await asyncio.wait_for(reader.read(2000), 5)
                    log.error = f"{status.decode('latin-1')}: {rest.decode('utf-8', 'replace')}"
                    writer.close()
                    raise RuntimeError(log.error)
                parser = EventStreamParser()
                hello = await self._first_event(reader, parser)
                worker = int(hello["worker"])
                if self.share is None or self._held[worker] < self.share:
                    break
                log.reopened += 1
                writer.close()  # this worker holds its share: try again
        self._held[worker] += 1
        log.worker, log.hello, log.opened = worker, hello, time.time()
        self._hellos[log.index].set()
        try:
            await self._read(reader, parser, log)
        finally:
            writer.close()

    async def _first_event(self, reader: asyncio.StreamReader,
                           parser: EventStreamParser) -> dict[str, Any]:
        while True:
            for event in await self._chunk(reader, parser):
                if event.type == "hello":
                    return json.loads(event.data)

    @staticmethod
    async def _chunk(reader: asyncio.StreamReader, parser: EventStreamParser) -> list:
        size, _ = parse_size_line((await reader.readline()).rstrip(b"\r\n"))
        data = await reader.readexactly(size + 2)
        if size == 0:
            raise EOFError("the stream ended")
        return parser.feed(data[:-2])

    async def _read(self, reader: asyncio.StreamReader, parser: EventStreamParser,
                    log: StreamLog) -> None:
        try:
            while True:
                events = await self._chunk(reader, parser)
                now = time.time()
                for event in events:
                    if event.type == "message":
                        log.ids.append(int(event.last_event_id))
                        log.arrivals.append(now)
        except (EOFError, OSError, asyncio.IncompleteReadError) as error:
            log.error = f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class Published:
    """One published event: its id, when it was committed (seconds since the epoch), by
    whose clock ("postgresql": the commit's own timestamp; "worker": the publishing
    worker's clock after the commit, which can be late), and the worker that published."""

    id: int
    committed: float
    worker: int
    clock: str = "postgresql"


def publish(server: ManagedProcess, data: str = "", *, topic: str = "orders",
            hold_ms: int = 0) -> Published:
    """POST one event; ``RuntimeError`` with the server's reason if it is refused."""
    reply = requests.post(server.url(f"/topics/publish?topic={topic}&hold_ms={hold_ms}"),
                          data=data.encode(), timeout=30)
    if reply.status_code != 201:
        raise RuntimeError(f"publish answered {reply.status_code}: {reply.text.strip()}")
    body = reply.json()
    return Published(body["id"], body["committed"], body["worker"], body["clock"])


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, interpolated; NaN for none."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1] if (
        1 <= q <= 99) else (min(values) if q <= 0 else max(values))


@dataclass(frozen=True)
class FanoutRun:
    """What ``fanout`` measured for one delivery method."""

    delivery: str
    streams: int
    by_worker: dict[int, int]
    published: tuple[Published, ...]
    delays_s: tuple[float, ...]  # one per (stream, event) pair delivered
    lost: int  # (stream, event) pairs never delivered
    repeated: int  # events a stream received more than once
    connections: dict[str, int]  # the app's PostgreSQL connections while open, by purpose
    reached: dict[int, int] = field(default_factory=dict)  # event id: streams that got it
    queries_per_s: float | None = None  # the database's transactions per second, while open

    @property
    def expected(self) -> int:
        return self.streams * len(self.published)

    def p(self, q: float) -> float:
        return percentile(self.delays_s, q)

    def row(self) -> dict[str, object]:
        return {"delivery": self.delivery, "streams": self.streams,
                "per worker": "/".join(str(n) for n in sorted(self.by_worker.values())),
                "events": len(self.published), "delivered": len(self.delays_s),
                "lost": self.lost, "repeated": self.repeated,
                "delay p50 ms": f"{self.p(50) * 1000:.1f}",
                "delay p95 ms": f"{self.p(95) * 1000:.1f}",
                "connections": sum(self.connections.values()),
                "queries/s": "-" if self.queries_per_s is None else f"{self.queries_per_s:,.0f}"}


def judge(delivery: str, logs: Sequence[StreamLog], published: Sequence[Published],
          connections: dict[str, int]) -> FanoutRun:
    """Match every stream's arrivals against what was published."""
    committed = {p.id: p.committed for p in published}
    delays: list[float] = []
    lost = repeated = 0
    reached = dict.fromkeys(committed, 0)
    for log in logs:
        seen: dict[int, float] = {}
        for event_id, arrival in zip(log.ids, log.arrivals, strict=True):
            if event_id in seen:
                repeated += 1
            elif event_id in committed:
                seen[event_id] = arrival
        lost += len(set(committed) - set(seen))
        delays += [seen[i] - committed[i] for i in seen]
        for i in seen:
            reached[i] += 1
    return FanoutRun(delivery, len(logs), dict(collections.Counter(
        log.worker for log in logs if log.worker)), tuple(published), tuple(delays), lost,
        repeated, connections, reached)


def app_connections(database: Any) -> dict[str, int]:
    """The demo app's open PostgreSQL connections now, by what they are for (the part of
    ``application_name`` before the pid: "worker listener", "stream listener", "poller"...)."""
    rows = database.query(
        "SELECT application_name, count(*) FROM pg_stat_activity WHERE usename = 'app' "
        "GROUP BY 1")
    found: collections.Counter[str] = collections.Counter()
    for name, count in rows:
        purpose = name.removeprefix("demo_app topics ").split(" pid ")[0] or "Django"
        found[purpose] += count
    return dict(found)


def worker_listeners(database: Any) -> dict[int, int]:
    """The workers' listening connections now: worker process id by backend process id (from
    ``application_name``, "demo_app topics worker listener pid N")."""
    rows = database.query(
        "SELECT pid, application_name FROM pg_stat_activity WHERE "
        "application_name LIKE 'demo_app topics worker listener pid %%'")
    return {backend: int(name.rsplit(" ", 1)[1]) for backend, name in rows}


def transactions(database: Any) -> int:
    """Transactions the ``demo`` database has finished so far (``pg_stat_database``): with
    autocommit, one per query. A backend reports its counts when it goes idle, at most once
    a second, and when it exits; read this after the connections measured have closed."""
    return int(database.query(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'demo'")[0][0])


PURPOSES = {"poll": "poller", "stream": "stream listener", "worker": "worker listener"}


def fanout(server: ManagedProcess, database: Any, *, delivery: str, streams: int,
           events: int, interval_s: float = 0.1, topic: str = "orders", query: str = "",
           workers: int = 2, timeout: float = 60.0, wait_s: float | None = None) -> FanoutRun:
    """Open ``streams`` streams (shared equally by the workers), publish ``events`` events
    ``interval_s`` apart, wait until every stream has them all (at most ``wait_s``, by
    default ``timeout``: a delivery that loses events waits that long), and judge. The
    queries per second are the database's transactions from opening to closing the streams
    (the publishes' few included), counted once the streams' own connections have closed."""
    before, start = transactions(database), time.monotonic()
    with TopicStreams(server, streams=streams, topic=topic, delivery=delivery, query=query,
                      workers=workers, timeout=timeout) as opened:
        connections = app_connections(database)
        published = []
        for n in range(events):
            published.append(publish(server, f"event {n + 1} of {events}", topic=topic))
            time.sleep(interval_s)
        opened.wait_for([p.id for p in published], timeout=timeout if wait_s is None else wait_s)
        logs = opened.close()
    seconds = time.monotonic() - start
    own = PURPOSES.get(delivery) if delivery != "worker" else None  # a worker's stays open
    deadline = time.monotonic() + 10
    while own in app_connections(database) and time.monotonic() < deadline:
        time.sleep(0.05)
    run = judge(delivery, logs, published, connections)
    return dataclasses.replace(run, queries_per_s=(transactions(database) - before) / seconds)


@dataclass(frozen=True)
class Resumed:
    """A stream that left, missed events, and came back with ``Last-Event-ID``."""

    first_worker: int
    second_worker: int
    last_seen: int
    missed: tuple[int, ...]  # ids published while it was away
    replayed: int  # what the second connection's hello says it replayed
    ids: tuple[int, ...]  # what the second connection showed
    attempts: int  # connections until one landed on another worker


def resume_elsewhere(server: ManagedProcess, *, topic: str = "chat", missed: int = 3,
                     attempts: int = 30) -> Resumed:
    """Read one event, leave, let ``missed`` events be published, and reconnect with the last
    id until the reconnection lands on another worker; what did it show?"""
    with TopicStreams(server, streams=1, topic=topic, balanced=False) as first:
        seen = publish(server, "seen before leaving", topic=topic)
        if not first.wait_for([seen.id]):
            raise RuntimeError(f"the first stream never showed event {seen.id}")
        worker = first.close()[0].worker
    ids = tuple(publish(server, f"missed {n + 1}", topic=topic).id for n in range(missed))
    for attempt in range(1, attempts + 1):
        with TopicStreams(server, streams=1, topic=topic, balanced=False,
                          last_event_id=seen.id) as again:
            log = again.logs[0]
            if log.worker == worker:
                continue
            again.wait_for(ids)
            log = again.close()[0]
            return Resumed(worker, log.worker, seen.id, ids, log.hello["replayed"],
                           tuple(log.ids), attempt)
    raise RuntimeError(f"{attempts} reconnections all landed on worker {worker}")
