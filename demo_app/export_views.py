"""Real-world downloads (notebooks 07 and 08): a CSV export from the database, and a file.

Each export exists twice, so the two can be measured against each other:

* ``export_streaming`` streams rows straight from the database with
  ``QuerySet.iterator(chunk_size=...)`` and a ``csv.writer`` that writes into a
  pseudo-buffer; ``export_whole`` loads every row, builds the whole CSV in
  memory, then sends it (capped at ``WHOLE_MAX_ROWS``).
* ``export_paged`` streams the same CSV one page of rows per query, the
  pattern that fills Django's query log when ``DEBUG`` is on.
* ``export_async`` streams the same CSV from an async view with
  ``QuerySet.aiterator()``: under an ASGI server a sync iterator is read whole
  before the first byte (Django's ``StreamingHttpResponse.__aiter__``), an
  async one streams.
* ``export_transaction`` reports whether the view and its response's generator
  run inside a transaction (with ``ATOMIC_REQUESTS``, only the view does).
* ``file_response`` sends a generated file with ``FileResponse`` (which the WSGI
  server may hand to ``sendfile``); ``file_generator`` sends the same file
  through a Python generator; ``file_async`` through an async generator that
  reads in a thread (what streams under ASGI); ``file_accel`` sends no body at
  all, only ``X-Accel-Redirect``, for nginx to serve the file itself.

Every parameter is declared with ``query_params``: a bad value is a 400 with a
one-line reason, never a 500. A database that was never migrated, or that is
down or full when the request arrives, is a 503 that says so, never a 500
either. A database that fails in the middle of a stream cannot change a status
already sent: the export logs one line saying so and lets the server cut the
body, so the client sees an incomplete download, never a short one that looks
complete.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import inspect
import io
import itertools
import logging
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path

from asgiref.sync import sync_to_async
from django.db import DatabaseError, OperationalError, connection
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_safe

from .csvgen import Echo, batched
from .models import ExportRow
from .params import Param, query_params

MAX_ROWS = 10_000_000  # what the streaming exports accept
WHOLE_MAX_ROWS = 500_000  # the in-memory export holds every row at once: keep it bounded
MAX_CHUNK_SIZE = 100_000
MAX_DELAY_MS = 10_000
MAX_FILE_MIB = 1024
MAX_BLOCK_KIB = 1024
EXPORT_HEADERS = {"Content-Disposition": 'attachment; filename="export.csv"'}
# The URI prefix ``file_accel`` redirects to. The proxy in front must map it to the
# files folder in a location clients cannot reach, for nginx:
#     location /protected-files/ { internal; alias <files_dir()>/; }
ACCEL_LOCATION = "/protected-files/"

ROWS = Param("rows", minimum=0, maximum=MAX_ROWS, default=1000)
WHOLE_ROWS = Param("rows", minimum=0, maximum=WHOLE_MAX_ROWS, default=1000)
CHUNK_SIZE = Param("chunk_size", minimum=1, maximum=MAX_CHUNK_SIZE, default=2000)
PAGE_SIZE = Param("page_size", minimum=1, maximum=MAX_CHUNK_SIZE, default=1000)
DELAY_MS = Param("delay_ms", minimum=0, maximum=MAX_DELAY_MS, default=0)
UNBUFFERED = Param("unbuffered", minimum=0, maximum=1, default=0)
# Both file views take both, so one query string works on either.
FILE_PARAMS = (
    Param("mib", minimum=0, maximum=MAX_FILE_MIB, default=1),
    Param("block_kib", minimum=1, maximum=MAX_BLOCK_KIB, default=8),
)


NO_TABLE = (
    "The demo database has no tables yet: run `python manage.py migrate` "
    "(then `python manage.py seed_rows`).\n"
)
_migrated: set[str] = set()  # databases whose table was found: it does not go away
logger = logging.getLogger(__name__)


def _table_exists() -> bool:
    database = connection.settings_dict["NAME"]
    if database not in _migrated:
        if ExportRow._meta.db_table not in connection.introspection.table_names():
            return False
        _migrated.add(database)
    return True


def _no_table() -> HttpResponse:
    return HttpResponse(NO_TABLE, status=503, content_type="text/plain; charset=utf-8")


def _database_down(error: DatabaseError) -> HttpResponse:
    reason = _first_line(error)
    logger.warning("export refused with 503: the database is unavailable: %s", reason)
    return HttpResponse(
        f"The database is unavailable: {reason}\nTry again when it is back.\n",
        status=503, content_type="text/plain; charset=utf-8",
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _connect_or_fail() -> None:
    """Open the request's database connection now, in the view, while a status can still
    be chosen (a streamed body would first touch the database after the headers)."""
    connection.ensure_connection()


def needs_table(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answer 503 when the database is down or full, or has no export table yet.

    The checks run before the view, because a streaming response cannot change
    its status once it has started: a view that returned a stream would meet a
    refused connection only in its generator, after a 200. So the connection
    is opened here (the stream would open it a moment later anyway), and a
    database that was never migrated (``make serve`` on a fresh checkout) gets
    the command to run. The table is looked for only until it is found once per
    database, so a working server (and the ``DEBUG`` query log of notebook 07)
    sees the view's own queries only. An async view stays async: its checks run
    in Django's sync thread, where its queries will run too.
    """
    if inspect.iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(request: HttpRequest, *args: object, **kwargs: object):
            try:
                await sync_to_async(_connect_or_fail)()
                if connection.settings_dict["NAME"] not in _migrated:
                    await ExportRow.objects.aexists()
                    _migrated.add(connection.settings_dict["NAME"])
            except OperationalError as error:
                if ExportRow._meta.db_table in str(error):  # SQLite: "no such table"
                    return _no_table()
                return _database_down(error)
            except DatabaseError as error:
                if ExportRow._meta.db_table not in str(error):
                    raise
                return _no_table()
            return await view(request, *args, **kwargs)

        return async_wrapper

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            _connect_or_fail()
            if not _table_exists():
                return _no_table()
        except OperationalError as error:
            return _database_down(error)
        return view(request, *args, **kwargs)

    return wrapper


def _reporting_failure(chunks: Iterator[str]) -> Iterator[str]:
    """``chunks``, with one clear log line if the database fails part way, then the error
    again, so that the server cuts the body (a chunked body without its last chunk) instead
    of ending it as if the export were complete."""
    sent = 0
    try:
        for chunk in chunks:
            sent += len(chunk)
            yield chunk
    except Exception as error:
        _log_cut(sent, error)
        raise


def _log_cut(sent: int, error: Exception) -> None:
    """One line for a database error part way (Django's, or the driver's own when Django's
    clean-up raised it instead); other errors pass untouched, to the server's log."""
    if not isinstance(error, DatabaseError | connection.Database.Error):
        return
    logger.error("export stopped after %d characters were sent: the database failed: %s",
                 sent, _first_line(error))


async def _areporting_failure(chunks: AsyncIterator[str]) -> AsyncIterator[str]:
    """``_reporting_failure`` for an async stream."""
    sent = 0
    try:
        async for chunk in chunks:
            sent += len(chunk)
            yield chunk
    except Exception as error:
        _log_cut(sent, error)
        raise


def _batched_lines(rows: Iterable[ExportRow], batch: int, delay_s: float) -> Iterator[str]:
    """The CSV header and the rows' lines, joined ``batch`` lines at a time.

    One piece per batch rather than one per row: every piece costs a trip
    through Django, Gunicorn and a socket write (notebook 04 measures it).
    ``delay_s`` pauses after each batch, to play a slow producer.
    """
    writer = csv.writer(Echo())
    lines = itertools.chain(
        [writer.writerow(ExportRow.CSV_HEADER)], (writer.writerow(r.csv_fields()) for r in rows)
    )
    return batched(lines, batch, delay_s)


def _streaming_csv(chunks: Iterator[str], unbuffered: int) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type="text/csv", headers=EXPORT_HEADERS)
    if unbuffered:
        # Asks a proxy in front (nginx) not to buffer this response.
        response["X-Accel-Buffering"] = "no"
    return response


@require_safe
@query_params(ROWS, CHUNK_SIZE, DELAY_MS, UNBUFFERED)
@needs_table
def export_streaming(
    request: HttpRequest, rows: int, chunk_size: int, delay_ms: int, unbuffered: int
) -> HttpResponse:
    """Up to ``rows`` rows from the database, streamed as they are read.

    ``iterator(chunk_size=...)`` fetches ``chunk_size`` rows at a time from one
    cursor and does not keep them in the QuerySet's cache, so the worker holds
    one batch of rows, never the whole table.
    """
    queryset = ExportRow.objects.order_by("pk")[:rows].iterator(chunk_size=chunk_size)
    lines = _batched_lines(queryset, chunk_size, delay_ms / 1000)
    return _streaming_csv(_reporting_failure(lines), unbuffered)


@require_safe
@query_params(WHOLE_ROWS)
@needs_table
def export_whole(request: HttpRequest, rows: int) -> HttpResponse:
    """The same CSV, built whole in memory first: every row object, then the whole text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(ExportRow.CSV_HEADER)
    writer.writerows(row.csv_fields() for row in list(ExportRow.objects.order_by("pk")[:rows]))
    return HttpResponse(buffer.getvalue(), content_type="text/csv", headers=EXPORT_HEADERS)


async def _abatched_lines(
    rows: AsyncIterable[ExportRow], batch: int, delay_s: float
) -> AsyncIterator[str]:
    """``_batched_lines`` for an async source: the same pieces, awaiting between them."""
    writer = csv.writer(Echo())
    lines = [writer.writerow(ExportRow.CSV_HEADER)]
    async for row in rows:
        lines.append(writer.writerow(row.csv_fields()))
        if len(lines) >= batch:
            yield "".join(lines)
            lines.clear()
            if delay_s:
                await asyncio.sleep(delay_s)
    if lines:
        yield "".join(lines)


@require_safe
@query_params(ROWS, CHUNK_SIZE, DELAY_MS, UNBUFFERED)
@needs_table
async def export_async(
    request: HttpRequest, rows: int, chunk_size: int, delay_ms: int, unbuffered: int
) -> HttpResponse:
    """``export_streaming`` for an ASGI server: the same CSV, read with ``aiterator()``.

    ``aiterator(chunk_size=...)`` runs the same cursor in Django's sync thread
    and hands over ``chunk_size`` rows per ``await``, so the response's iterator
    is async and the ASGI handler sends each piece as it is made. (Under a WSGI
    server Django would read it whole first: match the iterator to the server.)
    """
    queryset = ExportRow.objects.order_by("pk")[:rows].aiterator(chunk_size=chunk_size)
    lines = _abatched_lines(queryset, chunk_size, delay_ms / 1000)
    return _streaming_csv(_areporting_failure(lines), unbuffered)


@require_safe
@query_params()
@needs_table
def export_transaction(request: HttpRequest) -> HttpResponse:
    """Whether the view, and then its response's generator, run inside a transaction.

    With ``ATOMIC_REQUESTS`` Django wraps the *view* in ``transaction.atomic``;
    a streaming body is produced after the view has returned, so its queries
    run outside that transaction. Two CSV lines: where, ``in_atomic_block``, rows.
    """
    in_view = (connection.in_atomic_block, ExportRow.objects.count())

    def lines() -> Iterator[str]:
        yield "where,in_atomic_block,rows\r\n"
        yield "view,{},{}\r\n".format(*in_view)
        yield f"generator,{connection.in_atomic_block},{ExportRow.objects.count()}\r\n"

    return StreamingHttpResponse(lines(), content_type="text/csv")


def _pages(rows: int, page_size: int) -> Iterator[ExportRow]:
    """Up to ``rows`` rows, read one query per ``page_size`` rows (keyset pagination)."""
    last_pk, sent = 0, 0
    while sent < rows:
        page = list(
            ExportRow.objects.filter(pk__gt=last_pk).order_by("pk")[: min(page_size, rows - sent)]
        )
        if not page:
            return
        yield from page
        last_pk, sent = page[-1].pk, sent + len(page)


@require_safe
@query_params(ROWS, PAGE_SIZE)
@needs_table
def export_paged(request: HttpRequest, rows: int, page_size: int) -> HttpResponse:
    """The streamed CSV again, but one SQL query per page of ``page_size`` rows.

    A common way to avoid one long-lived cursor; with ``DEBUG = True`` every one
    of those queries is also kept in ``connection.queries`` until the request ends.
    """
    return _streaming_csv(_batched_lines(_pages(rows, page_size), 2000, 0.0), 0)


# -- files ------------------------------------------------------------------


def files_dir() -> Path:
    """Where generated files live: ``$DEMO_FILES_DIR``, or a folder in the temp directory."""
    configured = os.environ.get("DEMO_FILES_DIR")
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"streamlab-files-{os.getuid()}"


def generated_file(mib: int) -> Path:
    """A CSV-like file of exactly ``mib`` MiB, written on first use and reused after.

    It is written to a temporary name and renamed, so a reader never sees half a file.
    """
    path = files_dir() / f"generated-{mib}MiB.csv"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    line = b"Hello,world,this is a line of a generated file\r\n"  # 48 bytes
    block = line * (2**20 // len(line)) + line[: 2**20 % len(line)]  # exactly 1 MiB
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    with os.fdopen(handle, "wb") as out:
        for _ in range(mib):
            out.write(block)
    os.replace(tmp_name, path)
    return path


@require_safe
@query_params(*FILE_PARAMS)
def file_response(request: HttpRequest, mib: int, block_kib: int) -> HttpResponse:
    """A generated file sent with ``FileResponse``: Django hands the open file to the
    WSGI server's ``wsgi.file_wrapper``, and Gunicorn sends it with ``sendfile``
    (``block_kib`` is checked but unused: the server picks its own block size)."""
    path = generated_file(mib)
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)


def _read_blocks(path: Path, block_size: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(block_size):
            yield block


@require_safe
@query_params(*FILE_PARAMS)
def file_generator(request: HttpRequest, mib: int, block_kib: int) -> HttpResponse:
    """The same file read in ``block_kib`` KiB blocks by a Python generator.

    The headers match ``file_response`` (Content-Length included), so the only
    difference on the wire is who copies the bytes: Python, block by block.
    """
    path = generated_file(mib)
    response = StreamingHttpResponse(
        _read_blocks(path, block_kib * 1024),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{path.name}"'},
    )
    response["Content-Length"] = str(path.stat().st_size)
    return response


async def _aread_blocks(path: Path, block_size: int) -> AsyncIterator[bytes]:
    """The file in ``block_size`` blocks, each read in a thread so the event loop never waits."""
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while block := await asyncio.to_thread(handle.read, block_size):
            yield block
    finally:
        handle.close()


@require_safe
@query_params(*FILE_PARAMS)
async def file_async(request: HttpRequest, mib: int, block_kib: int) -> HttpResponse:
    """The same file through an *async* generator: what streams under an ASGI server.

    ``FileResponse`` iterates its file synchronously, so under ASGI Django reads
    it whole before sending; here every read runs in a thread
    (``asyncio.to_thread``) and each block is sent as soon as it is read.
    """
    path = await asyncio.to_thread(generated_file, mib)
    response = StreamingHttpResponse(
        _aread_blocks(path, block_kib * 1024),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{path.name}"'},
    )
    response["Content-Length"] = str(path.stat().st_size)
    return response


@require_safe
@query_params(*FILE_PARAMS)
def file_accel(request: HttpRequest, mib: int, block_kib: int) -> HttpResponse:
    """No body: ``X-Accel-Redirect`` asks the proxy in front (nginx) to send the file.

    nginx consumes the header and serves ``ACCEL_LOCATION`` + the file's name
    from an ``internal`` location (which clients cannot request themselves),
    with its own ``sendfile``, ``Range`` and ``206 Partial Content`` handling.
    Without such a proxy the client gets this empty response, header and all.
    ``block_kib`` is checked but unused, as in ``file_response``.
    """
    path = generated_file(mib)
    return HttpResponse(
        content_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{path.name}"',
            "X-Accel-Redirect": ACCEL_LOCATION + path.name,
        },
    )
