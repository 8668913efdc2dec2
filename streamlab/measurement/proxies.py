"""What sits between a streaming view and its client, measured (notebook 08).

Middleware inside Django and proxies in front of Gunicorn each decide whether a
stream reaches the client piece by piece, all at once, or cut short:

* ``gzip_pieces_before_output``: how many small pieces Django's
  ``compress_sequence`` takes in before it gives out compressed bytes (1 when
  it flushes each piece, all of them when it does not);
* ``content_arrivals``: the moments a received body became *readable*, which
  for a gzip body is later than when its bytes arrived;
* ``read_stream``: a chunked response read over a bare socket, with its arrival
  timeline and whether it ended with the zero-size last chunk (a proxy that
  gives up on an idle upstream closes the connection before it);
* ``INTERMEDIARY_TIMEOUTS``: the idle and total timeouts of common proxies,
  load balancers and PaaS routers, each with the page its value was read from.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from django.utils.text import compress_sequence

from ..wire.chunked import decode_chunked
from ..wire.http1 import send_request
from .request import Measurement

GZIP_WINDOW = 16 + zlib.MAX_WBITS  # zlib's way to say "a gzip header and trailer"


# -- Compression -------------------------------------------------------------------------------


def gzip_pieces_before_output(
    compress: Callable[[Iterable[bytes]], Iterator[bytes]] = compress_sequence,
    *,
    pieces: int = 10,
    size: int = 100,
) -> int:
    """How many ``size``-byte pieces ``compress`` consumes before its first compressed output.

    The first item out of Django's ``compress_sequence`` is the gzip header; the
    second is the first compressed data. A compressor that flushes after each
    piece yields it after one piece; one that does not keeps small pieces until
    a block fills or the sequence ends, so it consumes all ``pieces`` first.
    """
    consumed = 0

    def source() -> Iterator[bytes]:
        nonlocal consumed
        for i in range(pieces):
            consumed += 1
            yield bytes([65 + i % 26]) * size

    output = compress(source())
    header = next(output)
    if not header.startswith(b"\x1f\x8b"):
        raise ValueError(f"{compress.__name__} did not start with a gzip header: {header[:10]!r}.")
    next(output)
    return consumed


def content_arrivals(m: Measurement) -> list[float]:
    """The moments (seconds after the request) at which new body content became readable.

    A plain body is readable as its bytes arrive. A gzip body is readable only
    as far as it decompresses: bytes that arrived may be part of a block whose
    end has not, and then they give nothing yet.
    """
    if m.body is None:
        raise ValueError("No body kept: measure with measure(url, keep_body=True).")
    gzipped = m.headers.get("Content-Encoding") == "gzip"
    inflate = zlib.decompressobj(GZIP_WINDOW) if gzipped else None
    times, seen = [], 0
    for t, received in m.timeline:
        piece, seen = m.body[seen:received], received
        if piece and (inflate is None or inflate.decompress(piece)):
            times.append(t)
    return times


# -- A stream read by hand -------------------------------------------------------------------


@dataclass
class StreamRead:
    """One chunked response as it arrived, and how it ended."""

    url: str
    status: int | None  # None when not even a status line arrived
    timeline: list[tuple[float, int]]  # (seconds after sending, body bytes received so far)
    body: bytes  # the body as framed on the wire (chunk sizes included)
    elapsed_s: float  # until the server closed the connection
    complete: bool  # the chunked body ended with its zero-size last chunk
    error: str | None  # why the body does not decode, when it does not
    head_s: float | None = None  # when the whole header block had arrived (None: it never did)

    @property
    def first_byte_s(self) -> float | None:
        return self.timeline[1][0] if len(self.timeline) > 1 else None

    @property
    def longest_silence_s(self) -> float:
        """The longest wait between two arrivals, or from the last one to the close."""
        times = [t for t, _ in self.timeline[1:]] + [self.elapsed_s]
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


def read_stream(url: str, *, timeout: float = 30.0) -> StreamRead:
    """GET ``url`` over a bare socket and read until the server closes the connection.

    Unlike an HTTP library, this does not raise when a chunked body stops
    short: it returns what came, when, and whether the last chunk was there.
    """
    start = time.perf_counter()
    received = bytearray()
    body_start: int | None = None
    head_s: float | None = None
    timeline: list[tuple[float, int]] = [(0.0, 0)]
    with send_request(url, timeout=timeout) as sock:
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            received += data
            if body_start is None and b"\r\n\r\n" in received:
                body_start = received.index(b"\r\n\r\n") + 4
                head_s = time.perf_counter() - start
            if body_start is not None and len(received) > body_start:
                timeline.append((time.perf_counter() - start, len(received) - body_start))
    elapsed = time.perf_counter() - start
    head = bytes(received[:body_start]) if body_start is not None else bytes(received)
    status_line = head.split(b"\r\n", 1)[0].split()
    status = int(status_line[1]) if len(status_line) > 1 else None
    body = bytes(received[body_start:]) if body_start is not None else b""
    try:
        decode_chunked(body)
    except ValueError as error:
        return StreamRead(url, status, timeline, body, elapsed, False, str(error), head_s)
    return StreamRead(url, status, timeline, body, elapsed, True, None, head_s)


# -- Timeouts of common intermediaries ----------------------------------------------------------

LOOKED_UP = "2026-11-26"  # when every value below was read from its source


@dataclass(frozen=True)
class IntermediaryTimeout:
    """One timeout of one intermediary, at its default, and where that value was read.

    ``kind`` says what the clock measures: ``"idle"`` restarts with every byte
    from the upstream, ``"total"`` runs for the whole response, ``"first byte"``
    stops once the response has started; ``"idle, client side"`` is about a
    client that stops reading, and ``"not stated"`` means the source does not say.
    """

    intermediary: str
    setting: str
    seconds: float
    kind: str
    configurable: str
    source: str
    note: str = ""
    live: str = ""  # where the series shows it happen

    def row(self) -> dict[str, object]:
        return {"intermediary": self.intermediary, "setting": self.setting,
                "default s": f"{self.seconds:g}", "kind": self.kind,
                "configurable": self.configurable, "shown live": self.live or "-"}


INTERMEDIARY_TIMEOUTS = [
    IntermediaryTimeout(
        "nginx", "proxy_read_timeout", 60, "idle", "yes, per location",
        "https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_read_timeout",
        "between two successive reads from the upstream, not for the whole response",
        live="notebook 08, at 1 s"),
    IntermediaryTimeout(
        "nginx", "send_timeout", 60, "idle, client side", "yes, per location",
        "https://nginx.org/en/docs/http/ngx_http_core_module.html#send_timeout",
        "between two successive writes to a client that does not read"),
    IntermediaryTimeout(
        "Gunicorn, sync worker", "--timeout", 30, "total", "yes (0 turns it off)",
        "https://docs.gunicorn.org/en/stable/settings.html#timeout",
        "a silent worker is killed; the sync worker is silent while it writes a body",
        live="notebooks 05 and 08, at 2-3 s"),
    IntermediaryTimeout(
        "AWS Application Load Balancer", "connection idle timeout", 60, "idle", "1-4000 s",
        "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/"
        "edit-load-balancer-attributes.html#connection-idle-timeout",
        "AWS: send at least 1 byte before each idle timeout elapses"),
    IntermediaryTimeout(
        "Google Cloud external Application LB", "backend service timeout", 30,
        "total", "yes",
        "https://cloud.google.com/load-balancing/docs/https#timeout-bes",
        "a request/response timeout, not an idle timeout"),
    IntermediaryTimeout(
        "Cloudflare (proxied)", "Proxy Read Timeout", 100, "idle", "Enterprise plans",
        "https://developers.cloudflare.com/fundamentals/reference/connection-limits/",
        "maximum time between two reads from the origin; the client gets a 524"),
    IntermediaryTimeout(
        "Heroku router", "first byte", 30, "first byte", "no",
        "https://devcenter.heroku.com/articles/request-timeout",
        "H12 error if no response byte within 30 s"),
    IntermediaryTimeout(
        "Heroku router", "rolling window", 55, "idle", "no",
        "https://devcenter.heroku.com/articles/request-timeout",
        "after the first byte, every byte restarts a 55 s window"),
    IntermediaryTimeout(
        "Azure App Service", "front-end load balancer", 230, "idle", "no",
        "https://learn.microsoft.com/en-us/answers/questions/1465927/"
        "soap-api-request-timeout-in-production-environment",
        "stated in a Microsoft Q&A answer, not in the reference documentation"),
    IntermediaryTimeout(
        "Azure Front Door", "origin response timeout", 30, "not stated", "16-240 s",
        "https://learn.microsoft.com/en-us/azure/frontdoor/troubleshoot-issues",
        "configurable on Standard/Premium; the page does not say idle or total"),
    IntermediaryTimeout(
        "Fly.io proxy", "idle TCP connection", 60, "idle", "no",
        "https://fly.io/docs/reference/services/",
        "a 2023 Fly.io announcement says this idle timeout was removed: "
        "https://community.fly.io/t/tcp-idle-timeouts-restrictions-have-been-removed/15160"),
]
