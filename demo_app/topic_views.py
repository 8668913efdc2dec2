"""Topics: a POST publishes an event, every open stream of the topic shows it (notebook 12).

``POST /topics/publish?topic=T``  the body (UTF-8 text, at most
    ``DEMO_MAX_TOPIC_EVENT_BYTES``) becomes an event: a row, and a ``NOTIFY``
    sent when it commits. ``hold_ms`` keeps the transaction open that long after
    the ``NOTIFY``, to show that nothing is delivered before the commit. The
    answer (201) is JSON: the id, and ``committed``, the time of the commit as
    seconds since the epoch, from which a client on this machine times delivery:
    PostgreSQL's own commit timestamp where ``track_commit_timestamp`` is on (the
    throwaway servers of ``streamlab`` turn it on), else this worker's clock as
    the commit returns (``clock`` says which). The worker's clock can be late: a
    worker busy writing to its streams may run the thread that commits a few
    milliseconds after the commit, and a listener elsewhere has the notification
    by then.
``GET /topics/stream?topic=T``  a ``text/event-stream``: a ``hello`` event first
    (this worker's pid, the delivery used), sent once the stream is subscribed,
    so that an event published after it arrives is one the stream must show;
    then one event per published event, ``id:`` its row's id, ``data:`` its JSON.
    ``delivery`` picks how the stream hears of events (see ``topics``);
    ``Last-Event-ID`` replays the events after that id from the table first, on
    whichever worker the reconnection lands; ``limit`` ends the stream after so
    many events (0: never); ``heartbeat_s`` sends a comment in a silence that long.
``GET /topics``  a page that shows one topic's stream (``topics.js``).

The stream is an async view playing an async generator: it needs an ASGI
server (under WSGI, Django would read the endless generator whole before the
first byte: notebook 06), and PostgreSQL. Anything else is refused with a
status and a reason, before any stream starts: 400 for a bad parameter, an
unknown topic, a body too large or not UTF-8, a ``Last-Event-ID`` that is not
a whole number; 501 under a WSGI server; 503 when the database is not
PostgreSQL, is down, or has no connection left.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_POST, require_safe

from . import topics
from .models import TopicEvent
from .params import BadParameter, Param, TextParam, bad_request, query_params
from .sse_views import HEARTBEAT, RETRY_MS, _page_file, retry_field, served_by_asgi, sse_event

TOPIC = TextParam("topic", "|".join(topics.TOPICS), f"one of {', '.join(topics.TOPICS)}",
                  required=True, example=topics.TOPICS[0])
DELIVERY = TextParam("delivery", "|".join(topics.DELIVERIES),
                     f"one of {', '.join(topics.DELIVERIES)}")
POLL_MS = Param("poll_ms", minimum=10, maximum=10_000, default=500)
TOPIC_HEARTBEAT_S = Param("heartbeat_s", minimum=0, maximum="DEMO_MAX_HEARTBEAT_S", default=15)
LIMIT = Param("limit", minimum=0, maximum="DEMO_MAX_EVENTS", default=0)
HOLD_MS = Param("hold_ms", minimum=0, maximum="DEMO_MAX_DELAY_MS", default=0)
CONNECT_WAIT_S = 5.0  # how long a new stream waits for its listener's connection


def _refused(status: int, reason: str) -> HttpResponse:
    return HttpResponse(f"{reason}\n", status=status, content_type="text/plain; charset=utf-8")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _no_postgres(error: topics.NeedsPostgres) -> HttpResponse:
    reason = str(error)
    return _refused(503, f"{reason[0].upper()}{reason[1:]}.")


def last_event_id(request: HttpRequest) -> int | None:
    """The ``Last-Event-ID`` a reconnecting stream sent (None: a new stream); ids here are
    row ids, so anything but a whole number is a client's mistake, answered with a 400."""
    raw = request.headers.get("Last-Event-ID", "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise BadParameter(f"Last-Event-ID must be a whole number (an event id), got {raw[:40]!r}.")
    return int(raw)


# -- Publishing ------------------------------------------------------------------------------


@require_POST
@query_params(TOPIC, HOLD_MS)
def publish(request: HttpRequest, *, topic: str, hold_ms: int) -> HttpResponse:
    """Store the body as an event of ``topic`` and notify every listener when it commits."""
    limit = settings.DEMO_MAX_TOPIC_EVENT_BYTES
    try:
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isdigit() and int(declared) > limit:  # refused before it is read
            raise BadParameter(f"the event is {int(declared):,} bytes; the most is {limit:,}.")
        try:
            data = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadParameter("the event (the request body) must be UTF-8 text.") from None
    except BadParameter as error:
        return bad_request(error)
    try:
        topics.conninfo()
    except topics.NeedsPostgres as error:
        return _no_postgres(error)
    committed: list[float] = []
    try:
        with transaction.atomic():
            transaction.on_commit(lambda: committed.append(time.time()))  # first, so soonest
            event = TopicEvent.objects.create(topic=topic, data=data)
            with connection.cursor() as cursor:  # queued now, sent by PostgreSQL at COMMIT
                cursor.execute("SELECT pg_notify(%s, %s)", [topics.channel(topic), str(event.pk)])
            if hold_ms:
                time.sleep(hold_ms / 1000)
            message = topics.Message(event.pk, topic, data, event.created.timestamp())
            transaction.on_commit(lambda: topics.LOCAL.deliver_from_thread(message))
    except DatabaseError as error:
        return _refused(503, f"The database is unavailable: {_first_line(error)}")
    try:
        stamped = commit_timestamp(event.pk)
    except DatabaseError as error:
        return _refused(503, f"The database is unavailable: {_first_line(error)}")
    return JsonResponse({"id": event.pk, "topic": topic, "bytes": len(request.body),
                         "committed": committed[0] if stamped is None else stamped,
                         "clock": "worker" if stamped is None else "postgresql",
                         "worker": os.getpid()}, status=201)


def commit_timestamp(event_id: int) -> float | None:
    """When PostgreSQL committed the row ``event_id`` (seconds since the epoch), or None
    where ``track_commit_timestamp`` is off. It is stamped before the commit's
    notifications are sent, so no listener can have an event before it."""
    table = connection.ops.quote_name(TopicEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT CASE WHEN current_setting('track_commit_timestamp') = 'on' THEN "
            f"extract(epoch FROM pg_xact_commit_timestamp(xmin)) END FROM {table} "
            "WHERE id = %s", [event_id])
        row = cursor.fetchone()
    return None if row is None or row[0] is None else float(row[0])


# -- Streaming -------------------------------------------------------------------------------


class Source:
    """Where one stream's events come from: a queue, filled by the hub, its own listener or
    its own poller, and what to undo when the stream ends."""

    def __init__(self, subscription: topics.Subscription,
                 close: Callable[[], Awaitable[None]]) -> None:
        self.subscription = subscription
        self.close = close


async def _source(delivery: str, topic: str, after: int, poll_ms: int) -> Source:
    """Subscribe a new stream by its ``delivery``; ``ConnectionError`` or a psycopg error
    while a status can still be chosen (before the stream starts)."""
    topics.conninfo()  # PostgreSQL, or NeedsPostgres: the events are its rows
    if delivery in ("local", "worker"):
        hub = topics.LOCAL
        if delivery == "worker":
            await topics.wait_connected(topics.worker_listener(), CONNECT_WAIT_S)
            hub = topics.NOTIFIED
        subscription = hub.subscribe(topic)

        async def unsubscribe() -> None:
            hub.unsubscribe(subscription)

        return Source(subscription, unsubscribe)
    subscription = topics.Subscription(topic)
    if delivery == "stream":
        listener = topics.Listener([topic], subscription.put, purpose="stream listener")
        task = asyncio.get_running_loop().create_task(listener.run())
        try:
            await topics.wait_connected(listener, CONNECT_WAIT_S)
        except BaseException:
            await topics.cancelled(task)
            raise
    else:
        conn = await topics.connect("poller")
        try:
            start = after if after is not None else await topics.latest_id(conn)
        except BaseException:
            await conn.close()
            raise

        async def poll(last: int) -> None:
            try:
                while True:
                    for message in await topics.fetch_after(conn, [topic], last):
                        subscription.put(message)
                        last = message.id
                    await asyncio.sleep(poll_ms / 1000)
            finally:
                await conn.close()

        task = asyncio.get_running_loop().create_task(poll(start))

    async def stop() -> None:
        await topics.cancelled(task)

    return Source(subscription, stop)


async def play(source: Source, *, hello: dict, replayed: list[topics.Message],
               heartbeat_s: int, retry_ms: int, limit: int) -> AsyncIterator[str]:
    """The stream: the retry field and ``hello``, the replayed events, then each new event
    once (an id already sent is skipped), a heartbeat in each silence, until ``limit``."""
    sent, last = 0, hello["after"] or 0
    try:
        yield retry_field(retry_ms) + sse_event(json.dumps(hello), event="hello")
        pending = list(replayed)
        while not limit or sent < limit:
            if pending:
                message = pending.pop(0)
            else:
                if source.subscription.overflowed:
                    return  # the client reconnects with its Last-Event-ID and replays the rest
                try:
                    message = await asyncio.wait_for(source.subscription.queue.get(),
                                                     heartbeat_s or None)
                except TimeoutError:
                    yield HEARTBEAT
                    continue
            if message.id <= last:
                continue
            yield sse_event(message.payload(), id=message.id)
            sent, last = sent + 1, message.id
        yield sse_event(json.dumps({"events": sent}), event="end")
    finally:
        await source.close()


@require_safe
@query_params(TOPIC, DELIVERY, POLL_MS, TOPIC_HEARTBEAT_S, RETRY_MS, LIMIT)
async def stream(request: HttpRequest, *, topic: str, delivery: str | None, poll_ms: int,
                 heartbeat_s: int, retry_ms: int, limit: int) -> HttpResponse:
    """One topic's events as a server-sent event stream (see the module's docstring)."""
    try:
        after = last_event_id(request)
    except BadParameter as error:
        return bad_request(error)
    if not served_by_asgi(request):
        return _refused(501, "The topic streams need an ASGI server (an endless async stream "
                        "would be read whole under WSGI): start Gunicorn with -k asgi.")
    delivery = delivery or "worker"
    try:
        source = await _source(delivery, topic, after, poll_ms)
        try:
            replayed = await topics.replay(topic, after) if after is not None else []
        except BaseException:
            await source.close()
            raise
    except topics.NeedsPostgres as error:
        return _no_postgres(error)
    except (ConnectionError, psycopg.Error, OSError) as error:
        return _refused(503, f"The database is unavailable: {_first_line(error)}")
    hello = {"worker": os.getpid(), "delivery": delivery, "topic": topic, "after": after,
             "replayed": len(replayed)}
    response = StreamingHttpResponse(
        play(source, hello=hello, replayed=replayed, heartbeat_s=heartbeat_s,
             retry_ms=retry_ms, limit=limit), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


# What the topic views need of the server they run on; a tool that sends them requests (the
# hostile-request tests) reads it to know which refusal a server without them must give.
publish.needs = ("postgresql",)
stream.needs = ("postgresql", "asgi")


@require_safe
@query_params()
def page(request: HttpRequest) -> HttpResponse:
    """A page that shows one topic's stream; its query string goes to the stream."""
    return _page_file("topics.html", "text/html; charset=utf-8")


@require_safe
@query_params()
def page_js(request: HttpRequest) -> HttpResponse:
    """The page's script, a file of its own (no inline script)."""
    return _page_file("topics.js", "text/javascript; charset=utf-8")
