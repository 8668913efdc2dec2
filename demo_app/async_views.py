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
block, so its presence proves that cleanup code ran.
"""

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_safe

from . import csvgen
from .params import BadParameter, bad_request, int_param
from .views import CSV_HEADERS

EVENTS_DIR_ENV = "DEMO_STREAM_EVENTS_DIR"
_TAG = re.compile(r"[A-Za-z0-9_-]{1,64}")

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)  # the root logger only passes warnings; these lines are wanted


class StreamParams:
    """The validated query parameters shared by both twins."""

    def __init__(self, request: HttpRequest) -> None:
        self.rows = int_param(
            request, "rows", 100, minimum=0, maximum=settings.DEMO_MAX_STREAMING_ROWS
        )
        self.chunk_rows = int_param(
            request, "chunk_rows", settings.DEMO_DEFAULT_CHUNK_ROWS,
            minimum=1, maximum=settings.DEMO_MAX_CHUNK_ROWS,
        )
        delay_ms = int_param(request, "delay_ms", 0, minimum=0, maximum=settings.DEMO_MAX_DELAY_MS)
        self.delay_s = delay_ms / 1000
        self.tag = _tag_param(request)


def _tag_param(request: HttpRequest) -> str | None:
    values = request.GET.getlist("tag")
    if not values:
        return None
    if len(values) > 1:
        raise BadParameter(f"tag was given {len(values)} times; give it once.")
    if not _TAG.fullmatch(values[0]):
        raise BadParameter(
            f"tag must be 1 to 64 letters, digits, '-' or '_', got {values[0][:40]!r}."
        )
    return values[0]


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
def stream_sync(request: HttpRequest) -> HttpResponse:
    """A plain view returning a StreamingHttpResponse over a *sync* generator."""
    try:
        params = StreamParams(request)
    except BadParameter as error:
        return bad_request(error)
    return StreamingHttpResponse(sync_chunks(params), content_type="text/csv", headers=CSV_HEADERS)


@require_safe
async def stream_async(request: HttpRequest) -> HttpResponse:
    """An async view returning a StreamingHttpResponse over an *async* generator."""
    try:
        params = StreamParams(request)
    except BadParameter as error:
        return bad_request(error)
    return StreamingHttpResponse(
        async_chunks(params), content_type="text/csv", headers=CSV_HEADERS
    )
