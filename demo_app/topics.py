"""Carrying one event to every open stream, in every worker process (notebook 12).

An event is a row of ``TopicEvent``: publishing inserts it and, in the same
transaction, sends ``NOTIFY topic_<topic>, '<id>'``. PostgreSQL delivers a
notification only when its transaction commits, to every connection that has
run ``LISTEN`` on that channel, so a listener never hears of a row it cannot
read yet. The payload is the id alone: a payload may be at most 8,000 bytes
(PostgreSQL's ``NOTIFY`` page), an event may be larger, and the table is the
record a reconnecting stream replays from anyway.

A stream hears of new events in one of four ways (``delivery=``):

``local``   this process's ``LOCAL`` hub: the publish view hands the event to the
            streams of its own worker once it commits. Any other worker's
            streams never hear of it; notebook 12 counts them.
``poll``    the stream asks the table for rows after the last it sent, every
            ``poll_ms``, on a connection of its own: one query per stream per interval.
``worker``  one ``Listener`` per worker process: one connection that listens to
            every topic, fetches each notified row once and hands it to the
            ``NOTIFIED`` hub, which fans it out to that worker's streams.
``stream``  one ``Listener`` per stream: a connection per open stream.

Ids are handed out at insert and rows become visible at commit, so two
publishers can commit out of id order; a stream that resumes "after id N"
would then skip the one that committed late. The demo has one publisher at a
time; a log shared by many would need a commit-ordered position instead.

The database is reached with psycopg's async connections directly: Django's
ORM has no ``LISTEN``, and an open stream must not hold one of its request
connections for an hour. Everything here runs in the worker's event loop
(Gunicorn's ASGI worker runs one per process).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

TOPICS = ("orders", "jobs", "chat")
DELIVERIES = ("local", "poll", "worker", "stream")
APPLICATION_NAME = "demo_app topics"  # pg_stat_activity.application_name starts with it
QUEUE_MAX = 1000  # events a stream may fall behind by before it is closed (it then replays)
REPLAY_BATCH = 1000
RECONNECT_FIRST_S = 0.05  # a lost listener tries again at once, then backs off to a second
RECONNECT_MAX_S = 1.0
CHECK_S = 5.0  # a listener with nothing to hear looks at its connection this often

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


class NeedsPostgres(RuntimeError):
    """The database is not PostgreSQL: there is no LISTEN/NOTIFY to carry events."""


def channel(topic: str) -> str:
    """The NOTIFY channel of a topic."""
    return f"topic_{topic}"


@dataclass(frozen=True)
class Message:
    """One event as a stream sends it: the row's id, topic, data and commit-side time."""

    id: int
    topic: str
    data: str
    created: float  # the row's ``created``, as seconds since the epoch

    def payload(self) -> str:
        """The event's JSON, with ``sent``: this server's ``time.time()`` as it is written."""
        return json.dumps({"id": self.id, "topic": self.topic, "data": self.data,
                           "created": self.created, "worker": os.getpid(),
                           "sent": time.time()})


# -- The database, through psycopg's async connections ---------------------------------------


def conninfo() -> str:
    """Where Django's ``default`` database is, as a libpq connection string."""
    from django.db import connections

    settings = connections["default"].settings_dict
    if connections["default"].vendor != "postgresql":
        raise NeedsPostgres(
            f"the topic streams need PostgreSQL (LISTEN/NOTIFY); this server's database is "
            f"{connections['default'].vendor}: set DEMO_DATABASE_URL=postgresql://..."
        )
    return make_conninfo(
        host=settings["HOST"], port=settings["PORT"] or None, dbname=settings["NAME"],
        user=settings["USER"] or None, password=settings["PASSWORD"] or None,
        connect_timeout=settings["OPTIONS"].get("connect_timeout", 5))


async def connect(purpose: str) -> psycopg.AsyncConnection:
    """A new autocommit connection, named in ``pg_stat_activity`` by its purpose and process."""
    return await psycopg.AsyncConnection.connect(
        conninfo(), autocommit=True,
        application_name=f"{APPLICATION_NAME} {purpose} pid {os.getpid()}")


def _table() -> str:
    from .models import TopicEvent

    return TopicEvent._meta.db_table


def _messages(rows: Iterable[tuple]) -> list[Message]:
    return [Message(int(i), topic, data, float(created)) for i, topic, data, created in rows]


async def fetch_after(conn: psycopg.AsyncConnection, topics: Iterable[str], after: int,
                      limit: int = REPLAY_BATCH) -> list[Message]:
    """The events of ``topics`` with an id after ``after``, oldest first, at most ``limit``."""
    query = sql.SQL(
        "SELECT id, topic, data, extract(epoch FROM created) FROM {} "
        "WHERE topic = ANY(%s) AND id > %s ORDER BY id LIMIT %s").format(sql.Identifier(_table()))
    cursor = await conn.execute(query, (list(topics), after, limit))
    return _messages(await cursor.fetchall())


async def fetch_ids(conn: psycopg.AsyncConnection, ids: Iterable[int]) -> list[Message]:
    """The events with these ids, oldest first."""
    query = sql.SQL(
        "SELECT id, topic, data, extract(epoch FROM created) FROM {} WHERE id = ANY(%s) "
        "ORDER BY id").format(sql.Identifier(_table()))
    cursor = await conn.execute(query, (list(ids),))
    return _messages(await cursor.fetchall())


async def latest_id(conn: psycopg.AsyncConnection) -> int:
    """The newest event's id (0 for none): where a new listener starts."""
    query = sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(sql.Identifier(_table()))
    cursor = await conn.execute(query)
    return int((await cursor.fetchone())[0])


async def replay(topic: str, after: int) -> list[Message]:
    """Every event of ``topic`` after ``after`` (a reconnecting stream's ``Last-Event-ID``)."""
    found: list[Message] = []
    async with await connect("replay") as conn:
        while batch := await fetch_after(conn, [topic], after):
            found += batch
            after = batch[-1].id
    return found


# -- In-process fan-out ----------------------------------------------------------------------


class Subscription:
    """One stream's queue of events; ``overflowed`` once it fell ``QUEUE_MAX`` behind."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.queue: asyncio.Queue[Message] = asyncio.Queue(QUEUE_MAX)
        self.overflowed = False

    def put(self, message: Message) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflowed = True  # the stream ends; its client reconnects and replays


class Hub:
    """This worker's open streams by topic: ``deliver`` hands an event to each of them."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, set[Subscription]] = defaultdict(set)
        self.loop: asyncio.AbstractEventLoop | None = None

    def subscribe(self, topic: str) -> Subscription:
        self.loop = asyncio.get_running_loop()
        subscription = Subscription(topic)
        self.subscriptions[topic].add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self.subscriptions[subscription.topic].discard(subscription)

    def deliver(self, message: Message) -> None:
        for subscription in list(self.subscriptions.get(message.topic, ())):
            subscription.put(message)

    def deliver_from_thread(self, message: Message) -> None:
        """``deliver``, called from another thread (a sync view's): run it in the loop."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.deliver, message)


LOCAL = Hub()  # ``local`` delivery: events published by this worker's own publish view
NOTIFIED = Hub()  # ``worker`` delivery: events this worker's listener was notified of


# -- Listening ---------------------------------------------------------------------------------


class Listener:
    """One ``LISTEN`` connection: it fetches each notified event once and hands it on.

    When its connection fails (the server restarted, ``pg_terminate_backend``)
    it connects again, listens again, and hands on every event committed
    meanwhile, by id, so no event is lost; the delay grows from
    ``RECONNECT_FIRST_S`` to ``RECONNECT_MAX_S`` while the database stays away.
    """

    def __init__(self, topics: Iterable[str], deliver: Callable[[Message], None], *,
                 purpose: str) -> None:
        self.topics = tuple(topics)
        self.deliver = deliver
        self.purpose = purpose
        self.last_id: int | None = None
        self.connected = asyncio.Event()
        self.connections = 0  # how many times it has connected
        self.error: str | None = None  # the last failure, for a stream that waits in vain

    async def run(self) -> None:
        """Listen until cancelled, connecting again whenever the connection fails."""
        delay = RECONNECT_FIRST_S
        while True:
            try:
                async with await connect(self.purpose) as conn:
                    await self._listen(conn)
                    delay = RECONNECT_FIRST_S
                    while True:
                        notified = [n.payload async for n in conn.notifies(
                            timeout=CHECK_S, stop_after=1)]
                        if notified:
                            self._hand_on(await fetch_ids(conn, self._ids(notified)))
                        else:
                            await conn.execute("SELECT 1")  # a silent connection may be dead
            except Exception as error:  # lost connection (psycopg.Error, OSError) or a bug
                if not isinstance(error, psycopg.Error | OSError):
                    logger.exception("topic listener (%s) failed", self.purpose)
                self.connected.clear()
                self.error = str(error).strip().splitlines()[0] if str(error).strip() else (
                    type(error).__name__)
                logger.warning("topic listener (%s) lost its connection: %s; again in %.2f s",
                               self.purpose, self.error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)

    async def _listen(self, conn: psycopg.AsyncConnection) -> None:
        for topic in self.topics:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel(topic))))
        if self.last_id is None:
            self.last_id = await latest_id(conn)
        else:  # back after a failure: what was committed while nobody listened
            while missed := await fetch_after(conn, self.topics, self.last_id):
                logger.info("topic listener (%s) caught up on %d events after reconnecting",
                            self.purpose, len(missed))
                self._hand_on(missed)
        self.connections += 1
        self.error = None
        self.connected.set()

    def _ids(self, payloads: list[str]) -> list[int]:
        """The event ids notified; a payload that is not one (a ``NOTIFY`` sent by hand on
        the channel) is logged and left out, never allowed to stop the listener."""
        ids = [int(p) for p in payloads if p.isascii() and p.isdigit() and len(p) <= 18]
        if len(ids) < len(payloads):
            logger.warning("topic listener (%s) ignored %d notification(s) that name no event",
                           self.purpose, len(payloads) - len(ids))
        return ids

    def _hand_on(self, messages: list[Message]) -> None:
        for message in messages:
            if self.last_id is None or message.id > self.last_id:
                self.last_id = message.id
            self.deliver(message)


_worker_listener: tuple[Listener, asyncio.Task] | None = None


def worker_listener() -> Listener:
    """This process's one listener for every topic, started by the first stream that needs it."""
    global _worker_listener
    loop = asyncio.get_running_loop()
    if _worker_listener is None or _worker_listener[1].done() or (
            _worker_listener[1].get_loop() is not loop):
        listener = Listener(TOPICS, NOTIFIED.deliver, purpose="worker listener")
        _worker_listener = listener, loop.create_task(listener.run())
    return _worker_listener[0]


async def wait_connected(listener: Listener, timeout: float) -> None:
    """Return once ``listener`` listens; ``ConnectionError`` with its reason after ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            await listener.connected.wait()
    except TimeoutError:
        raise ConnectionError(listener.error or "the listener did not connect in time") from None


async def cancelled(task: asyncio.Task | None) -> None:
    """Cancel ``task`` and wait for it to end."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
