"""Real-world downloads (notebooks 07 and 08): a CSV export from the database, and a file.

Each export exists twice, so the two can be measured against each other:

* ``export_streaming`` streams rows straight from the database with
  ``QuerySet.iterator(chunk_size=...)`` and a ``csv.writer`` that writes into a
  pseudo-buffer; ``export_whole`` loads every row, builds the whole CSV in
  memory, then sends it (capped at ``WHOLE_MAX_ROWS``).
* ``export_paged`` streams the same CSV one page of rows per query, the
  pattern that fills Django's query log when ``DEBUG`` is on.
* ``file_response`` sends a generated file with ``FileResponse`` (which the WSGI
  server may hand to ``sendfile``); ``file_generator`` sends the same file
  through a Python generator.

Every parameter is declared with ``query_params``: a bad value is a 400 with a
one-line reason, never a 500. A database that was never migrated is a 503
naming the command to run, never a 500 either.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from django.db import connection
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


def needs_table(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answer 503 with the command to run when the export table does not exist yet.

    The check runs before the view, because a streaming response cannot change
    its status once it has started; without it, a database that was never
    migrated (``make serve`` on a fresh checkout) is a 500. It queries only
    until the table is found once per database, so a working server (and the
    ``DEBUG`` query log of notebook 07) sees the view's own queries only.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        database = connection.settings_dict["NAME"]
        if database not in _migrated:
            if ExportRow._meta.db_table not in connection.introspection.table_names():
                return HttpResponse(NO_TABLE, status=503, content_type="text/plain; charset=utf-8")
            _migrated.add(database)
        return view(request, *args, **kwargs)

    return wrapper


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
    return _streaming_csv(_batched_lines(queryset, chunk_size, delay_ms / 1000), unbuffered)


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
