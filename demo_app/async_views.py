"""Twin streaming views: one over a sync generator, one (async) over an async generator.

Both send the same CSV, ``chunk_rows`` lines per chunk, pausing ``delay_ms``
after each chunk, so any difference a client sees comes from the kind of
iterator and the kind of server, never from the body. Django streams an
iterator only when it matches the server (sync under WSGI, async under ASGI);
a mismatched one is consumed whole before the first byte is sent. Notebooks
05 and 06 measure that.

With ``?tag=NAME`` the generator also reports how it ended: finished,
closed (``GeneratorExit``), cancelled (``CancelledError``), killed
(``SystemExit``)... It logs one line to the server log and, when the
environment variable ``DEMO_STREAM_EVENTS_DIR`` names a directory, writes
``NAME.json`` there. The record is written in the generator's ``finally``
block, so its presence proves that cleanup code ran; it also names the thread
the generator ran in.

``/where_sync`` and ``/where_async`` report where the server ran a sync view
and an async view: the process, the thread, whether an event loop runs in
that thread, and which ``time.sleep`` the process has (gevent's, once its
worker has monkey-patched the standard library). ``/spin?ms=N`` keeps the CPU
busy for N milliseconds without a single blocking call, the one kind of work
that cooperative scheduling (gevent, an event loop) cannot interleave.
"""

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_safe

from . import csvgen
from .params import Param, TextParam, query_params
from .views import CHUNK_ROWS, CSV_HEADERS, DELAY_MS, STREAMING_ROWS

EVENTS_DIR_ENV = "DEMO_STREAM_EVENTS_DIR"
# A tag becomes a file name: letters, digits, '-' and '_' only, so never a path.
TAG = TextParam("tag", r"[A-Za-z0-9_-]{1,64}", "1 to 64 letters, digits, '-' or '_'")
STREAM_PARAMS = (STREAMING_ROWS, CHUNK_ROWS, DELAY_MS, TAG)
# Default 0: a request that names no duration (a crawler, the hostile-request tests) costs nothing.
SPIN_MS = Param("ms", minimum=0, maximum=2000, default=0)

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)  # the root logger only passes warnings; these lines are wanted


@dataclass(frozen=True)
class StreamParams:
    """The validated query parameters shared by both twins (``STREAM_PARAMS``)."""

    rows: int
    chunk_rows: int
    delay_ms: int
    tag: str | None

    @property
    def delay_s(self) -> float:
        return self.delay_ms / 1000


class StreamRecord:
    """Counts what a generator yielded and reports, from its ``finally``, how it ended."""

    def __init__(self, tag: str | None, kind: str) -> None:
        self.tag = tag
        self.kind = kind
        self.chunks = 0
        self.nbytes = 0
        self.outcome = "not finished"
        self.started = time.time()

    def count(self, chunk: str) -> None:
        self.chunks += 1
        self.nbytes += len(chunk.encode())

    def ended(self, error: BaseException | None) -> None:
        self.outcome = "completed" if error is None else type(error).__name__

    def report(self) -> None:
        """Log the ending, and write it as JSON when DEMO_STREAM_EVENTS_DIR is set."""
        if self.tag is None:
            return
        event = {
            "tag": self.tag,
            "iterator": self.kind,
            "outcome": self.outcome,
            "chunks": self.chunks,
            "bytes": self.nbytes,
            "pid": os.getpid(),
            "thread": threading.current_thread().name,
            "started": self.started,
            "ended": time.time(),
        }
        logger.info(
            "stream %s (%s generator) ended: %s after %d chunks, %d bytes",
            self.tag, self.kind, self.outcome, self.chunks, self.nbytes,
        )
        directory = os.environ.get(EVENTS_DIR_ENV)
        if directory:
            path = Path(directory) / f"{self.tag}.json"
            # One temporary name per record: two streams may share a tag.
            partial = path.with_suffix(f".{os.getpid()}-{id(self)}.partial")
            partial.write_text(json.dumps(event))
            partial.replace(path)  # a reader never sees half a record


def sync_chunks(params: StreamParams) -> Iterator[str]:
    """The CSV in chunks, sleeping (blocking the thread) after each one."""
    record = StreamRecord(params.tag, "sync")
    error = None
    try:
        for chunk in csvgen.iter_chunks(params.rows, params.chunk_rows):
            record.count(chunk)
            yield chunk
            if params.delay_s:
                time.sleep(params.delay_s)
    except BaseException as exc:  # GeneratorExit, SystemExit...: noted, then re-raised
        error = exc
        raise
    finally:
        record.ended(error)
        record.report()


async def async_chunks(params: StreamParams) -> AsyncIterator[str]:
    """The same chunks from an async generator, awaiting (not blocking) between them."""
    record = StreamRecord(params.tag, "async")
    error = None
    try:
        for chunk in csvgen.iter_chunks(params.rows, params.chunk_rows):
            record.count(chunk)
            yield chunk
            if params.delay_s:
                await asyncio.sleep(params.delay_s)
    except BaseException as exc:  # GeneratorExit, CancelledError...: noted, then re-raised
        error = exc
        raise
    finally:
        record.ended(error)
        record.report()


@require_safe
@query_params(*STREAM_PARAMS)
def stream_sync(request: HttpRequest, **params: int | str | None) -> HttpResponse:
    """A plain view returning a StreamingHttpResponse over a *sync* generator."""
    chunks = sync_chunks(StreamParams(**params))
    return StreamingHttpResponse(chunks, content_type="text/csv", headers=CSV_HEADERS)


@require_safe
@query_params(*STREAM_PARAMS)
async def stream_async(request: HttpRequest, **params: int | str | None) -> HttpResponse:
    """An async view returning a StreamingHttpResponse over an *async* generator."""
    chunks = async_chunks(StreamParams(**params))
    return StreamingHttpResponse(chunks, content_type="text/csv", headers=CSV_HEADERS)


def where_this_runs(view: str) -> dict[str, object]:
    """The process and thread running the caller, and whether an event loop runs in it."""
    try:
        asyncio.get_running_loop()
        loop_running = True
    except RuntimeError:  # no event loop runs in this thread
        loop_running = False
    thread = threading.current_thread()
    return {
        "view": view,
        "pid": os.getpid(),
        "thread": thread.name,
        "thread_id": threading.get_ident(),
        "main_thread": thread is threading.main_thread(),
        "event_loop_running": loop_running,
        "time_sleep": f"{time.sleep.__module__}.{time.sleep.__qualname__}",
    }


@require_safe
@query_params()
def where_sync(request: HttpRequest) -> HttpResponse:
    """A plain (sync) view that reports where the server ran it."""
    return JsonResponse(where_this_runs("sync"))


@require_safe
@query_params()
async def where_async(request: HttpRequest) -> HttpResponse:
    """An async view that reports where the server ran it."""
    return JsonResponse(where_this_runs("async"))


@require_safe
@query_params(SPIN_MS)
def spin(request: HttpRequest, ms: int) -> HttpResponse:
    """Compute for ``ms`` milliseconds: no sleep, no I/O, nothing that yields to others."""
    deadline = time.perf_counter() + ms / 1000
    loops = 0
    while time.perf_counter() < deadline:
        loops += 1
    return JsonResponse({"ms": ms, "loops": loops, **where_this_runs("sync")})
