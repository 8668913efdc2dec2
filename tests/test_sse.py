"""The hand-written event-stream parser, checked against the standard's own examples and
against httpx-sse (a maintained SSE client) on streams Hypothesis generates.

httpx-sse is fed offline through its public API: an ``httpx.Response`` whose body
is an iterator of the generated pieces, read by ``httpx_sse.EventSource``. Where
httpx-sse knowingly differs from the WHATWG standard (which a browser follows),
the comparison allows for exactly that and a test below pins the difference:

* it hands over an event for every block that set anything (``event``, ``id``,
  ``retry``), even with no ``data`` line; a browser dispatches nothing for those;
* it reads ``retry`` with ``int()``, which also takes ``" 5"``, ``"+5"``, ``"1_0"``
  and non-ASCII digits; the standard takes ASCII digits only;
* it keeps a leading byte order mark; the standard's UTF-8 decode drops it.
"""

from __future__ import annotations

import httpx
import httpx_sse
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlab.wire.sse import Event, EventStreamParser, parse_event_stream

# -- The standard's examples (WHATWG HTML, "Server-sent events", 9.2.4-9.2.6) ----------------


def test_three_messages_one_of_two_lines():
    stream = (b"data: This is the first message.\n\n"
              b"data: This is the second message, it\ndata: has two lines.\n\n"
              b"data: This is the third message.\n\n")
    assert [e.data for e in parse_event_stream(stream).events] == [
        "This is the first message.",
        "This is the second message, it\nhas two lines.",
        "This is the third message.",
    ]


def test_event_types():
    stream = (b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\n"
              b"event: add\ndata: 113411\n\n")
    events = parse_event_stream(stream).events
    assert [(e.type, e.data) for e in events] == [
        ("add", "73857293"), ("remove", "2153"), ("add", "113411")]


def test_ids_comments_and_an_unfinished_last_event():
    stream = (b": test stream\n\ndata: first event\nid: 1\n\n"
              b"data:second event\nid\n\ndata:  third event\n")
    parsed = parse_event_stream(stream)
    assert parsed.events == [Event("first event", "message", "1"),
                             Event("second event", "message", "")]  # a bare `id` resets it
    assert parsed.comments == [" test stream"]


def test_empty_data_lines():
    parsed = parse_event_stream(b"data\n\ndata\ndata\n\ndata:")
    # The first block gives an empty string, the second one newline; the last is unfinished.
    assert [e.data for e in parsed.events] == ["", "\n"]


def test_one_space_after_the_colon_is_dropped():
    parsed = parse_event_stream(b"data:test\n\ndata: test\n\ndata:  test\n\n")
    assert [e.data for e in parsed.events] == ["test", "test", " test"]


# -- The details the examples do not show ---------------------------------------------------


@pytest.mark.parametrize("end", [b"\n", b"\r", b"\r\n"])
def test_every_line_end(end):
    stream = end.join([b"id: 7", b"event: x", b"data: a", b"data: b", b"", b""])
    assert parse_event_stream(stream).events == [Event("a\nb", "x", "7")]


def test_line_ends_mixed_in_one_stream():
    assert [e.data for e in parse_event_stream(b"data: a\r\n\ndata: b\n\r\rdata: c\r\r").events] \
        == ["a", "b", "c"]  # "\n\r": two line ends, so one empty line; "\r\r" likewise


def test_a_crlf_split_between_two_pieces_is_one_line_end():
    parser = EventStreamParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\ndata: b\r") == []  # the LF finishes the CRLF: no empty line
    assert parser.feed(b"\n\r\n") == [Event("a\nb")]


def test_a_character_split_between_two_pieces():
    parser = EventStreamParser()
    dash = "\u2014".encode()
    assert parser.feed(b"data: " + dash[:1]) == []
    assert parser.feed(dash[1:] + b"\n\n") == [Event("\u2014")]


def test_only_cr_and_lf_end_lines():
    # Other Unicode line breaks (NEL, LS, FF, VT...) are ordinary characters here.
    text = "a\x85b\u2028c\x0cd\x0be\x1cf"
    assert parse_event_stream(f"data: {text}\n\n".encode()).events == [Event(text)]


def test_one_leading_bom_is_dropped():
    bom = "\ufeff".encode()
    assert parse_event_stream(bom + b"data: a\n\n").events == [Event("a")]
    # A second one is part of the first field's name, which is then unknown.
    assert parse_event_stream(bom + bom + b"data: a\n\n").events == []
    # Only at the start of the stream, even when it arrives alone.
    assert parse_event_stream([bom[:2], bom[2:] + b"data: a\n\n"]).events == [Event("a")]


def test_an_id_with_nul_is_ignored():
    parsed = parse_event_stream(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n")
    assert [e.last_event_id for e in parsed.events] == ["1", "1"]


def test_the_last_event_id_is_set_even_by_a_block_without_data():
    parsed = parse_event_stream(b"id: 5\n\n")
    assert parsed.events == [] and parsed.last_event_id == "5"


@pytest.mark.parametrize("value, expected", [
    ("3000", 3000), ("0", 0), ("", None), ("3s", None), (" 5", None), ("+5", None),
    ("1_000", None), ("-1", None), ("\u0665", None),
])
def test_retry_takes_ascii_digits_only(value, expected):
    # "retry:" then one space, which is dropped: the value is what follows.
    assert parse_event_stream(f"retry: {value}\n\n".encode()).retry_ms == expected


def test_unknown_fields_and_comments_are_ignored():
    parsed = parse_event_stream(b": hi\nfoo: bar\nData: x\ndata : y\ndata: z\n\n:\n\n")
    assert parsed.events == [Event("z")] and parsed.comments == [" hi", ""]


def test_invalid_utf8_becomes_replacement_characters():
    assert parse_event_stream(b"data: a\xffb\n\n").events == [Event("a\ufffdb")]


# -- Against httpx-sse, on generated streams --------------------------------------------------

FIELDS = ["data"] * 4 + ["event", "id", "id", "retry", "dat", "Data", "foo", "", " data", "id\x00"]
VALUE_CHARS = st.sampled_from(list("ab :\x00\ufeff\x85\u2028\u2014 \t0123456789") + ["\u00e9"])
values = st.text(alphabet=VALUE_CHARS, max_size=8)
# Values on which int() and the standard agree: ASCII digits, or text that int() refuses.
retry_values = st.from_regex(r"[0-9]{0,6}|[0-9]*[a-z:][0-9a-z:]*", fullmatch=True)
line_ends = st.sampled_from(["\n", "\r", "\r\n"])


@st.composite
def lines(draw) -> str:
    kind = draw(st.sampled_from(["field"] * 4 + ["bare", "comment", "blank", "blank"]))
    if kind == "blank":
        return ""
    if kind == "comment":
        return ":" + draw(values)
    name = draw(st.sampled_from(FIELDS))
    if kind == "bare":
        return name
    if name == "retry":  # never two spaces: a value " 5" is where int() and the standard differ
        return name + draw(st.sampled_from([":", ": "])) + draw(retry_values)
    return name + draw(st.sampled_from([":", ": ", ":  "])) + draw(values)


@st.composite
def streams(draw) -> tuple[bytes, list[bytes]]:
    """``(whole, pieces)``: a stream, perhaps with an unfinished last line, and the same
    stream cut into the pieces it arrives in (inside a CRLF or a UTF-8 character too)."""
    text = "".join(line + draw(line_ends) for line in draw(st.lists(lines(), max_size=25)))
    tail = draw(st.sampled_from(["", "", "data: unfinished", "retry: 7"]))
    whole = text.encode() + tail.encode()
    if draw(st.booleans()):
        whole = whole.replace(b"b", b"\xff", 1)  # an invalid byte
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(whole) - 1)), max_size=8)))
    pieces = [whole[i:j] for i, j in zip([0, *cuts], [*cuts, len(whole)], strict=True)]
    return whole, [p for p in pieces if p]


def httpx_sse_events(pieces: list[bytes]) -> list[httpx_sse.ServerSentEvent]:
    """What httpx-sse reads from a response whose body arrives in ``pieces``."""
    response = httpx.Response(200, headers={"Content-Type": "text/event-stream"},
                              content=iter(pieces))
    return list(httpx_sse.EventSource(response).iter_sse())


def same_events_but_for_empty_ones(ours: list[Event], theirs: list) -> bool:
    """True when ``ours`` is ``theirs`` with only events of empty data left out (httpx-sse
    hands over blocks without a data line, as events with empty data; a browser does not)."""
    remaining = list(ours)
    for event in theirs:
        if remaining and (remaining[0].type, remaining[0].data, remaining[0].last_event_id) == (
                event.event, event.data, event.id):
            remaining.pop(0)
        elif event.data != "":
            return False
    return remaining == []


@settings(max_examples=400, deadline=None)
@given(streams())
def test_agrees_with_httpx_sse(stream):
    whole, pieces = stream
    ours = parse_event_stream(pieces)
    assert ours.events == parse_event_stream(whole).events  # however the bytes were cut
    theirs = httpx_sse_events(pieces)
    assert same_events_but_for_empty_ones(ours.events, theirs), (ours.events, theirs)
    # Every event with data that httpx-sse reads, we read too.
    assert len(ours.events) >= sum(1 for e in theirs if e.data)
    # The reconnection time as of the last empty line: httpx-sse reports a retry with the
    # event of its block, so a block that no empty line ends is never reported.
    reported = [e.retry for e in theirs if e.retry is not None]
    assert retry_at_last_empty_line(pieces) == (reported[-1] if reported else None)


def retry_at_last_empty_line(pieces: list[bytes]) -> int | None:
    retry_seen = []

    class Watched(EventStreamParser):
        def line(self, line: str) -> Event | None:
            event = super().line(line)
            if line == "":
                retry_seen.append(self.retry_ms)
            return event

    parser = Watched()
    for piece in pieces:
        parser.feed(piece)
    parser.close()
    return retry_seen[-1] if retry_seen else None


def test_httpx_sse_differs_where_the_module_says():
    blocks = b"event: x\n\nretry: 5\n\ndata: a\n\n"
    theirs = httpx_sse_events([blocks])
    assert [(e.event, e.data, e.retry) for e in theirs] == [
        ("x", "", None), ("message", "", 5), ("message", "a", None)]
    assert parse_event_stream(blocks).events == [Event("a")]  # a browser dispatches one
    assert httpx_sse_events([b"retry: +5\n\n"])[0].retry == 5  # int() takes "+5"
    assert parse_event_stream(b"retry: +5\n\n").retry_ms is None
    bom = "\ufeff".encode()
    assert httpx_sse_events([bom + b"data: a\n\n"]) == []  # "\ufeffdata" is an unknown field
    assert parse_event_stream(bom + b"data: a\n\n").events == [Event("a")]
