"""HTTP/2 over a plain socket, read frame by frame.

HTTP/1.1 ends a body of unknown length with chunked framing. HTTP/2 has no
chunked coding: ``Transfer-Encoding`` is a connection-specific field that an
HTTP/2 message must not carry (RFC 9113, section 8.2.2). Instead every
message travels on a *stream* as a series of *frames*, and the last frame of
the body carries the END_STREAM flag. Every frame starts with the same nine
bytes (RFC 9113, section 4.1)::

    +-----------------------------------------------+
    |                 Length (24)                   |
    +---------------+---------------+---------------+
    |   Type (8)    |   Flags (8)   |
    +-+-------------+---------------+-------------------------------+
    |R|                 Stream Identifier (31)                      |
    +=+=============================================================+
    |                   Frame Payload (Length bytes)              ...

``parse_header`` and ``decode_frames`` read those by hand; the tests check
them against the ``h2`` library. ``Http2Client`` is a small client over a
raw socket for the notebooks: it sends the connection preface and a SETTINGS
frame, one HEADERS frame per request (encoded by hand as HPACK literal fields,
RFC 7541 section 6.2.2), acknowledges the server's SETTINGS and PINGs, and
keeps every frame it reads with its arrival time. Response header blocks are
HPACK-compressed with a table shared by the whole connection, so they are
decoded with ``hpack`` (the library ``h2`` uses).

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

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
"""What a client sends first on an HTTP/2 connection (RFC 9113, section 3.4)."""

FRAME_HEADER_SIZE = 9
DEFAULT_MAX_FRAME_SIZE = 16_384  # the largest payload a peer must accept (section 6.5.2)
DEFAULT_WINDOW = 65_535  # every flow-control window's starting size (section 6.9.2)
MAX_WINDOW = 2**31 - 1

FRAME_TYPES = {
    0x0: "DATA", 0x1: "HEADERS", 0x2: "PRIORITY", 0x3: "RST_STREAM", 0x4: "SETTINGS",
    0x5: "PUSH_PROMISE", 0x6: "PING", 0x7: "GOAWAY", 0x8: "WINDOW_UPDATE", 0x9: "CONTINUATION",
}
TYPE_CODES = {name: code for code, name in FRAME_TYPES.items()}

# The flags each frame type defines (RFC 9113, section 6); other bits mean nothing.
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
FLAGS = {
    "DATA": {END_STREAM: "END_STREAM", PADDED: "PADDED"},
    "HEADERS": {END_STREAM: "END_STREAM", END_HEADERS: "END_HEADERS", PADDED: "PADDED",
                PRIORITY: "PRIORITY"},
    "SETTINGS": {ACK: "ACK"},
    "PING": {ACK: "ACK"},
    "PUSH_PROMISE": {END_HEADERS: "END_HEADERS", PADDED: "PADDED"},
    "CONTINUATION": {END_HEADERS: "END_HEADERS"},
}

SETTINGS = {
    0x1: "HEADER_TABLE_SIZE", 0x2: "ENABLE_PUSH", 0x3: "MAX_CONCURRENT_STREAMS",
    0x4: "INITIAL_WINDOW_SIZE", 0x5: "MAX_FRAME_SIZE", 0x6: "MAX_HEADER_LIST_SIZE",
    0x8: "ENABLE_CONNECT_PROTOCOL", 0x9: "NO_RFC7540_PRIORITIES",
}
SETTING_CODES = {name: code for code, name in SETTINGS.items()}

ERROR_CODES = {
    0x0: "NO_ERROR", 0x1: "PROTOCOL_ERROR", 0x2: "INTERNAL_ERROR", 0x3: "FLOW_CONTROL_ERROR",
    0x4: "SETTINGS_TIMEOUT", 0x5: "STREAM_CLOSED", 0x6: "FRAME_SIZE_ERROR",
    0x7: "REFUSED_STREAM", 0x8: "CANCEL", 0x9: "COMPRESSION_ERROR", 0xA: "CONNECT_ERROR",
    0xB: "ENHANCE_YOUR_CALM", 0xC: "INADEQUATE_SECURITY", 0xD: "HTTP_1_1_REQUIRED",
}
ERROR_NUMBERS = {name: code for code, name in ERROR_CODES.items()}


# -- Frames ---------------------------------------------------------------------------------


def parse_header(header: bytes) -> tuple[int, int, int, int, int]:
    """``(length, type, flags, reserved bit, stream id)`` from a frame's first nine bytes.

    >>> parse_header(bytes.fromhex("000004 08 00 00000000"))
    (4, 8, 0, 0, 0)
    """
    if len(header) < FRAME_HEADER_SIZE:
        raise ValueError(f"A frame header is {FRAME_HEADER_SIZE} bytes; got {len(header)}.")
    length = int.from_bytes(header[0:3], "big")  # 24 bits
    frame_type, flags = header[3], header[4]  # 8 bits each
    word = int.from_bytes(header[5:9], "big")
    return length, frame_type, flags, word >> 31, word & 0x7FFF_FFFF  # 1 bit + 31 bits


@dataclass(frozen=True)
class Frame:
    """One frame as it crossed the wire, and when it arrived (seconds since the client began
    to connect; None for frames built or decoded outside a connection)."""

    type: int
    flags: int
    stream_id: int
    payload: bytes = field(repr=False)
    reserved: int = 0
    at: float | None = None

    @property
    def length(self) -> int:
        return len(self.payload)

    @property
    def type_name(self) -> str:
        return FRAME_TYPES.get(self.type, f"UNKNOWN(0x{self.type:x})")

    @property
    def flag_names(self) -> list[str]:
        """The names of the flags set that this frame type defines."""
        defined = FLAGS.get(self.type_name, {})
        return [name for bit, name in defined.items() if self.flags & bit]

    @property
    def end_stream(self) -> bool:
        return self.type_name in ("DATA", "HEADERS") and bool(self.flags & END_STREAM)

    @property
    def wire_size(self) -> int:
        """Bytes on the wire: the nine-byte header plus the payload."""
        return FRAME_HEADER_SIZE + len(self.payload)

    def to_bytes(self) -> bytes:
        return encode_frame(self.type, self.flags, self.stream_id, self.payload, self.reserved)

    # -- payloads, by type (RFC 9113, section 6) ----------------------------------------
    def _unpadded(self) -> bytes:
        if not self.flags & PADDED or self.type_name not in ("DATA", "HEADERS", "PUSH_PROMISE"):
            return self.payload
        pad = self.payload[0]
        if pad >= len(self.payload):
            raise ValueError(f"{self.type_name} frame: padding {pad} is not shorter than its "
                             f"payload ({len(self.payload)} bytes), a PROTOCOL_ERROR.")
        return self.payload[1 : len(self.payload) - pad]

    @property
    def data(self) -> bytes:
        """A DATA frame's data, without its padding."""
        self._expect("DATA")
        return self._unpadded()

    @property
    def header_block(self) -> bytes:
        """A HEADERS or CONTINUATION frame's piece of the HPACK header block."""
        self._expect("HEADERS", "CONTINUATION")
        block = self._unpadded()
        return block[5:] if self.type_name == "HEADERS" and self.flags & PRIORITY else block

    @property
    def settings(self) -> list[tuple[str, int]]:
        """A SETTINGS frame's (name, value) pairs, six bytes each."""
        self._expect("SETTINGS")
        if len(self.payload) % 6:
            raise ValueError(f"A SETTINGS payload is a multiple of 6 bytes; got "
                             f"{len(self.payload)}, a FRAME_SIZE_ERROR.")
        pairs = (self.payload[i : i + 6] for i in range(0, len(self.payload), 6))
        return [(SETTINGS.get(int.from_bytes(p[:2], "big"), f"0x{int.from_bytes(p[:2], 'big'):x}"),
                 int.from_bytes(p[2:], "big")) for p in pairs]

    @property
    def window_increment(self) -> int:
        self._expect("WINDOW_UPDATE")
        return int.from_bytes(self.payload[:4], "big") & 0x7FFF_FFFF

    @property
    def error_code(self) -> int:
        """The error code of a RST_STREAM or GOAWAY frame."""
        self._expect("RST_STREAM", "GOAWAY")
        start = 4 if self.type_name == "GOAWAY" else 0
        return int.from_bytes(self.payload[start : start + 4], "big")

    @property
    def error_name(self) -> str:
        return ERROR_CODES.get(self.error_code, f"0x{self.error_code:x}")

    @property
    def last_stream_id(self) -> int:
        """GOAWAY: the highest stream the sender processed (or may still process)."""
        self._expect("GOAWAY")
        return int.from_bytes(self.payload[:4], "big") & 0x7FFF_FFFF

    def _expect(self, *types: str) -> None:
        if self.type_name not in types:
            raise ValueError(f"That is a {self.type_name} frame, not {' or '.join(types)}.")

    def describe(self) -> str:
        """What the payload says, in a few words."""
        name = self.type_name
        if name == "DATA":
            return f"{len(self.data):,} bytes of body"
        if name in ("HEADERS", "CONTINUATION"):
            return f"{len(self.header_block)} bytes of HPACK header block"
        if name == "SETTINGS":
            return "acknowledges our SETTINGS" if self.flags & ACK else (
                ", ".join(f"{k}={v:,}" for k, v in self.settings) or "(server defaults)")
        if name == "WINDOW_UPDATE":
            return f"+{self.window_increment:,} bytes of credit"
        if name == "RST_STREAM":
            return f"stream reset: {self.error_name}"
        if name == "GOAWAY":
            debug = self.payload[8:].decode("latin-1")
            return f"{self.error_name}, last stream {self.last_stream_id}" + (
                f": {debug}" if debug else "")
        if name == "PING":
            return "ping reply" if self.flags & ACK else "ping"
        return f"{len(self.payload)} bytes"


def encode_frame(
    frame_type: int | str, flags: int, stream_id: int, payload: bytes = b"", reserved: int = 0
) -> bytes:
    """The bytes of one frame: the nine-byte header, then the payload."""
    code = TYPE_CODES[frame_type] if isinstance(frame_type, str) else frame_type
    if len(payload) >= 2**24:
        raise ValueError(f"A frame payload is at most 2**24 - 1 bytes; got {len(payload)}.")
    word = (reserved & 1) << 31 | (stream_id & 0x7FFF_FFFF)
    return (len(payload).to_bytes(3, "big") + bytes([code, flags])
            + word.to_bytes(4, "big") + payload)


def decode_frames(data: bytes, *, at: float | None = None) -> tuple[list[Frame], bytes]:
    """The complete frames at the start of ``data``, and the bytes left after them
    (part of a frame still to come)."""
    frames: list[Frame] = []
    pos = 0
    while len(data) - pos >= FRAME_HEADER_SIZE:
        length, frame_type, flags, reserved, stream_id = parse_header(data[pos : pos + 9])
        end = pos + FRAME_HEADER_SIZE + length
        if end > len(data):
            break
        frames.append(Frame(frame_type, flags, stream_id, bytes(data[pos + 9 : end]),
                            reserved, at))
        pos = end
    return frames, bytes(data[pos:])


def settings_frame(settings: Mapping[str, int] | None = None, *, ack: bool = False) -> bytes:
    """A SETTINGS frame (always on stream 0); ``ack`` acknowledges the peer's."""
    payload = b"".join(SETTING_CODES[name].to_bytes(2, "big") + value.to_bytes(4, "big")
                       for name, value in (settings or {}).items())
    return encode_frame("SETTINGS", ACK if ack else 0, 0, payload)


def window_update_frame(stream_id: int, increment: int) -> bytes:
    """Credit for ``increment`` more DATA bytes on a stream (or on the connection: 0)."""
    if not 1 <= increment <= MAX_WINDOW:
        raise ValueError(f"A window increment is 1 to 2**31 - 1; got {increment}.")
    return encode_frame("WINDOW_UPDATE", 0, stream_id, increment.to_bytes(4, "big"))


def rst_stream_frame(stream_id: int, error: str = "CANCEL") -> bytes:
    return encode_frame("RST_STREAM", 0, stream_id, ERROR_NUMBERS[error].to_bytes(4, "big"))


def ping_frame(opaque: bytes = b"streamlb", *, ack: bool = False) -> bytes:
    return encode_frame("PING", ACK if ack else 0, 0, opaque[:8].ljust(8, b"\0"))


# -- HPACK, as far as a request needs it (RFC 7541) -------------------------------------------


def hpack_integer(value: int, prefix_bits: int, first_byte: int = 0) -> bytes:
    """An HPACK integer (RFC 7541, section 5.1): in the prefix if it fits, else continued
    seven bits at a time."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out, value = bytearray([first_byte | limit]), value - limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def literal_field(name: str, value: str) -> bytes:
    """One header field as an HPACK "literal field without indexing, new name"
    (RFC 7541, section 6.2.2): a 0x00 byte, then name and value as plain strings
    (no Huffman coding), each preceded by its length."""
    name_bytes, value_bytes = name.lower().encode("latin-1"), value.encode("latin-1")
    return (b"\x00" + hpack_integer(len(name_bytes), 7) + name_bytes
            + hpack_integer(len(value_bytes), 7) + value_bytes)


def request_fields(path: str, authority: str, method: str = "GET",
                   headers: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """The request's header list: the pseudo-header fields first (RFC 9113, section 8.3.1)."""
    return [(":method", method), (":scheme", "http"), (":authority", authority),
            (":path", path), *headers]


def headers_frame(stream_id: int, fields: Iterable[tuple[str, str]], *,
                  end_stream: bool = True) -> bytes:
    """A HEADERS frame with the whole header block (END_HEADERS), each field a literal."""
    block = b"".join(literal_field(name, value) for name, value in fields)
    return encode_frame("HEADERS", END_HEADERS | (END_STREAM if end_stream else 0),
                        stream_id, block)


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
