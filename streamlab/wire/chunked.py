"""The chunked transfer coding, decoded by hand, and the rules that decide when it is used.

A streamed HTTP/1.1 response does not say up front how long its body is. It
sends the body as a series of chunks instead, each one preceded by its size
in hexadecimal, and ends with a chunk of size zero (RFC 9112, section 7.1)::

    chunked-body = *chunk last-chunk trailer-section CRLF
    chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
    last-chunk   = 1*"0" [ chunk-ext ] CRLF
    chunk-ext    = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )

``decode_chunked`` follows that grammar one line at a time, so it can be read
next to the bytes a server sent. The tests check it against h11, a real HTTP
library. The second half of the module answers "how does this response's
body end?" (RFC 9112, section 6.3) for responses read with
``streamlab.wire.http1``, which is what the notebooks' framing tables are made of.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

CRLF = b"\r\n"

# RFC 9110 token characters, and a quoted-string with backslash escapes.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t\x20-\x7e\x80-\xff])*"'
_SIZE = re.compile(r"([0-9A-Fa-f]+)")
_EXTENSION = re.compile(rf"[ \t]*;[ \t]*({_TOKEN})(?:[ \t]*=[ \t]*({_TOKEN}|{_QUOTED}))?")
_FIELD_LINE = re.compile(rf"({_TOKEN}):[ \t]*(.*?)[ \t]*")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


@dataclass
class Chunk:
    """One chunk as it crossed the wire."""

    size_line: bytes  # the line before the data, without its CRLF, e.g. b"1E" or b"5;a=b"
    size: int  # the size line's hex number, in bytes
    extensions: list[tuple[str, str | None]] = field(default_factory=list)
    data: bytes = b""


@dataclass
class ChunkedBody:
    """A decoded chunked body: the data chunks, the last chunk, trailers, and what followed."""

    chunks: list[Chunk]  # the chunks that carry data, in order
    last_chunk: Chunk  # the zero-size chunk that ends the body
    trailers: list[tuple[str, str]]  # header fields sent after the body, as (name, value)
    trailer_lines: list[bytes]  # the same fields as sent, without their CRLFs
    framed_length: int  # how many bytes the chunked body took on the wire
    rest: bytes  # bytes after the body's final CRLF (e.g. the next response on the connection)

    @property
    def data(self) -> bytes:
        """The body with the framing removed: what an HTTP client hands to its user."""
        return b"".join(chunk.data for chunk in self.chunks)


def decode_chunked(data: bytes) -> ChunkedBody:
    """Decode a chunked body, following RFC 9112's grammar one line at a time.

    ``data`` starts right after the blank line that ends the response headers.
    Raises ``ValueError`` saying where and why when the bytes are not a
    complete, well-formed chunked body.
    """
    pos = 0
    chunks: list[Chunk] = []
    while True:
        line, pos = _read_line(data, pos, f"the size line of chunk {len(chunks) + 1}")
        size, extensions = parse_size_line(line)
        if size == 0:  # the last chunk: no data follows, only trailers and a blank line
            last_chunk = Chunk(line, 0, extensions)
            break
        if pos + size > len(data):
            raise ValueError(
                f"Chunk {len(chunks) + 1} announces {size} bytes but only "
                f"{len(data) - pos} follow: the body was cut short (a closed connection?)."
            )
        chunk_data = data[pos : pos + size]
        pos += size
        if data[pos : pos + 2] != CRLF:
            raise ValueError(
                f"Chunk {len(chunks) + 1} ({size} bytes) is followed by "
                f"{data[pos : pos + 2]!r} instead of CRLF: its size line does not match its data."
            )
        pos += 2
        chunks.append(Chunk(line, size, extensions, chunk_data))

    trailers: list[tuple[str, str]] = []
    trailer_lines: list[bytes] = []
    while True:
        line, pos = _read_line(data, pos, "the trailer section")
        if line == b"":  # the blank line that ends the chunked body
            return ChunkedBody(chunks, last_chunk, trailers, trailer_lines, pos, rest=data[pos:])
        trailers.append(parse_field_line(line))
        trailer_lines.append(line)


def parse_size_line(line: bytes) -> tuple[int, list[tuple[str, str | None]]]:
    """Split a chunk's size line into its size and its extensions.

    >>> parse_size_line(b'1e;name=value;flag')
    (30, [('name', 'value'), ('flag', None)])
    """
    text = line.decode("latin-1")
    size_match = _SIZE.match(text)
    if size_match is None:
        raise ValueError(
            f"Chunk size line {line!r} does not start with a hexadecimal size "
            "(expected something like b'1E' or b'5;name=value')."
        )
    extensions: list[tuple[str, str | None]] = []
    pos = size_match.end()
    while (ext := _EXTENSION.match(text, pos)) is not None:
        extensions.append((ext[1], _unquote(ext[2])))
        pos = ext.end()
    if text[pos:].strip(" \t"):
        raise ValueError(
            f"Chunk size line {line!r} has {text[pos:]!r} after the size: "
            "only ';name' or ';name=value' extensions may follow it."
        )
    return int(size_match[1], 16), extensions


def parse_field_line(line: bytes) -> tuple[str, str]:
    """Split a trailer field line ``Name: value`` into its name and value."""
    text = line.decode("latin-1")
    match = _FIELD_LINE.fullmatch(text)
    if match is None or _FIELD_VALUE.fullmatch(match[2]) is None:
        raise ValueError(
            f"Trailer line {line!r} is not a header field: expected 'Name: value' "
            "after the last chunk, then a blank line."
        )
    return match[1], match[2]


def _read_line(data: bytes, pos: int, what: str) -> tuple[bytes, int]:
    """The line that starts at ``pos`` (without its CRLF), and where the next one starts."""
    end = data.find(CRLF, pos)
    if end == -1:
        raise ValueError(
            f"The body stops in {what}: a chunked body ends with a zero-size chunk and a blank "
            "line, and these bytes stop before that (cut short, or not chunked at all)."
        )
    line = data[pos:end]
    if b"\r" in line or b"\n" in line:
        raise ValueError(
            f"{what.capitalize()} ({line!r}) contains a bare CR or LF; framing lines end in CRLF."
        )
    return line, end + 2


def _unquote(value: str | None) -> str | None:
    if value is None or not value.startswith('"'):
        return value
    return re.sub(r"\\(.)", r"\1", value[1:-1])


def explain_framing(body: ChunkedBody) -> list[dict[str, str]]:
    """One row per line of framing: the bytes as sent and what they mean, for printing."""
    rows = []
    for number, chunk in enumerate(body.chunks, start=1):
        rows.append({
            "bytes on the wire": _show(chunk.size_line + CRLF),
            "meaning": f"chunk {number}: size 0x{_hex_digits(chunk)} = {chunk.size} bytes follow"
            + _show_extensions(chunk.extensions),
        })
        rows.append({
            "bytes on the wire": _show(chunk.data + CRLF),
            "meaning": f"chunk {number}: {chunk.size} bytes of data, then CRLF",
        })
    rows.append({
        "bytes on the wire": _show(body.last_chunk.size_line + CRLF),
        "meaning": "last chunk: size 0, the body is complete"
        + _show_extensions(body.last_chunk.extensions),
    })
    for line, (name, _) in zip(body.trailer_lines, body.trailers, strict=True):
        rows.append({"bytes on the wire": _show(line + CRLF), "meaning": f"trailer field {name}"})
    rows.append({"bytes on the wire": _show(CRLF), "meaning": "blank line: end of the message"})
    return rows


def _hex_digits(chunk: Chunk) -> str:
    return chunk.size_line.decode("latin-1").split(";")[0].strip(" \t")


def _show(data: bytes, limit: int = 48) -> str:
    text = repr(data)
    return text if len(text) <= limit else text[: limit - 5] + "...'"


def _show_extensions(extensions: list[tuple[str, str | None]]) -> str:
    if not extensions:
        return ""
    return ", extensions " + ", ".join(f"{n}={v!r}" if v is not None else n for n, v in extensions)
