"""The demo's views: the same CSV sent whole or streamed, plus small responses for the wire."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_safe

from . import csvgen
from .params import BadParameter, bad_request, int_param

CSV_HEADERS = {"Content-Disposition": 'attachment; filename="big.csv"'}


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    """A plain-text map of the URLs, for whoever opens the server in a browser."""
    lines = [
        "Streaming demo app. Try:",
        "  /download_csv?rows=100                         whole body, Content-Length set",
        "  /download_csv_streaming?rows=100&chunk_rows=1  streamed, chunked framing",
        "  ...&delay_ms=200                               a slow producer: pause per chunk",
        "  /hello  /hello_streaming  /empty?status=204    tiny responses for the wire",
        "  /stream_sync  /stream_async                    the CSV from a sync or async generator",
        "  /export/streaming  /export/whole               a CSV export straight from the database",
        "  /files/file_response  /files/generator         a file: FileResponse or a generator",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


@require_safe
def download_csv(request: HttpRequest) -> HttpResponse:
    """The whole CSV built in memory, then sent in one piece with its length."""
    try:
        rows = int_param(request, "rows", 100, minimum=0, maximum=settings.DEMO_MAX_ROWS)
    except BadParameter as error:
        return bad_request(error)
    body = csvgen.csv_text(rows).encode()
    response = HttpResponse(body, content_type="text/csv", headers=CSV_HEADERS)
    response["Content-Length"] = str(len(body))
    return response


@require_safe
def download_csv_streaming(request: HttpRequest) -> HttpResponse:
    """The same CSV produced while it is sent, ``chunk_rows`` lines per chunk."""
    try:
        rows = int_param(
            request, "rows", 100, minimum=0, maximum=settings.DEMO_MAX_STREAMING_ROWS
        )
        chunk_rows = int_param(
            request, "chunk_rows", settings.DEMO_DEFAULT_CHUNK_ROWS,
            minimum=1, maximum=settings.DEMO_MAX_CHUNK_ROWS,
        )
        delay_ms = int_param(request, "delay_ms", 0, minimum=0, maximum=settings.DEMO_MAX_DELAY_MS)
    except BadParameter as error:
        return bad_request(error)
    chunks = csvgen.iter_chunks(rows, chunk_rows, delay_ms / 1000)
    return StreamingHttpResponse(chunks, content_type="text/csv", headers=CSV_HEADERS)


@require_safe
def hello(request: HttpRequest) -> HttpResponse:
    """A plain response that sets no Content-Length itself (middleware may add one)."""
    return HttpResponse("Hello, there!\n", content_type="text/plain")


@require_safe
def hello_streaming(request: HttpRequest) -> HttpResponse:
    """A streaming response of two pieces."""
    return StreamingHttpResponse(iter(["Hello,", " there!\n"]), content_type="text/plain")


EMPTY_STATUSES = (200, 204, 304)


@require_safe
def empty(request: HttpRequest) -> HttpResponse:
    """An empty response with the status asked for (204 and 304 carry no body by rule)."""
    try:
        status = int_param(request, "status", 200, minimum=200, maximum=304)
        if status not in EMPTY_STATUSES:
            raise BadParameter(f"status must be one of {EMPTY_STATUSES}, got {status}.")
    except BadParameter as error:
        return bad_request(error)
    return HttpResponse(status=status)
