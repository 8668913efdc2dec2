"""The ``text/event-stream`` format read by hand, as the WHATWG HTML standard says a
browser reads it ("Server-sent events", section "Event stream interpretation").

A stream is UTF-8 text (one leading byte order mark is dropped), cut into lines
by CRLF, LF or CR. Each line is one of four things:

* empty: *dispatch* the event gathered so far (if it has any data);
* ``:comment``: ignored (servers send them as heartbeats);
* ``field:value`` (one space after the colon is dropped), or a bare ``field``
  with an empty value: ``data`` appends the value and a LF to the data buffer,
  ``event`` sets the event's type, ``id`` sets the last event id (unless the
  value holds a NUL), ``retry`` sets the reconnection time in ms (only if the
  value is ASCII digits); any other field is ignored.

Dispatching sets the stream's last event id, then, if the data buffer is empty,
just resets it; otherwise it drops the data's final LF and hands over an event
(type ``message`` if none was given). Bytes after the last empty line at the
end of the stream are an incomplete event, never dispatched.

``EventStreamParser`` takes the bytes in pieces as they arrive (a CRLF or a
UTF-8 character may be split between two pieces); ``parse_event_stream`` takes
them whole. The tests check both against httpx-sse on generated streams, and
against the standard's own examples.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

BOM = "\ufeff"
LINE_END = re.compile(r"\r\n|\r|\n")  # CRLF first: one line end, not two


@dataclass(frozen=True)
class Event:
    """One dispatched event, as a browser's ``EventSource`` hands it to the page."""

    data: str
    type: str = "message"
    last_event_id: str = ""


@dataclass
class ParsedStream:
    """What a whole stream gave: the events, and the state it left behind."""

    events: list[Event]
    retry_ms: int | None  # the reconnection time the stream set, if it set one
    last_event_id: str  # what a reconnecting browser sends as Last-Event-ID
    comments: list[str] = field(default_factory=list)  # e.g. heartbeats, text after ':'


class EventStreamParser:
    """Feed it bytes as they arrive; it returns the events each piece completes."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False  # a BOM is dropped only at the very start
        self._line = ""  # the current line, so far
        self._after_cr = False  # the last character was CR: a LF next is not a new line
        self._data: list[str] = []
        self._type = ""
        self._id_buffer = ""
        self.last_event_id = ""
        self.retry_ms: int | None = None
        self.comments: list[str] = []

    def feed(self, data: bytes) -> list[Event]:
        """Take the next bytes; return the events completed by them."""
        return self._text(self._decoder.decode(data))

    def close(self) -> list[Event]:
        """The stream has ended: an unfinished line or event is discarded, never dispatched."""
        events = self._text(self._decoder.decode(b"", final=True))
        self._line, self._data, self._type = "", [], ""
        return events

    def _text(self, text: str) -> list[Event]:
        if not self._started and text:
            self._started = True
            text = text.removeprefix(BOM)
        if self._after_cr and text:
            self._after_cr = False
            text = text.removeprefix("\n")  # the LF of a CRLF: the line already ended
        events = []
        pos = 0
        for end in LINE_END.finditer(text):  # line by line, not character by character
            line, self._line = self._line + text[pos:end.start()], ""
            event = self.line(line)
            if event is not None:
                events.append(event)
            pos = end.end()
        self._line += text[pos:]
        if pos and pos == len(text) and text.endswith("\r"):  # a LF may start the next piece
            self._after_cr = True
        return events

    def line(self, line: str) -> Event | None:
        """Interpret one line (without its line end); return the event it dispatches, if any."""
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            self.comments.append(line[1:])
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id" and "\0" not in value:
            self._id_buffer = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        return None  # any other field is ignored

    def _dispatch(self) -> Event | None:
        self.last_event_id = self._id_buffer
        data, event_type = self._data, self._type
        self._data, self._type = [], ""
        if not data:  # no data line since the last event: nothing to hand over
            return None
        return Event("\n".join(data), event_type or "message", self.last_event_id)


def parse_event_stream(data: bytes | Iterable[bytes]) -> ParsedStream:
    """Parse a whole stream, given as bytes or as the pieces they arrived in."""
    parser = EventStreamParser()
    pieces = [data] if isinstance(data, bytes | bytearray) else data
    events = [event for piece in pieces for event in parser.feed(bytes(piece))]
    events += parser.close()
    return ParsedStream(events, parser.retry_ms, parser.last_event_id, parser.comments)
