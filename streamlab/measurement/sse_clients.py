"""What the clients of a token stream see, and what a client that leaves costs the server.

* ``TokenTimeline``: when each piece of a chat answer reached one client, as
  ``(seconds since the request was sent, characters of the answer so far)``;
  made by ``requests_tokens`` (``requests`` and ``iter_lines``),
  ``httpx_tokens`` (where httpx is installed: it is not a dependency) and
  ``page_timeline`` (from the marks the demo's ``/chat`` page records in a
  browser, see ``browser``). Every client parses the event stream with the
  same hand-written parser (``streamlab.wire.sse``), fed one line at a time.
* ``leave_after_tokens``: a client that reads ``k`` tokens of a tagged stream,
  then closes its connection; the generator's own record (``StreamEvents``)
  says how many tokens it produced in all and when its ``finally`` ran.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import requests

from ..servers.gunicorn import DemoServer
from ..wire.sse import EventStreamParser
from .workers import StreamEvents


@dataclass(frozen=True)
class TokenTimeline:
    """One client's view of a token stream."""

    client: str
    arrivals: tuple[tuple[float, int], ...]  # (s since the request was sent, chars so far)
    total_s: float  # until the stream had ended
    text: str
    reads: int | None = None  # network reads that returned bytes (None: not counted)

    @property
    def first_token_s(self) -> float | None:
        return self.arrivals[0][0] if self.arrivals else None

    def row(self) -> dict[str, object]:
        first = self.first_token_s
        return {"client": self.client, "first token s": "-" if first is None else f"{first:.3f}",
                "pieces": len(self.arrivals), "reads": "-" if self.reads is None else self.reads,
                "characters": len(self.text), "end s": f"{self.total_s:.3f}"}


def timeline_from_lines(client: str, lines: Iterable[str], start: float) -> TokenTimeline:
    """Feed an event stream's lines to the parser as they come; note each message's arrival."""
    parser = EventStreamParser()
    arrivals: list[tuple[float, int]] = []
    text = ""
    for line in lines:
        event = parser.line(line)
        if event is not None and event.type == "message":
            text += event.data
            arrivals.append((time.perf_counter() - start, len(text)))
        elif event is not None and event.type == "done":
            break  # the server's last event: stop reading, as the page's EventSource does
    return TokenTimeline(client, tuple(arrivals), time.perf_counter() - start, text)


def requests_tokens(
    url: str, *, chunk_size: int = 512, headers: Mapping[str, str] | None = None,
    client: str | None = None, timeout: float = 30.0,
) -> TokenTimeline:
    """Read a token event stream with ``requests`` and ``iter_lines(chunk_size)``.

    ``iter_lines`` asks urllib3 for ``chunk_size`` bytes at a time. On a chunked
    body urllib3 hands over each chunk as it comes, however small; on a body
    without chunked framing (ended by the connection's close) a read waits until
    ``chunk_size`` bytes have arrived, or the body has ended. ``reads`` counts the
    pieces ``iter_content`` (under ``iter_lines``) returned, one per network read.
    """
    start = time.perf_counter()
    reads = 0
    with requests.get(url, stream=True, headers=dict(headers or {}), timeout=timeout) as reply:
        reply.raise_for_status()
        iter_content = reply.iter_content

        def counted(*args: Any, **kwargs: Any) -> Iterator[Any]:
            nonlocal reads
            for piece in iter_content(*args, **kwargs):
                reads += bool(piece)
                yield piece

        reply.iter_content = counted  # type: ignore[method-assign]  # iter_lines calls it
        lines = (line.decode("utf-8", "replace") for line in reply.iter_lines(chunk_size))
        timeline = timeline_from_lines(client or f"requests, chunk_size={chunk_size}", lines,
                                       start)
    return replace(timeline, reads=reads)


def httpx_available() -> bool:
    """Whether httpx is installed (it comes with httpx-sse, a test dependency, not with the
    series' own dependencies)."""
    return importlib.util.find_spec("httpx") is not None


def httpx_tokens(url: str, *, timeout: float = 30.0) -> TokenTimeline:
    """The same stream read with httpx's ``iter_lines`` (only where httpx is installed)."""
    httpx = importlib.import_module("httpx")  # optional: see httpx_available()
    start = time.perf_counter()
    with httpx.stream("GET", url, timeout=timeout) as reply:
        reply.raise_for_status()
        return timeline_from_lines("httpx, iter_lines", reply.iter_lines(), start)


def page_timeline(client: str, marks: Mapping[str, Any]) -> TokenTimeline:
    """A client of the ``/chat`` page, from the marks it recorded (``performance.now()``
    in ms): each arrival and the characters so far, counted from the request."""
    start = marks["start"]
    arrivals = tuple(((t - start) / 1000, chars) for t, chars in marks["arrivals"])
    return TokenTimeline(client, arrivals, (marks["end"] - start) / 1000, marks["text"])


# -- A client that leaves ----------------------------------------------------------------------


@dataclass(frozen=True)
class LeaveOutcome:
    """A client left a tagged stream; what the server's generator did about it."""

    worker_class: str
    tokens_read: int  # what the client had when it left
    produced: int | None  # pieces the generator yielded in all (None: no record came)
    outcome: str | None  # how it ended: GeneratorExit, CancelledError, completed...
    finally_after_s: float | None  # from the client leaving to the generator's finally

    @property
    def produced_after_leaving(self) -> int | None:
        return None if self.produced is None else self.produced - self.tokens_read

    def row(self) -> dict[str, object]:
        after = self.finally_after_s
        return {"worker": self.worker_class, "client read": self.tokens_read,
                "server produced": self.produced, "after leaving": self.produced_after_leaving,
                "ended by": self.outcome,
                "finally after s": "-" if after is None else f"{after:.3f}"}


def leave_after_tokens(
    server: DemoServer, events: StreamEvents, tokens: int, *, query: str = "",
    timeout: float = 30.0,
) -> LeaveOutcome:
    """Read ``tokens`` tokens of ``/tokens?format=text`` (one chunk per token), then close
    the connection; wait for the generator's record of how it ended."""
    tag = events.tag(f"leave-{server.worker_class}")
    url = server.url(f"/tokens?format=text&tag={tag}" + (f"&{query}" if query else ""))
    read = 0
    reply = requests.get(url, stream=True, timeout=timeout)
    try:
        for piece in reply.raw.read_chunked(decode_content=False):
            read += bool(piece)
            if read >= tokens:
                break
    finally:
        left_at = time.time()
        reply.raw.close()  # the socket closes here: the client has left
        reply.close()
    record = events.wait(tag, timeout=timeout)
    if record is None:
        return LeaveOutcome(server.worker_class, read, None, None, None)
    return LeaveOutcome(server.worker_class, read, record["chunks"], record["outcome"],
                        record["ended"] - left_at)
