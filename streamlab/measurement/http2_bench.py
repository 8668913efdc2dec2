"""The same streamed body over HTTP/1.1 and over HTTP/2: framing, TTFB, throughput,
two streams on one connection, and a client that stops reading.

Both protocols are read by hand over a socket (``streamlab.wire.http1`` and
``streamlab.wire.http2``), from the same server and in the same run, so the
ratios compare like with like. Notebook 10 and ``make bench`` call
``compare``; the notebook also uses the rest. ``Http2Front`` is nginx with
an HTTP/2 (prior knowledge) listener in front of an HTTP/1.1 upstream.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo_app import csvgen
from demo_app import settings as demo_settings

from .. import tables
from ..servers.gunicorn import DemoServer
from ..servers.nginx import NginxProxy, nginx_available
from ..servers.process import HOST
from ..wire import http2, http2_client
from ..wire.chunked import decode_chunked
from ..wire.http1 import send_request
from .bench_results import BenchConfig, Http2Comparison, MiB, ProtocolRun
from .workers import StreamEvents

BROWSER_WINDOW = 8 * MiB
"""The HTTP/2 client's window when speed is measured. A browser opens large windows
(several MiB) at once; with the protocol's 64 KiB default the server would wait for
credit every 64 KiB, which measures the client's patience rather than the protocol."""

STREAMING_PATHS = {"asgi": "/stream_async"}  # the view that streams on each worker
DEFAULT_PATH = "/download_csv_streaming"


def streaming_path(server: DemoServer) -> str:
    """The demo view that streams on this server: a sync generator under WSGI, an async
    one under the ASGI worker (Django buffers a mismatched one whole, notebook 06)."""
    return STREAMING_PATHS.get(server.worker_class, DEFAULT_PATH)


def tagged_path(server: DemoServer) -> str:
    """The twin view (same CSV, same pieces) whose generator reports how it ended when
    given ``tag=`` (``StreamEvents``): ``/stream_sync`` or ``/stream_async``."""
    return "/stream_async" if server.worker_class == "asgi" else "/stream_sync"


@dataclass(frozen=True)
class Reading:
    """One GET read by hand. Times are from just before connecting."""

    protocol: str
    ttfb_s: float
    total_s: float
    body: bytes
    framing_bytes: int  # what framing the body cost: chunk lines, or DATA frame headers
    head_bytes: int  # the status line and headers, or the HEADERS frame
    pieces_on_wire: int  # chunks (the last, empty one included), or DATA frames


def read_http1(url: str, *, timeout: float = 60.0) -> Reading:
    """GET ``url`` over HTTP/1.1 (``Connection: close``) and read to the end."""
    start = time.perf_counter()
    received, first = bytearray(), None
    with send_request(url, timeout=timeout) as sock:
        while data := sock.recv(262_144):
            received += data
            if first is None and received.find(b"\r\n\r\n") not in (-1, len(received) - 4):
                first = time.perf_counter() - start
    total = time.perf_counter() - start
    head, _, wire_body = bytes(received).partition(b"\r\n\r\n")
    body = decode_chunked(wire_body)
    return Reading("HTTP/1.1", first or total, total, body.data, len(wire_body) - len(body.data),
                   len(head) + 4, len(body.chunks) + 1)


def read_http2(url: str, *, window: int = BROWSER_WINDOW, timeout: float = 60.0) -> Reading:
    """GET ``url`` over HTTP/2 (prior knowledge) on a new connection, read to END_STREAM."""
    stream, _ = http2_client.get(url, window=window, timeout=timeout)
    if not stream.ended:
        raise RuntimeError(
            f"The HTTP/2 stream for {url} did not end (reset: {stream.reset}): see the "
            "server's log; a CANCEL reset usually means its --timeout is too short for this "
            "body, a missing reset that the read timed out first (raise `timeout`).")
    data_frames = stream.data_frames
    head = sum(f.wire_size for f in stream.frames if f.type_name in ("HEADERS", "CONTINUATION"))
    body = bytes(stream.body)
    framing = sum(f.wire_size for f in data_frames) - len(body)
    first = stream.first_data_at
    return Reading("HTTP/2", first if first is not None else stream.last_at, stream.last_at,
                   body, framing, head, len(data_frames))


def compare(
    server: DemoServer,
    *,
    rows: int,
    chunk_rows: int = demo_settings.DEMO_DEFAULT_CHUNK_ROWS,
    repeats: int = 3,
    window: int = BROWSER_WINDOW,
) -> Http2Comparison:
    """The same streamed CSV over both protocols, alternating, ``repeats`` times each.

    ``server`` must speak both on one port (``DemoServer(http2=True)``). Every
    body is checked against the CSV; medians are kept.
    """
    path = streaming_path(server)
    url = server.url(f"{path}?rows={rows}&chunk_rows={chunk_rows}")
    expected = csvgen.csv_text(rows).encode()
    readers: dict[str, Callable[[str], Reading]] = {
        "HTTP/1.1": read_http1, "HTTP/2": lambda u: read_http2(u, window=window)}
    runs: dict[str, list[Reading]] = {name: [] for name in readers}
    for read in readers.values():
        read(server.url(f"{path}?rows=100"))  # warm-up: imports, first connection
    for _ in range(repeats):
        for name, read in readers.items():
            reading = read(url)
            if reading.body != expected:
                raise RuntimeError(f"{name} returned {len(reading.body):,} bytes, not the "
                                   f"{len(expected):,} of the CSV: see the server log.")
            runs[name].append(reading)
    http1, http2_run = (_protocol_run(runs[name], len(expected)) for name in readers)
    return Http2Comparison(
        worker_class=server.worker_class, path=path, rows=rows, chunk_rows=chunk_rows,
        bytes=len(expected), pieces=-(-rows // chunk_rows), repeats=repeats, window=window,
        http1=http1, http2=http2_run, ttfb_ratio=http2_run.ttfb_s / http1.ttfb_s,
        throughput_ratio=http2_run.throughput / http1.throughput)


def _protocol_run(readings: list[Reading], nbytes: int) -> ProtocolRun:
    last = readings[-1]
    total = statistics.median(r.total_s for r in readings)
    return ProtocolRun(
        protocol=last.protocol, ttfb_s=statistics.median(r.ttfb_s for r in readings),
        total_s=total, throughput=nbytes / total, framing_bytes=last.framing_bytes,
        head_bytes=last.head_bytes, pieces_on_wire=last.pieces_on_wire,
        ttfb_s_runs=[r.ttfb_s for r in readings], total_s_runs=[r.total_s for r in readings])


def compare_for_bench(config: BenchConfig, *, log: Callable[[str], None] = print
                      ) -> Http2Comparison:
    """``make bench``'s HTTP/2 section: a gthread server speaking both, the sweep's body."""
    rows = csvgen.rows_for_size(config.chunk_body)
    with DemoServer(name="bench-http2", worker_class="gthread", threads=2, http2=True,
                    timeout=120) as server:
        log(f"HTTP/1.1 against HTTP/2 at {server.base_url} (gthread worker), "
            f"{config.chunk_body / MiB:.1f} MiB streamed")
        return compare(server, rows=rows, repeats=config.repeats)


def comparison_rows(result: Http2Comparison) -> list[dict[str, str]]:
    """One row per protocol, for ``format_table``."""
    rows = []
    for run in (result.http1, result.http2):
        rows.append({
            "protocol": run.protocol, "TTFB ms": f"{run.ttfb_s * 1000:.1f}",
            "total ms": f"{run.total_s * 1000:.0f}", "MiB/s": f"{run.throughput / MiB:.1f}",
            "on the wire": f"{run.pieces_on_wire:,} " + (
                "chunks" if run.protocol == "HTTP/1.1" else "DATA frames"),
            "framing bytes": f"{run.framing_bytes:,}",
            "head bytes": f"{run.head_bytes:,}",
        })
    return rows


COMPARISON_COLUMNS = ("TTFB ms", "total ms", "MiB/s", "on the wire", "framing bytes",
                      "head bytes")


def format_comparison(result: Http2Comparison) -> str:
    """The table and the ratios, as ``make bench`` prints them."""
    title = (f"HTTP/1.1 against HTTP/2, {result.bytes / MiB:.1f} MiB streamed in "
             f"{result.pieces:,} pieces, {result.worker_class} worker "
             f"(median of {result.repeats}; HTTP/2 window {result.window / MiB:g} MiB):")
    table = tables.format_table(comparison_rows(result), right=COMPARISON_COLUMNS, title=title)
    return (f"{table}\nHTTP/2 / HTTP/1.1: TTFB x{result.ttfb_ratio:.2f}, "
            f"throughput x{result.throughput_ratio:.2f}")


# -- framing per piece ---------------------------------------------------------------------


@dataclass(frozen=True)
class FramingCost:
    """What framing one body cost over each protocol, for pieces of one size."""

    chunk_rows: int
    pieces: int
    body_bytes: int
    http1_bytes: int  # chunk-size lines, CRLFs and the last chunk
    http2_bytes: int  # nine bytes per DATA frame, the empty END_STREAM one included
    http2_frames: int

    @property
    def piece_bytes(self) -> float:
        return self.body_bytes / self.pieces

    def per_piece(self, protocol: str) -> float:
        return (self.http1_bytes if protocol == "HTTP/1.1" else self.http2_bytes) / self.pieces


def framing_costs(server: DemoServer, rows: int, chunk_rows: Sequence[int]) -> list[FramingCost]:
    """The same ``rows`` of CSV cut into pieces of each ``chunk_rows``, read both ways."""
    path = streaming_path(server)
    costs = []
    for size in chunk_rows:
        url = server.url(f"{path}?rows={rows}&chunk_rows={size}")
        one, two = read_http1(url), read_http2(url)
        if one.body != two.body:
            raise RuntimeError(
                f"HTTP/1.1 and HTTP/2 bodies differ for {url} ({len(one.body):,} against "
                f"{len(two.body):,} bytes): see the server's log for an error mid-stream, "
                "then compare the two with read_http1(url) and read_http2(url).")
        costs.append(FramingCost(size, one.pieces_on_wire - 1, len(one.body), one.framing_bytes,
                                 two.framing_bytes, two.pieces_on_wire))
    return costs


# -- streams side by side, and a client that stops reading ------------------------------------


def two_streams(server: DemoServer, slow: str, big: str, *, timeout: float = 30.0
                ) -> tuple[http2_client.Stream, http2_client.Stream]:
    """Request ``slow`` then ``big`` on one HTTP/2 connection (a big window, so flow
    control stays out of it) and read both to the end."""
    with http2_client.Http2Client(HOST, server.port, window=BROWSER_WINDOW,
                                  timeout=timeout) as client:
        first, second = client.request(slow), client.request(big)
        client.read_until(lambda: first.done and second.done, timeout=timeout)
    return first, second


@dataclass(frozen=True)
class Stall:
    """A stream whose client read its frames but never gave credit back."""

    window: int  # the stream's and connection's window: what the server may send
    received: int  # body bytes that arrived
    last_data_s: float  # when the last DATA frame arrived, since the request was sent
    watched_s: float  # how long the client watched
    reset: str | None  # the server's RST_STREAM error, if it sent one
    reset_s: float | None  # when it arrived, since the request was sent
    event: dict[str, Any] | None  # the generator's own record (StreamEvents), if it ended
    full_bytes: int  # what the view would have produced
    timeline: list[tuple[float, int]]  # (seconds since the request was sent, bytes so far)
    tag: str  # the stream's StreamEvents tag: its record may still come later

    @property
    def produced(self) -> int | None:
        """Bytes the generator yielded before it was closed (None: it has not ended)."""
        return None if self.event is None else self.event["bytes"]


def stop_reading(server: DemoServer, events: StreamEvents, *, rows: int, chunk_rows: int = 64,
                 watch_s: float = 1.0, wait_s: float = 10.0, record_s: float = 5.0) -> Stall:
    """Request a tagged stream (``tagged_path``) and read every frame it sends, but send
    no WINDOW_UPDATE at all.

    Watches for ``watch_s`` seconds, then keeps reading until the server resets the
    stream or ``wait_s`` more seconds pass, then waits up to ``record_s`` seconds for the
    generator's record (its ``finally`` ran).
    """
    tag = events.tag("stall")
    with http2_client.Http2Client(HOST, server.port, replenish=False) as client:
        path = tagged_path(server)
        stream = client.request(f"{path}?rows={rows}&chunk_rows={chunk_rows}&tag={tag}")
        client.read_for(watch_s)
        client.read_until(lambda: stream.done, timeout=wait_s)
        watched_until = client.now() - stream.sent_at
    data = [f for f in stream.data_frames if f.data]
    reset = next((f for f in stream.frames if f.type_name == "RST_STREAM"), None)
    return Stall(
        window=http2.DEFAULT_WINDOW, received=len(stream.body),
        last_data_s=data[-1].at - stream.sent_at if data else 0.0, watched_s=watch_s,
        reset=None if reset is None else reset.error_name,
        reset_s=None if reset is None else reset.at - stream.sent_at,
        event=events.wait(tag, timeout=record_s), full_bytes=csvgen.csv_size(rows),
        timeline=stream.timeline() + [(watched_until, len(stream.body))], tag=tag)


# -- nginx as an HTTP/2 front ---------------------------------------------------------------


def nginx_has_http2() -> bool:
    """Whether the nginx on PATH was built with its HTTP/2 module (``nginx -V``)."""
    binary = shutil.which("nginx") if nginx_available() else None
    if binary is None:
        return False
    out = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=10)
    return "--with-http_v2_module" in out.stderr + out.stdout


class Http2Front(NginxProxy):
    """nginx speaking HTTP/2 with prior knowledge (no TLS) to its clients, on 127.0.0.1,
    and HTTP/1.1 to the demo server (``proxy_http_version 1.1``: the upstream chunks)."""

    def __init__(self, upstream: DemoServer, **options: Any) -> None:
        directives = ["proxy_http_version 1.1", *options.pop("extra_directives", [])]
        super().__init__(upstream, extra_directives=directives, **options)

    def config_text(self, port: int, prefix: Path) -> str:
        text = super().config_text(port, prefix)
        listen = re.compile(rf"listen\s+{re.escape(HOST)}:{port}\s*;")
        if listen.search(text) is None:
            raise RuntimeError("The nginx config has no `listen 127.0.0.1:PORT;` line to add "
                               "http2 to: update Http2Front for streamlab.servers.nginx.")
        return listen.sub(f"listen {HOST}:{port} http2;", text)

    def ready(self) -> bool:
        """nginx answers an HTTP/2 request (its port no longer speaks HTTP/1.1)."""
        try:
            stream, _ = http2_client.get(self.url("/"), timeout=1.0)
        except OSError:
            return False
        return stream.status is not None
