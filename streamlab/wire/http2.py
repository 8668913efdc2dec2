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
them against the ``h2`` library. A request's header block is encoded by hand
as HPACK literal fields (RFC 7541 section 6.2.2). ``http2_client`` sends
and reads them over a raw socket.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

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
