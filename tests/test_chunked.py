"""The hand-written chunked decoder, checked against h11 (a real HTTP library).

Hypothesis builds many chunked bodies: random bytes cut into chunks of random
sizes, sizes in upper or lower case hex (sometimes zero-padded), chunk
extensions with token and quoted-string values, trailers, and bytes that
follow the body on the connection. Both decoders read the same bytes and must
agree. Malformed bodies must raise ValueError, with a message that says what
is wrong; where h11 is strict about the same input, it must reject it too.
"""

from __future__ import annotations

import string

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlab.tables import format_table
from streamlab.wire.chunked import decode_chunked, explain_framing, parse_size_line
from streamlab.wire.framing import split_responses

RESPONSE_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
TCHARS = "!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits


def h11_decode(body: bytes) -> tuple[list[bytes], list[tuple[bytes, bytes]], bytes]:
    """Chunks, trailers (names lower-cased) and leftover bytes, as h11 reads ``body``."""
    conn = h11.Connection(our_role=h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "example")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(RESPONSE_HEAD + body)
    chunks: list[bytes] = []
    current = b""
    closed = False
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            assert not closed, "h11 wants more data after the connection closed"
            conn.receive_data(b"")  # the connection closes: h11 must decide now
            closed = True
        elif isinstance(event, h11.Data):
            current += bytes(event.data)
            if event.chunk_end:
                chunks.append(current)
                current = b""
        elif isinstance(event, h11.EndOfMessage):
            return chunks, [(bytes(n), bytes(v)) for n, v in event.headers], conn.trailing_data[0]
        else:
            assert isinstance(event, h11.Response), event


# -- Strategies --------------------------------------------------------------------------

tokens = st.text(alphabet=TCHARS, min_size=1, max_size=8)
# Printable ASCII, quoted with backslash escapes; the decoder must hand back the original.
quotable = st.text(alphabet=[chr(c) for c in range(0x20, 0x7F)], max_size=10)
whitespace = st.sampled_from(["", " ", "\t", " \t "])


@st.composite
def extensions(draw) -> tuple[str, list[tuple[str, str | None]]]:
    """The text of a chunk's extensions, and the (name, value) pairs it must decode to."""
    text, expected = "", []
    for index in range(draw(st.integers(0, 3))):
        name = draw(tokens)
        kind = draw(st.sampled_from(["bare", "token", "quoted"]))
        # h11 wants the first ';' right after the size; RFC 9112 also allows whitespace there.
        before = "" if index == 0 else draw(whitespace)
        text += f"{before};{draw(whitespace)}{name}"
        if kind == "bare":
            expected.append((name, None))
            continue
        value = draw(tokens if kind == "token" else quotable)
        shown = value if kind == "token" else '"' + value.replace("\\", "\\\\").replace(
            '"', '\\"') + '"'
        text += f"{draw(whitespace)}={draw(whitespace)}{shown}"
        expected.append((name, value))
    return text, expected


@st.composite
def size_lines(draw, size: int) -> tuple[bytes, list[tuple[str, str | None]]]:
    digits = draw(st.sampled_from(["{:X}", "{:x}"])).format(size)
    digits = "0" * draw(st.integers(0, 2)) + digits
    ext_text, expected = draw(extensions())
    return (digits + ext_text).encode("latin-1"), expected


field_values = st.from_regex(r"([!-~]([ !-~]*[!-~])?)?", fullmatch=True)
# h11 validates these two names in trailers as if they were framing headers; leave them out.
trailer_names = tokens.filter(lambda n: n.lower() not in ("content-length", "transfer-encoding"))


@st.composite
def chunked_messages(draw) -> dict:
    """A body cut into random-sized chunks, encoded as chunked, and what it must decode to."""
    body = draw(st.binary(max_size=1500))
    pieces, pos = [], 0
    while pos < len(body):
        size = draw(st.integers(1, len(body) - pos))
        pieces.append(body[pos : pos + size])
        pos += size
    wire = bytearray()
    chunk_extensions = []
    for piece in pieces:
        line, expected = draw(size_lines(len(piece)))
        wire += line + b"\r\n" + piece + b"\r\n"
        chunk_extensions.append(expected)
    last_line, last_extensions = draw(size_lines(0))
    wire += last_line + b"\r\n"
    trailers = draw(st.lists(st.tuples(trailer_names, field_values), max_size=3))
    for name, value in trailers:
        wire += f"{name}:{draw(whitespace)}{value}{draw(whitespace)}\r\n".encode("latin-1")
    wire += b"\r\n"
    rest = draw(st.sampled_from([b"", b"HTTP/1.1 200 OK\r\n", b"\r\n\r\nleftover"]))
    return {
        "wire": bytes(wire) + rest, "body": body, "pieces": pieces, "rest": rest,
        "framed_length": len(wire), "extensions": chunk_extensions,
        "last_extensions": last_extensions, "trailers": trailers,
    }


# -- Agreement with h11 ------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(chunked_messages())
def test_decoder_agrees_with_h11(message: dict) -> None:
    ours = decode_chunked(message["wire"])
    h11_chunks, h11_trailers, h11_rest = h11_decode(message["wire"])

    assert [chunk.data for chunk in ours.chunks] == h11_chunks == message["pieces"]
    assert ours.data == message["body"]
    assert [(n.lower().encode(), v.encode()) for n, v in ours.trailers] == h11_trailers
    assert ours.trailers == message["trailers"]
    assert ours.rest == h11_rest == message["rest"]
    assert ours.framed_length == message["framed_length"]
    # h11 discards chunk extensions; ours must give back exactly what was encoded.
    assert [chunk.extensions for chunk in ours.chunks] == message["extensions"]
    assert ours.last_chunk.extensions == message["last_extensions"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=300), max_size=20))
def test_gunicorn_style_framing_round_trips(pieces: list[bytes]) -> None:
    """Framed the way Gunicorn writes it (``%X`` sizes, no extensions), both decoders agree."""
    wire = b"".join(b"%X\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    assert [c.data for c in decode_chunked(wire).chunks] == h11_decode(wire)[0] == pieces


# -- Malformed input ---------------------------------------------------------------------

MALFORMED = [
    # (bytes, fragment of our message, does h11 reject it too?)
    pytest.param(b"", "stops in the size line of chunk 1", True, id="empty"),
    pytest.param(b"5\r\nHel", "announces 5 bytes but only 3 follow", True, id="truncated-data"),
    pytest.param(b"5\r\nHello\r\n", "stops in the size line of chunk 2", True, id="no-last-chunk"),
    pytest.param(b"5\r\nHello\r\n0\r\n", "stops in the trailer section", True, id="no-blank-line"),
    pytest.param(b"5\r\nHelloXX0\r\n\r\n", "instead of CRLF", True, id="size-too-small"),
    pytest.param(b"6\r\nHello\r\n0\r\n\r\n", "instead of CRLF", True, id="size-too-big"),
    pytest.param(b"5\r\nHello\n0\r\n\r\n", "instead of CRLF", True, id="lf-after-data"),
    pytest.param(b"zz\r\nHello\r\n0\r\n\r\n", "does not start with a hexadecimal", True,
                 id="not-hex"),
    pytest.param(b"-5\r\nHello\r\n0\r\n\r\n", "does not start with a hexadecimal", True,
                 id="negative"),
    pytest.param(b" 5\r\nHello\r\n0\r\n\r\n", "does not start with a hexadecimal", True,
                 id="leading-space"),
    pytest.param(b"0x5\r\nHello\r\n0\r\n\r\n", "has 'x5' after the size", True, id="0x-prefix"),
    pytest.param(b"1_0\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n", "has '_0' after the size", True,
                 id="underscore"),  # Python's int('1_0', 16) would accept it
    pytest.param(b"5\nHello\r\n0\r\n\r\n", "bare CR or LF", True, id="bare-lf-size-line"),
    pytest.param(b"5\r\nHello\r\n0\r\nBad line\r\n\r\n", "is not a header field", True,
                 id="trailer-no-colon"),
    pytest.param(b"5\r\nHello\r\n0\r\nX y: z\r\n\r\n", "is not a header field", True,
                 id="trailer-space-in-name"),
    pytest.param(b"5\r\nHello\r\n0\r\n folded: x\r\n\r\n", "is not a header field", True,
                 id="trailer-obs-fold"),
    # h11 skips everything after ';' unread, so only ours notices these.
    pytest.param(b"5;=x\r\nHello\r\n0\r\n\r\n", "has ';=x' after the size", False,
                 id="extension-without-name"),
    pytest.param(b'5;a="open\r\nHello\r\n0\r\n\r\n', "after the size", False,
                 id="unterminated-quote"),
    pytest.param(b"5;a b\r\nHello\r\n0\r\n\r\n", "after the size", False,
                 id="space-in-extension"),
]


@pytest.mark.parametrize(("wire", "message", "h11_rejects"), MALFORMED)
def test_malformed_bodies_raise_a_clear_value_error(
    wire: bytes, message: str, h11_rejects: bool
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        decode_chunked(wire)
    if h11_rejects:
        with pytest.raises(h11.RemoteProtocolError):
            h11_decode(wire)


# -- Details the notebook relies on ------------------------------------------------------


def test_extensions_and_trailers_are_decoded() -> None:
    wire = b'5;name=value\r\nHello\r\n1E;q="a \\"b\\""\r\n' + b"x" * 30 + (
        b"\r\n0;end\r\nExpires: never\r\nX-Checksum:  42 \r\n\r\n"
    )
    body = decode_chunked(wire)
    assert body.data == b"Hello" + b"x" * 30
    assert [c.size for c in body.chunks] == [5, 30]
    assert body.chunks[0].extensions == [("name", "value")]
    assert body.chunks[1].extensions == [("q", 'a "b"')]
    assert body.last_chunk.extensions == [("end", None)]
    assert body.trailers == [("Expires", "never"), ("X-Checksum", "42")]
    assert body.framed_length == len(wire) and body.rest == b""


def test_whitespace_before_an_extension_is_allowed() -> None:
    """RFC 9112 allows BWS before ';' (h11 0.16 does not, which is why the fuzzing avoids it)."""
    assert decode_chunked(b"5 ;a = b\r\nHello\r\n0\r\n\r\n").chunks[0].extensions == [("a", "b")]
    assert parse_size_line(b"1e;x;y=\"z\"") == (30, [("x", None), ("y", "z")])


def test_explain_framing_names_every_line() -> None:
    rows = explain_framing(decode_chunked(b"6\r\nHello,\r\n0\r\nX: y\r\n\r\n"))
    assert [r["bytes on the wire"] for r in rows] == [
        r"b'6\r\n'", r"b'Hello,\r\n'", r"b'0\r\n'", r"b'X: y\r\n'", r"b'\r\n'"
    ]
    assert "6 bytes follow" in rows[0]["meaning"] and "last chunk" in rows[2]["meaning"]
    table = format_table(rows)
    assert table.splitlines()[0].split() == ["bytes", "on", "the", "wire", "meaning"]
    assert len(table.splitlines()) == 2 + len(rows)


def test_split_responses_uses_each_responses_framing() -> None:
    first = RESPONSE_HEAD + b"3\r\nabc\r\n0\r\n\r\n"
    second = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    third = b"HTTP/1.1 204 No Content\r\n\r\n"
    fourth = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"
    responses = split_responses(first + second + third + fourth)
    assert [r.data for r in responses] == [first, second, third, fourth]
    with pytest.raises(ValueError, match="incomplete head"):
        split_responses(first + b"HTTP/1.1 200 OK\r\n")
