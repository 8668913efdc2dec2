"""Server-sent events and a token stream, for the browser (notebook 09).

``/events``  a ``text/event-stream`` of ``count`` events, ``interval_ms`` apart.
``/tokens``  a chat-style answer from a fixed text, token by token: a "think"
             delay before the first token, then a seeded, deterministic delay per
             token (no model, no network); ``format=sse`` or ``format=text``.
``/chat``    a page that reads ``/tokens`` twice in the browser (``EventSource``
             and ``fetch()`` with a ``ReadableStream``) and ``/events``
             (reconnection), timing each token into ``window.marks``;
             ``/chat.js`` is its script, served apart so no inline script is needed.

One URL, two implementations. Each stream is first planned as a list of
``(due, piece)`` steps (:func:`event_steps`, :func:`token_steps`), then played
by a sync generator under WSGI or an async generator under ASGI
(:func:`stream_response` picks by the request Django built: an ``ASGIRequest``
is served by the ASGI handler). Django streams an iterator only when it matches
the server (notebook 06), and both play the same plan, so both send the same bytes.
The views themselves are plain functions that only build the response (under
ASGI Django runs them in a thread, for a moment); the waiting is in the generators.
The page and its script are files in ``sse_page/``, served by views (no
``collectstatic`` step, no template settings).

The framing, as the WHATWG HTML standard ("Server-sent events") reads it: a
``retry:`` line first (sent at once, so the response's headers leave at once),
then per event ``id:``, ``event:`` and one ``data:`` line per line of the data,
ended by a blank line; in a silence of ``heartbeat_s`` seconds or more, a
comment line ``: heartbeat`` that every client ignores and every proxy sees.

Resuming: a browser's ``EventSource`` reconnects by itself after the stream
closes, sending the last id it saw as ``Last-Event-ID``. The stream then goes on
after that id. An id this stream never sent (not a whole number, or not in
``1..count``) is *ignored* and the stream starts from the beginning: the
standard leaves the meaning of the id to the server, and a 400 would make the
browser give up for good ("fail the connection"), while a fresh start gives a
client with a stale id (an older deployment, another stream) a whole, consistent
stream. The id of the last event means "nothing left": the answer is ``204 No
Content``, which the standard defines as the way to tell a browser to stop
reconnecting.

With ``?stamp=1`` each tick's JSON also carries ``"sent"``, the server's ``time.time()``
at the moment the generator yields the event (the piece is written then, not when the plan
is made): a client on the same machine reads from it how long the event took to reach it,
which the schedule alone cannot show when every event of a stream is late by the same
amount. Without it, the bytes are those of a stream that knows nothing of stamps.

With ``?tag=NAME`` a stream reports how it ended, as ``async_views`` streams do
(``StreamRecord``): the record is written in the generator's ``finally`` block,
so it proves that cleanup ran when a client left mid-stream.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_safe

from .async_views import TAG, StreamRecord
from .params import Param, TextParam, query_params

PAGE_DIR = Path(__file__).with_name("sse_page")

COUNT = Param("count", minimum=0, maximum="DEMO_MAX_EVENTS", default=5)
INTERVAL_MS = Param("interval_ms", minimum=0, maximum="DEMO_MAX_DELAY_MS", default=20)
HEARTBEAT_S = Param("heartbeat_s", minimum=0, maximum="DEMO_MAX_HEARTBEAT_S", default=0)
RETRY_MS = Param("retry_ms", minimum=0, maximum="DEMO_MAX_RETRY_MS", default=1000)
# Close the connection after this many events (0: never), so the browser reconnects.
CLOSE_AFTER = Param("close_after", minimum=0, maximum="DEMO_MAX_EVENTS", default=0)
# 1 leaves out ``X-Accel-Buffering: no``, so a proxy's default buffering applies.
ALLOW_BUFFERING = Param("allow_buffering", minimum=0, maximum=1, default=0)
# 1 adds ``"sent"`` to each tick's JSON: the server's clock (``time.time()``) as the event is
# handed to the server, so a client on the same machine sees how late each event arrived.
STAMP = Param("stamp", minimum=0, maximum=1, default=0)
THINK_MS = Param("think_ms", minimum=0, maximum="DEMO_MAX_DELAY_MS", default=50)
TOKEN_MS = Param("token_ms", minimum=0, maximum="DEMO_MAX_DELAY_MS", default=2)
SEED = Param("seed", minimum=0, maximum=2**31 - 1, default=9)
FORMAT = TextParam("format", r"sse|text", "'sse' or 'text'")

HEARTBEAT = ": heartbeat\n\n"
LINE_BREAK = re.compile(r"\r\n|\r|\n")  # every line end the event-stream format knows

# The answer a "model" gives, always the same: a paragraph break and a non-ASCII
# character (an em dash, three bytes in UTF-8) are there on purpose.
ANSWER = (
    "Streaming sends the answer while it is being written. The first words reach "
    "the reader after the think time, not after the whole answer \u2014 that is the "
    "point.\n\nEach token below is one server-sent event; the page times them all."
)


def tokens(text: str = ANSWER) -> list[str]:
    """``text`` cut into word-like tokens, each with the spaces before it (as a model's are)."""
    return re.findall(r"\s*(?:\w+|[^\w\s])|\s+$", text)


TOKENS = tokens()


# -- The framing ----------------------------------------------------------------------------


def sse_event(data: str, *, id: int | None = None, event: str | None = None) -> str:
    """One event: ``id:``, ``event:``, one ``data:`` line per line of ``data``, a blank line.

    The data is split on every line end the format knows (CR, LF, CRLF): sent
    inside one ``data:`` line, a line break would end that line early. A
    client joins the ``data:`` lines with LF, so CRLF and CR come back as LF.
    """
    lines = [] if id is None else [f"id: {id}"]
    if event is not None:
        lines.append(f"event: {event}")
    lines += [f"data: {line}" for line in LINE_BREAK.split(data)]
    return "\n".join(lines) + "\n\n"


def retry_field(retry_ms: int) -> str:
    """The reconnection time for the browser, alone in a block (a block without data
    dispatches no event)."""
    return f"retry: {retry_ms}\n\n"


# A step's piece: its text, or (``stamp=1``) a function that writes it as it is sent.
Piece = str | Callable[[], str]


def with_heartbeats(steps: Iterable[tuple[float, Piece]], heartbeat_s: int) -> Iterator[
        tuple[float, Piece]]:
    """The steps, plus a heartbeat comment every ``heartbeat_s`` seconds of silence."""
    last = 0.0
    for due, piece in steps:
        while heartbeat_s and due - last >= heartbeat_s:
            last += heartbeat_s
            yield last, HEARTBEAT
        yield due, piece
        last = due


# -- The plans: what to send, and when (seconds after the response starts) -----------------


def resume_after(request: HttpRequest, count: int) -> int | None:
    """The id the client last saw (``Last-Event-ID``), if it is one this stream sends
    (``1..count``); otherwise None: start from the beginning (see the module's docstring)."""
    raw = request.headers.get("Last-Event-ID", "").strip()
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 20):
        return None
    last = int(raw)
    return last if 1 <= last <= count else None


def tick(n: int, count: int, due_ms: int, *, stamp: bool = False) -> Piece:
    """Event ``n`` of ``count``: a line of text, then its number and schedule as JSON; with
    ``stamp``, a function that adds ``"sent": time.time()`` when the player calls it."""
    def framed(**sent: float) -> str:
        data = f"tick {n} of {count}\n" + json.dumps({"n": n, "due_ms": due_ms, **sent})
        return sse_event(data, id=n, event="tick")

    return (lambda: framed(sent=time.time())) if stamp else framed()


def event_steps(
    *, count: int, interval_ms: int, heartbeat_s: int, retry_ms: int, close_after: int,
    after: int = 0, stamp: bool = False,
) -> Iterator[tuple[float, Piece]]:
    """``/events``: the retry field at once, then events ``after+1..count`` every
    ``interval_ms`` (the first at once), at most ``close_after`` of them per connection,
    and an ``end`` event after the last; ``stamp`` stamps each event as it is sent."""
    def steps() -> Iterator[tuple[float, Piece]]:
        yield 0.0, retry_field(retry_ms)
        last = count if not close_after else min(count, after + close_after)
        for k, n in enumerate(range(after + 1, last + 1)):
            yield k * interval_ms / 1000, tick(n, count, k * interval_ms, stamp=stamp)
        if last == count:
            yield max(0, last - after - 1) * interval_ms / 1000, sse_event(
                "end of stream", event="end")

    return with_heartbeats(steps(), heartbeat_s)


def token_delays_ms(n: int, token_ms: int, seed: int) -> list[int]:
    """A delay before each of ``n`` tokens after the first: ``token_ms`` on average,
    between half and one and a half times it, the same for the same ``seed``."""
    rng = random.Random(seed)
    return [round(token_ms * rng.uniform(0.5, 1.5)) for _ in range(n)]


def token_due_ms(*, think_ms: int, token_ms: int, seed: int, text: str = ANSWER) -> list[int]:
    """When each token is due, in ms after the response starts: the first after the think time."""
    due, total = [], think_ms
    for index, delay in enumerate(token_delays_ms(len(tokens(text)), token_ms, seed)):
        total += delay if index else 0
        due.append(total)
    return due


def token_steps(
    *, think_ms: int, token_ms: int, seed: int, sse: bool, heartbeat_s: int, retry_ms: int,
    after: int = 0,
) -> Iterator[tuple[float, str]]:
    """``/tokens``: each token at its time; as events (id = its number, from 1), with the
    retry field first and a ``done`` event last, or as plain text."""
    pieces = TOKENS
    due = token_due_ms(think_ms=think_ms, token_ms=token_ms, seed=seed)
    if not sse:
        return ((d / 1000, piece) for d, piece in zip(due, pieces, strict=True))

    def steps() -> Iterator[tuple[float, str]]:
        yield 0.0, retry_field(retry_ms)
        for n in range(after + 1, len(pieces) + 1):
            yield due[n - 1] / 1000, sse_event(pieces[n - 1], id=n)
        done = json.dumps({"tokens": len(pieces), "chars": len(ANSWER)})
        yield due[-1] / 1000, sse_event(done, event="done")

    return with_heartbeats(steps(), heartbeat_s)


# -- Playing a plan: one sync and one async generator, the same bytes -----------------------


def written(piece: Piece) -> str:
    """A step's text, as it is sent: a stamped piece is written now."""
    return piece() if callable(piece) else piece


def play_sync(steps: Iterable[tuple[float, Piece]], record: StreamRecord) -> Iterator[str]:
    """Each piece at its time, sleeping (the thread blocks) in between."""
    start = time.monotonic()
    error = None
    try:
        for due, piece in steps:
            pause = start + due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            text = written(piece)
            record.count(text)
            yield text
    except BaseException as exc:  # GeneratorExit when the server closes us early: noted
        error = exc
        raise
    finally:
        record.ended(error)
        record.report()


async def play_async(steps: Iterable[tuple[float, Piece]], record: StreamRecord) -> AsyncIterator[
        str]:
    """The same pieces at the same times, awaiting (the event loop serves others) in between."""
    start = time.monotonic()
    error = None
    try:
        for due, piece in steps:
            pause = start + due - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            text = written(piece)
            record.count(text)
            yield text
    except BaseException as exc:  # CancelledError when Django's ASGI handler sees a disconnect
        error = exc
        raise
    finally:
        record.ended(error)
        record.report()


def served_by_asgi(request: HttpRequest) -> bool:
    """True when Django's ASGI handler built this request (Gunicorn's ``-k asgi``)."""
    return isinstance(request, ASGIRequest)


def stream_response(
    request: HttpRequest, steps: Iterable[tuple[float, Piece]], *, content_type: str,
    tag: str | None, allow_buffering: int = 0,
) -> StreamingHttpResponse:
    """Play ``steps`` with the generator that matches the server, with the headers a stream
    to a browser needs: never cached, and (unless asked) not buffered by nginx."""
    if served_by_asgi(request):
        content: Iterable[str] | AsyncIterator[str] = play_async(
            steps, StreamRecord(tag, "async"))
    else:
        content = play_sync(steps, StreamRecord(tag, "sync"))
    response = StreamingHttpResponse(content, content_type=content_type)
    response["Cache-Control"] = "no-cache"
    if not allow_buffering:
        response["X-Accel-Buffering"] = "no"
    return response


def nothing_left() -> HttpResponse:
    """``204 No Content``: the client already has the last event; a browser stops reconnecting."""
    response = HttpResponse(status=204)
    response["Cache-Control"] = "no-cache"
    return response


# -- The views ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventParams:
    count: int
    interval_ms: int
    heartbeat_s: int
    retry_ms: int
    close_after: int
    allow_buffering: int
    stamp: int
    tag: str | None


@require_safe
@query_params(COUNT, INTERVAL_MS, HEARTBEAT_S, RETRY_MS, CLOSE_AFTER, ALLOW_BUFFERING, STAMP, TAG)
def events(request: HttpRequest, **params: int | str | None) -> HttpResponse:
    """``count`` server-sent events, ``interval_ms`` apart, resumed after ``Last-Event-ID``."""
    p = EventParams(**params)  # type: ignore[arg-type]
    after = resume_after(request, p.count)
    if after is not None and after == p.count:
        return nothing_left()
    steps = event_steps(count=p.count, interval_ms=p.interval_ms, heartbeat_s=p.heartbeat_s,
                        retry_ms=p.retry_ms, close_after=p.close_after, after=after or 0,
                        stamp=bool(p.stamp))
    return stream_response(request, steps, content_type="text/event-stream", tag=p.tag,
                           allow_buffering=p.allow_buffering)


@require_safe
@query_params(THINK_MS, TOKEN_MS, SEED, HEARTBEAT_S, RETRY_MS, ALLOW_BUFFERING, FORMAT, TAG)
def answer_tokens(
    request: HttpRequest, *, think_ms: int, token_ms: int, seed: int, heartbeat_s: int,
    retry_ms: int, allow_buffering: int, format: str | None, tag: str | None,
) -> HttpResponse:
    """The fixed answer, token by token: as events (``format=sse``, the default) or as
    plain text (``format=text``: no heartbeats, which would change the text)."""
    sse = format != "text"
    after = resume_after(request, len(TOKENS)) if sse else None
    if after is not None and after == len(TOKENS):
        return nothing_left()
    steps = token_steps(think_ms=think_ms, token_ms=token_ms, seed=seed, sse=sse,
                        heartbeat_s=heartbeat_s, retry_ms=retry_ms, after=after or 0)
    content_type = "text/event-stream" if sse else "text/plain; charset=utf-8"
    return stream_response(request, steps, content_type=content_type, tag=tag,
                           allow_buffering=allow_buffering)


def _page_file(name: str, content_type: str) -> HttpResponse:
    response = HttpResponse((PAGE_DIR / name).read_bytes(), content_type=content_type)
    response["Cache-Control"] = "no-cache"
    return response


@require_safe
@query_params()
def chat(request: HttpRequest) -> HttpResponse:
    """The browser page. Its own query string is passed on to the streams it opens."""
    return _page_file("chat.html", "text/html; charset=utf-8")


@require_safe
@query_params()
def chat_js(request: HttpRequest) -> HttpResponse:
    """The page's script, as a file of its own: no inline script for a policy to block."""
    return _page_file("chat.js", "text/javascript; charset=utf-8")
