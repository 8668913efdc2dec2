"""Which iterator streams under which server (notebook 06): the 2x2 matrix, and Django's
ASGI handler called in-process.

* ``run_matrix``: the {WSGI, ASGI} x {sync, async iterator} measurements, one
  dict per pair (first byte, total time, the worker's memory, streamed or not);
* ``asgi_call``: call an ASGI application in-process with a recording
  ``send``, to see which messages Django sends and when, before any server
  is involved; ``wire_chunk_sizes``: the chunks a server really sent.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import requests

from ..servers.gunicorn import DemoServer
from ..wire.chunked import decode_chunked
from ..wire.http1 import raw_request
from .request import measure
from .workers import server_kind

ITERATOR_PATHS = {"sync iterator": "/stream_sync", "async iterator": "/stream_async"}


# -- The 2x2 matrix ----------------------------------------------------------------------------


def matching_iterator(server: DemoServer) -> str:
    """The iterator kind that Django streams under this server without buffering."""
    return "async iterator" if server_kind(server) == "ASGI" else "sync iterator"


def run_matrix(servers: list[DemoServer], query: str, *, streamed_below: float = 0.5
               ) -> list[dict[str, Any]]:
    """Measure both twin views on each server with the same ``query``; one dict per pair.

    Each view is requested once with a tiny body first, so imports and
    first-request costs do not land in the measurement. The matching pair runs
    before the mismatched one on each server, so the mismatched one's memory
    is not hidden by memory freed earlier. ``streamed`` means the first body
    byte came before ``streamed_below`` of the total time.
    """
    rows = []
    for server in servers:
        for path in ITERATOR_PATHS.values():
            requests.get(server.url(f"{path}?rows=10"), timeout=30).raise_for_status()
        matching = matching_iterator(server)
        for iterator, path in sorted(ITERATOR_PATHS.items(), key=lambda i: i[0] != matching):
            m = measure(server.url(f"{path}?{query}"), server=server)
            if m.status != 200:
                raise RuntimeError(f"{m.url} answered {m.status}; check the query {query!r}.")
            rows.append({
                "server": f"{server_kind(server)} ("
                          f"{getattr(server, 'server', '') or server.worker_class + ' worker'})",
                "kind": server_kind(server),
                "iterator": iterator,
                "matched": iterator == matching_iterator(server),
                "headers_s": m.headers_s,
                "ttfb_s": m.ttfb_s,
                "total_s": m.total_s,
                "nbytes": m.nbytes,
                "worker_rss_delta_mib": (m.worker_rss_delta or 0) / 2**20,
                "streamed": m.ttfb_s is not None and m.ttfb_s < streamed_below * m.total_s,
            })
    return rows


# -- Django's ASGI handler, in-process ---------------------------------------------------------


@dataclass(frozen=True)
class AsgiMessage:
    """One message an ASGI application sent, and when (seconds since it was called)."""

    at_s: float
    type: str
    body_bytes: int = 0
    more_body: bool = False


@dataclass(frozen=True)
class AsgiCall:
    """What an ASGI application sent for one request, and the warnings it raised."""

    messages: tuple[AsgiMessage, ...]
    warnings: tuple[str, ...]

    @property
    def start_s(self) -> float:
        """When ``http.response.start`` (status and headers) was sent."""
        return next(m.at_s for m in self.messages if m.type == "http.response.start")

    @property
    def first_body_s(self) -> float | None:
        """When the first ``http.response.body`` carrying bytes was sent."""
        return next((m.at_s for m in self.messages if m.body_bytes), None)

    @property
    def body_sizes(self) -> list[int]:
        """The size of every ``http.response.body`` message that carried bytes."""
        return [m.body_bytes for m in self.messages if m.body_bytes]


async def asgi_call(
    app: Callable[..., Awaitable[None]],
    path: str,
    query: str = "",
    *,
    disconnect_after_s: float | None = None,
) -> AsgiCall:
    """Call ``app`` for ``GET path?query`` with no server: record what it sends, and when.

    The client sends no body, then stays connected, or leaves (an
    ``http.disconnect`` message) after ``disconnect_after_s`` seconds.
    Warnings raised meanwhile are recorded instead of shown.
    """
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": query.encode(), "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80),
    }
    start = time.perf_counter()
    requested = False
    sent: list[AsgiMessage] = []

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        if disconnect_after_s is None:
            await asyncio.Event().wait()  # stays connected (Django cancels this wait)
        else:
            await asyncio.sleep(max(0.0, start + disconnect_after_s - time.perf_counter()))
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(AsgiMessage(time.perf_counter() - start, message["type"],
                                len(message.get("body", b"")), message.get("more_body", False)))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await app(scope, receive, send)
    return AsgiCall(tuple(sent), tuple(str(w.message) for w in caught))


def wire_chunk_sizes(url: str) -> list[int]:
    """The size of each chunk of a chunked response, as the server framed it on the wire."""
    return [chunk.size for chunk in decode_chunked(raw_request(url).body).chunks]
