"""A small HTTP/2 client over a raw socket, for the notebooks (frames: ``http2``).

``Http2Client`` sends the connection preface and a SETTINGS frame, one HEADERS
frame per request (``http2.headers_frame``), acknowledges the server's
SETTINGS and PINGs, and keeps every frame it reads with its arrival time.
Response header blocks are HPACK-compressed with a table shared by the whole
connection, so they are decoded with ``hpack`` (the library ``h2`` uses).
``get(url)`` is one request on a connection of its own.

Flow control (RFC 9113, section 5.2): a server may send only as many DATA
bytes as the client's windows allow, 65,535 bytes per stream and per
connection at first. The client gives credit back with WINDOW_UPDATE frames
(``replenish=True``); without them the server must stop (``replenish=False``
shows that). ``window`` opens bigger windows from the start, as browsers do.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import hpack

from .headers import Headers
from .http2 import (
    ACK,
    DEFAULT_WINDOW,
    END_HEADERS,
    FRAME_HEADER_SIZE,
    MAX_WINDOW,
    PREFACE,
    Frame,
    decode_frames,
    headers_frame,
    parse_header,
    ping_frame,
    request_fields,
    rst_stream_frame,
    settings_frame,
    window_update_frame,
)

# -- A client ---------------------------------------------------------------------------------


@dataclass
class Stream:
    """One request and what came back on its stream. Times are seconds since the client
    began to connect (``Frame.at``)."""

    id: int
    path: str
    sent_at: float
    headers: Headers | None = None
    trailers: Headers | None = None
    body: bytearray = field(default_factory=bytearray, repr=False)
    frames: list[Frame] = field(default_factory=list, repr=False)
    ended: bool = False  # END_STREAM arrived: the response is complete
    reset: str | None = None  # the error name of a RST_STREAM, from either side
    unacknowledged: int = field(default=0, repr=False)  # DATA bytes not yet given back

    @property
    def status(self) -> int | None:
        return None if self.headers is None else int(self.headers[":status"])

    @property
    def done(self) -> bool:
        return self.ended or self.reset is not None

    @property
    def data_frames(self) -> list[Frame]:
        return [f for f in self.frames if f.type_name == "DATA"]

    @property
    def first_data_at(self) -> float | None:
        return next((f.at for f in self.data_frames if f.data), None)

    @property
    def ttfb_s(self) -> float | None:
        """From sending the request to the first byte of body."""
        first = self.first_data_at
        return None if first is None else first - self.sent_at

    @property
    def last_at(self) -> float | None:
        return self.frames[-1].at if self.frames else None

    def timeline(self) -> list[tuple[float, int]]:
        """(seconds since the request was sent, body bytes received so far)."""
        points, total = [(0.0, 0)], 0
        for frame in self.data_frames:
            total += len(frame.data)
            points.append((frame.at - self.sent_at, total))
        return points


class Http2Client:
    """HTTP/2 with prior knowledge, over a plain TCP socket, one frame at a time.

    >>> with Http2Client("127.0.0.1", 8000) as client:          # doctest: +SKIP
    ...     stream = client.get("/download_csv_streaming?rows=5")
    ...     stream.status, bytes(stream.body), client.frames
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        window: int = DEFAULT_WINDOW,
        replenish: bool = True,
        timeout: float = 10.0,
        settings: Mapping[str, int] | None = None,
    ) -> None:
        if not DEFAULT_WINDOW <= window <= MAX_WINDOW:
            raise ValueError(f"window must be {DEFAULT_WINDOW:,} to 2**31 - 1, got {window:,}.")
        self.host, self.port = host, port
        self.window = window
        self.replenish = replenish
        self.timeout = timeout
        self.local_settings = {"ENABLE_PUSH": 0, **(settings or {})}
        if window != DEFAULT_WINDOW:
            self.local_settings["INITIAL_WINDOW_SIZE"] = window
        self.frames: list[Frame] = []  # every frame read, in order
        self.sent: list[Frame] = []  # every frame written (the preface is not a frame)
        self.streams: dict[int, Stream] = {}
        self.server_settings: dict[str, int] = {}
        self.goaway: Frame | None = None
        self.closed = False  # the server closed the connection
        self.sock: socket.socket | None = None
        self._buffer = bytearray()
        self._decoder = hpack.Decoder()
        self._block = bytearray()  # a header block still waiting for its CONTINUATIONs
        self._next_stream = 1
        self._connection_unacknowledged = 0
        self._t0 = 0.0

    # -- the connection ---------------------------------------------------------------
    def connect(self) -> Http2Client:
        """Open the socket and send the preface, our SETTINGS and (for a big window)
        a WINDOW_UPDATE for the connection, whose window SETTINGS cannot change."""
        self._t0 = time.perf_counter()
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        opening = [settings_frame(self.local_settings)]
        if self.window > DEFAULT_WINDOW:
            opening.append(window_update_frame(0, self.window - DEFAULT_WINDOW))
        self.send(PREFACE + b"".join(opening))
        return self

    @property
    def unparsed(self) -> bytes:
        """Bytes that arrived but make no whole frame: a frame still coming, or a server
        that answered in something other than HTTP/2 (``b"HTTP/1.1 400 ..."``)."""
        return bytes(self._buffer)

    @property
    def connected_at(self) -> float:
        """``time.perf_counter()`` when ``connect()`` began: puts two clients' times on
        one clock (``b.connected_at - a.connected_at`` turns b's times into a's)."""
        return self._t0

    def now(self) -> float:
        """Seconds since ``connect()`` began (so a TTFB can include the connection set-up)."""
        return time.perf_counter() - self._t0

    def send(self, data: bytes) -> None:
        """Write bytes as they are; the frames among them are kept in ``sent``."""
        if self.sock is None:
            raise RuntimeError("Not connected: call connect() first (or use `with`).")
        self.sock.sendall(data)
        frames, _ = decode_frames(data.removeprefix(PREFACE), at=self.now())
        self.sent += frames

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self) -> Http2Client:
        return self.connect()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- requests -----------------------------------------------------------------------
    def request(self, path: str, *, method: str = "GET",
                headers: Iterable[tuple[str, str]] = ()) -> Stream:
        """Send one HEADERS frame (END_STREAM: a GET has no body) on a new stream."""
        stream_id, self._next_stream = self._next_stream, self._next_stream + 2
        fields = request_fields(path, f"{self.host}:{self.port}", method, headers)
        stream = Stream(stream_id, path, self.now())
        self.streams[stream_id] = stream
        self.send(headers_frame(stream_id, fields))
        return stream

    def get(self, path: str, *, timeout: float | None = None) -> Stream:
        """Request ``path`` and read until its response is complete (or reset)."""
        stream = self.request(path)
        self.read_until(lambda: stream.done, timeout=timeout)
        return stream

    def grant(self, stream_id: int, increment: int) -> None:
        """Give the server ``increment`` more bytes of window on a stream and the connection."""
        self.send(window_update_frame(stream_id, increment) + window_update_frame(0, increment))

    def reset(self, stream_id: int, error: str = "CANCEL") -> None:
        """Cancel a stream (RST_STREAM): the server should stop sending it."""
        self.send(rst_stream_frame(stream_id, error))
        self.streams[stream_id].reset = error

    # -- reading --------------------------------------------------------------------------
    def read_frame(self, timeout: float | None = None) -> Frame | None:
        """The next frame, handled; None if none came within ``timeout`` seconds
        (default: the client's) or the server closed the connection."""
        while True:
            frames, rest = decode_frames(self._buffer[:FRAME_HEADER_SIZE + self._want()])
            if frames:
                frame = replace(frames[0], at=self.now())
                del self._buffer[:frame.wire_size]
                self._handle(frame)
                return frame
            if not self._fill(self.timeout if timeout is None else timeout):
                return None

    def read_until(self, done: Callable[[], bool], *, timeout: float | None = None) -> bool:
        """Read frames until ``done()`` is true (True), or nothing more arrives within
        ``timeout`` seconds or the server closes (False)."""
        while not done():
            if self.read_frame(timeout) is None:
                return done()
        return True

    def read_for(self, seconds: float) -> list[Frame]:
        """Every frame that arrives in the next ``seconds``."""
        deadline, got = time.perf_counter() + seconds, []
        while (left := deadline - time.perf_counter()) > 0:
            frame = self.read_frame(timeout=left)
            if frame is None:
                if self.closed:
                    break
                continue
            got.append(frame)
        return got

    def _want(self) -> int:
        return parse_header(self._buffer[:9])[0] if len(self._buffer) >= 9 else 0

    def _fill(self, timeout: float) -> bool:
        if self.sock is None or self.closed:
            return False
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_READ)
            if not selector.select(timeout):
                return False
        try:
            data = self.sock.recv(262_144)
        except (ConnectionResetError, TimeoutError):
            data = b""
        if not data:
            self.closed = True
            return False
        self._buffer += data
        return True

    def _handle(self, frame: Frame) -> None:
        """Do what the protocol asks of a client, then file the frame."""
        self.frames.append(frame)
        name = frame.type_name
        if name == "SETTINGS" and not frame.flags & ACK:
            self.server_settings.update(frame.settings)
            self.send(settings_frame(ack=True))
        elif name == "PING" and not frame.flags & ACK:
            self.send(ping_frame(frame.payload, ack=True))
        elif name == "GOAWAY":
            self.goaway = frame
        stream = self.streams.get(frame.stream_id)
        if stream is None:
            return
        stream.frames.append(frame)
        if name in ("HEADERS", "CONTINUATION"):
            self._header_block(stream, frame)
        elif name == "RST_STREAM":
            stream.reset = frame.error_name
        if frame.end_stream:
            stream.ended = True
        if name == "DATA":  # no credit for a stream that is over: only the connection's
            stream.body += frame.data
            self._credit(stream, frame.length)

    def _header_block(self, stream: Stream, frame: Frame) -> None:
        self._block += frame.header_block
        if not frame.flags & END_HEADERS:
            return  # CONTINUATION frames carry the rest
        fields = Headers(self._decoder.decode(bytes(self._block)))
        self._block.clear()
        if stream.headers is None or stream.headers[":status"].startswith("1"):
            stream.headers = fields  # an informational (1xx) response is replaced
        else:
            stream.trailers = fields

    def _credit(self, stream: Stream, length: int) -> None:
        """Give back what was read, once half a window is used (as many clients do);
        a finished or reset stream owes nothing, but the connection's window still does."""
        if not self.replenish or not length:
            return
        stream.unacknowledged += length
        self._connection_unacknowledged += length
        updates = b""
        if stream.unacknowledged >= self.window // 2 and not stream.done:
            updates += window_update_frame(stream.id, stream.unacknowledged)
            stream.unacknowledged = 0
        if self._connection_unacknowledged >= self.window // 2:
            updates += window_update_frame(0, self._connection_unacknowledged)
            self._connection_unacknowledged = 0
        if updates:
            self.send(updates)


def split_url(url: str) -> tuple[str, int, str]:
    """``(host, port, path with query)`` of an ``http://host:port/path?query`` URL."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        raise ValueError(f"Expected a URL like http://127.0.0.1:8000/path, got {url!r}.")
    return parts.hostname, parts.port, (parts.path or "/") + (
        f"?{parts.query}" if parts.query else "")


def get(url: str, *, window: int = DEFAULT_WINDOW, timeout: float = 30.0) -> tuple[
        Stream, Http2Client]:
    """GET ``url`` over a new HTTP/2 connection: the stream, and the (closed) client,
    which keeps every frame of the connection in ``frames`` and ``sent``."""
    host, port, path = split_url(url)
    with Http2Client(host, port, window=window, timeout=timeout) as client:
        stream = client.get(path)
    return stream, client


def frame_table(frames: Iterable[Frame], *, since: float = 0.0,
                limit: int | None = None) -> list[dict[str, str]]:
    """One row per frame (the first ``limit``), for ``format_table``."""
    rows = []
    for frame in list(frames)[:limit]:
        rows.append({
            "ms": "" if frame.at is None else f"{(frame.at - since) * 1000:.1f}",
            "stream": str(frame.stream_id),
            "type": frame.type_name,
            "flags": " ".join(frame.flag_names),
            "length": f"{frame.length:,}",
            "what it says": frame.describe(),
        })
    return rows
