"""Real-world downloads (notebook 07): a CSV export from the database, and a file.

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

Every parameter is checked with ``int_param``: a bad value is a 400 with a
one-line reason, never a 500.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_safe

from .csvgen import Echo, batched
from .models import ExportRow
from .params import BadParameter, bad_request, int_param

MAX_ROWS = 10_000_000  # what the streaming exports accept
WHOLE_MAX_ROWS = 500_000  # the in-memory export holds every row at once: keep it bounded
MAX_CHUNK_SIZE = 100_000
MAX_DELAY_MS = 10_000
MAX_FILE_MIB = 1024
MAX_BLOCK_KIB = 1024
EXPORT_HEADERS = {"Content-Disposition": 'attachment; filename="export.csv"'}


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
def export_streaming(request: HttpRequest) -> HttpResponse:
    """Up to ``rows`` rows from the database, streamed as they are read.

    ``iterator(chunk_size=...)`` fetches ``chunk_size`` rows at a time from one
    cursor and does not keep them in the QuerySet's cache, so the worker holds
    one batch of rows, never the whole table.
    """
    try:
        rows = int_param(request, "rows", 1000, minimum=0, maximum=MAX_ROWS)
        chunk_size = int_param(request, "chunk_size", 2000, minimum=1, maximum=MAX_CHUNK_SIZE)
        delay_ms = int_param(request, "delay_ms", 0, minimum=0, maximum=MAX_DELAY_MS)
        unbuffered = int_param(request, "unbuffered", 0, minimum=0, maximum=1)
    except BadParameter as error:
        return bad_request(error)
    queryset = ExportRow.objects.order_by("pk")[:rows].iterator(chunk_size=chunk_size)
    return _streaming_csv(_batched_lines(queryset, chunk_size, delay_ms / 1000), unbuffered)


@require_safe
def export_whole(request: HttpRequest) -> HttpResponse:
    """The same CSV, built whole in memory first: every row object, then the whole text."""
    try:
        rows = int_param(request, "rows", 1000, minimum=0, maximum=WHOLE_MAX_ROWS)
    except BadParameter as error:
        return bad_request(error)
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
def export_paged(request: HttpRequest) -> HttpResponse:
    """The streamed CSV again, but one SQL query per page of ``page_size`` rows.

    A common way to avoid one long-lived cursor; with ``DEBUG = True`` every one
    of those queries is also kept in ``connection.queries`` until the request ends.
    """
    try:
        rows = int_param(request, "rows", 1000, minimum=0, maximum=MAX_ROWS)
        page_size = int_param(request, "page_size", 1000, minimum=1, maximum=MAX_CHUNK_SIZE)
    except BadParameter as error:
        return bad_request(error)
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


def _file_params(request: HttpRequest) -> tuple[Path, int]:
    mib = int_param(request, "mib", 1, minimum=0, maximum=MAX_FILE_MIB)
    block_kib = int_param(request, "block_kib", 8, minimum=1, maximum=MAX_BLOCK_KIB)
    return generated_file(mib), block_kib * 1024


@require_safe
def file_response(request: HttpRequest) -> HttpResponse:
    """A generated file sent with ``FileResponse``: Django hands the open file to the
    WSGI server's ``wsgi.file_wrapper``, and Gunicorn sends it with ``sendfile``."""
    try:
        path, _ = _file_params(request)
    except BadParameter as error:
        return bad_request(error)
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)


def _read_blocks(path: Path, block_size: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(block_size):
            yield block


@require_safe
def file_generator(request: HttpRequest) -> HttpResponse:
    """The same file read in ``block_kib`` KiB blocks by a Python generator.

    The headers match ``file_response`` (Content-Length included), so the only
    difference on the wire is who copies the bytes: Python, block by block.
    """
    try:
        path, block_size = _file_params(request)
    except BadParameter as error:
        return bad_request(error)
    response = StreamingHttpResponse(
        _read_blocks(path, block_size),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{path.name}"'},
    )
    response["Content-Length"] = str(path.stat().st_size)
    return response
