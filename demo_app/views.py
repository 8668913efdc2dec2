"""The demo's views: the same CSV sent whole or streamed, plus small responses for the wire."""

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_safe

from . import csvgen
from .params import Param, query_params

CSV_HEADERS = {"Content-Disposition": 'attachment; filename="big.csv"'}

# The caps are settings, read at each request (see settings.py for why they differ).
ROWS = Param("rows", minimum=0, maximum="DEMO_MAX_ROWS", default=100)
STREAMING_ROWS = Param("rows", minimum=0, maximum="DEMO_MAX_STREAMING_ROWS", default=100)
CHUNK_ROWS = Param(
    "chunk_rows", minimum=1, maximum="DEMO_MAX_CHUNK_ROWS", default="DEMO_DEFAULT_CHUNK_ROWS"
)
DELAY_MS = Param("delay_ms", minimum=0, maximum="DEMO_MAX_DELAY_MS", default=0)


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    """A plain-text map of the URLs, for whoever opens the server in a browser."""
    lines = [
        "Streaming demo app. Try:",
        "  /download_csv?rows=100                         whole body, Content-Length set",
        "  /download_csv_streaming?rows=100&chunk_rows=1  streamed, chunked framing",
        "  ...&delay_ms=200                               a slow producer: pause per chunk",
        "  /download_csv_streaming_sized?rows=100         streamed, with a Content-Length",
        "  /hello  /hello_streaming  /empty?status=204    tiny responses for the wire",
        "  /stream_sync  /stream_async                    the CSV from a sync or async generator",
        "  /export/streaming  /export/whole               a CSV export straight from the database",
        "  /files/file_response  /files/generator         a file: FileResponse or a generator",
        "  /export/async  /files/async  /files/accel      what streams under ASGI, or via nginx",
        "  /events?count=5&interval_ms=500                Server-Sent Events",
        "  /tokens?format=sse  /chat                      a chat answer, token by token",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


@require_safe
@query_params(ROWS)
def download_csv(request: HttpRequest, rows: int) -> HttpResponse:
    """The whole CSV built in memory, then sent in one piece with its length."""
    body = csvgen.csv_text(rows).encode()
    response = HttpResponse(body, content_type="text/csv", headers=CSV_HEADERS)
    response["Content-Length"] = str(len(body))
    return response


@require_safe
@query_params(STREAMING_ROWS, CHUNK_ROWS, DELAY_MS)
def download_csv_streaming(
    request: HttpRequest, rows: int, chunk_rows: int, delay_ms: int
) -> HttpResponse:
    """The same CSV produced while it is sent, ``chunk_rows`` lines per chunk."""
    chunks = csvgen.iter_chunks(rows, chunk_rows, delay_ms / 1000)
    return StreamingHttpResponse(chunks, content_type="text/csv", headers=CSV_HEADERS)


@require_safe
@query_params(STREAMING_ROWS, CHUNK_ROWS, DELAY_MS)
def download_csv_streaming_sized(
    request: HttpRequest, rows: int, chunk_rows: int, delay_ms: int
) -> HttpResponse:
    """The same stream with its length announced: this view can compute the CSV's size
    before producing it, so it sets Content-Length and the server need not chunk."""
    chunks = csvgen.iter_chunks(rows, chunk_rows, delay_ms / 1000)
    response = StreamingHttpResponse(chunks, content_type="text/csv", headers=CSV_HEADERS)
    response["Content-Length"] = str(csvgen.csv_size(rows))
    return response


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
@query_params(Param("status", minimum=200, maximum=304, default=200, choices=EMPTY_STATUSES))
def empty(request: HttpRequest, status: int) -> HttpResponse:
    """An empty response with the status asked for (204 and 304 carry no body by rule)."""
    return HttpResponse(status=status)
