"""Plumbing for notebooks 05 and 06: what a stream does to the worker that sends it.

Each helper sets up one situation against a running demo server and returns
plain numbers (dicts), so a notebook cell only has to print and assert them:

* ``probe_while`` / ``second_request_wait``: how long a second request waits
  while something else (a stream, a slow reader) occupies the server;
* ``slow_read``: a client that reads a few bytes per interval, as a phone on a
  bad network does, then gives up;
* ``disconnect_mid_stream``: a client that leaves halfway through a body;
* ``stream_outcome``: read a chunked body to the end and say whether it was
  complete (a body cut short has no zero-size last chunk);
* ``StreamEvents``: where the demo's tagged generators report, from their
  ``finally`` block, how they ended (see ``demo_app.async_views``);
* ``run_matrix``: the {WSGI, ASGI} x {sync, async iterator} measurements.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import json
import shutil
import socket
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import requests

from ..servers.gunicorn import DemoServer
from ..wire.chunked import decode_chunked
from ..wire.http1 import raw_request, send_request
from .request import measure

T = TypeVar("T")

EVENTS_DIR_ENV = "DEMO_STREAM_EVENTS_DIR"  # the same name demo_app.async_views reads
ITERATOR_PATHS = {"sync iterator": "/stream_sync", "async iterator": "/stream_async"}


# -- Who is waiting for whom ----------------------------------------------------------------


def probe_while(
    busy: Callable[[], T], probe_url: str, *, after_s: float = 0.5, timeout: float = 60.0
) -> dict[str, Any]:
    """Run ``busy()`` in a thread; ``after_s`` seconds in, time a GET of ``probe_url``.

    Returns ``probe_wait_s`` (how long the probe took, from sending to its last
    byte), ``busy_remaining_s`` (how long ``busy`` still ran after the probe was
    sent), ``busy_s`` (its whole run) and ``busy_result`` (what it returned). On
    a server that can only do one thing at a time, the probe waits for the rest
    of the busy work: ``probe_wait_s`` is close to ``busy_remaining_s``.
    """
    result: dict[str, Any] = {}

    def run_busy() -> None:
        try:
            result["value"] = busy()
        finally:
            result["end"] = time.perf_counter()

    start = time.perf_counter()
    thread = threading.Thread(target=run_busy, name="busy", daemon=True)
    thread.start()
    time.sleep(after_s)
    sent = time.perf_counter()
    response = requests.get(probe_url, timeout=timeout)
    answered = time.perf_counter()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"The busy task was still running after {timeout:g} s; stop the server.")
    if "value" not in result:
        raise RuntimeError("The busy task failed; run it on its own to see its error.")
    return {
        "probe_status": response.status_code,
        "probe_sent_s": sent - start,
        "probe_wait_s": answered - sent,
        "busy_s": result["end"] - start,
        "busy_remaining_s": result["end"] - sent,
        "busy_result": result["value"],
    }


def second_request_wait(
    server: DemoServer, stream_path: str, *, probe_path: str = "/hello", after_s: float = 0.5
) -> dict[str, Any]:
    """Start a stream from ``stream_path``; ``after_s`` in, time a request for ``probe_path``."""
    return probe_while(
        lambda: measure(server.url(stream_path)), server.url(probe_path), after_s=after_s
    )


def run_concurrently(
    tasks: Mapping[str, Callable[[], T]], *, stagger_s: float = 0.0
) -> dict[str, T]:
    """Run each task in its own thread (started ``stagger_s`` apart); return results by name."""
    with ThreadPoolExecutor(max_workers=max(len(tasks), 1)) as pool:
        futures = {}
        for name, task in tasks.items():
            futures[name] = pool.submit(task)
            time.sleep(stagger_s)
        return {name: future.result() for name, future in futures.items()}


# -- Clients that misbehave ------------------------------------------------------------------


def slow_read(
    url: str,
    *,
    read_size: int = 1024,
    interval_s: float = 0.05,
    duration_s: float = 2.0,
    rcvbuf: int = 16 * 1024,
) -> dict[str, Any]:
    """Request ``url``, read ``read_size`` bytes every ``interval_s`` for ``duration_s``, leave.

    A small receive buffer (``rcvbuf``) stands for a slow network: once it and
    the server's send buffer are full, the server's next write blocks until
    the client reads. Returns the bytes read (headers included) and the time.
    """
    start = time.perf_counter()
    received = 0
    with send_request(url, rcvbuf=rcvbuf) as sock:
        while time.perf_counter() - start < duration_s:
            data = sock.recv(read_size)
            if not data:
                break
            received += len(data)
            time.sleep(interval_s)
        rcvbuf_granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    return {
        "bytes_read": received,
        "seconds": time.perf_counter() - start,
        "rcvbuf_bytes": rcvbuf_granted,
    }


def disconnect_mid_stream(url: str, *, after_s: float = 0.35) -> dict[str, Any]:
    """Request ``url``, read whatever arrives for ``after_s`` seconds, then close the socket.

    ``disconnected_at`` is wall-clock time (``time.time()``), comparable with
    the ``ended`` time a tagged generator records on the same machine.
    """
    received = bytearray()
    with send_request(url) as sock:
        sock.settimeout(0.02)
        deadline = time.perf_counter() + after_s
        while time.perf_counter() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                break
            received += data
        disconnected_at = time.time()
    head, end_of_head, body = bytes(received).partition(b"\r\n\r\n")
    return {
        "bytes_received": len(received),
        "body_bytes_received": len(body),
        "headers_received": bool(end_of_head),
        "disconnected_at": disconnected_at,
    }


def stream_outcome(url: str, *, idle_timeout: float = 15.0) -> dict[str, Any]:
    """Read a whole chunked response over a bare socket; say whether its body is complete."""
    response = raw_request(url, idle_timeout=idle_timeout)
    try:
        body = decode_chunked(response.body)
    except ValueError as error:
        return {"complete": False, "seconds": response.elapsed_s, "body_bytes": None,
                "framed_bytes": len(response.body), "error": str(error)}
    return {"complete": True, "seconds": response.elapsed_s, "body_bytes": len(body.data),
            "framed_bytes": len(response.body), "error": None}


# -- What the generator saw ------------------------------------------------------------------


class StreamEvents:
    """A directory where the demo's tagged generators write how they ended.

    Start servers with ``env=events.env``, add ``tag=...`` to a stream's URL
    (``events.tag("label")`` makes a unique one), and ``events.wait(tag)``
    returns the record once the generator's ``finally`` block has run.
    """

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="stream-events-"))
        self._numbers = itertools.count(1)

    @property
    def env(self) -> dict[str, str]:
        return {EVENTS_DIR_ENV: str(self.directory)}

    def tag(self, label: str) -> str:
        """A tag no earlier request used, so a re-run cell never reads an old record."""
        return f"{label}-{next(self._numbers)}-{time.time_ns() % 10**9}"

    def get(self, tag: str) -> dict[str, Any] | None:
        path = self.directory / f"{tag}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def wait(self, tag: str, timeout: float = 10.0) -> dict[str, Any] | None:
        """The record for ``tag``, or None if no ``finally`` reported within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while (event := self.get(tag)) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        return event

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def disconnect_outcome(
    server: DemoServer, path: str, query: str, events: StreamEvents, *, after_s: float = 0.35
) -> dict[str, Any]:
    """Stream ``path?query`` (tagged), leave after ``after_s`` s: what did the generator see?

    Returns what the client had received, and the generator's own record:
    ``outcome`` (e.g. ``GeneratorExit``), ``chunks`` yielded, and
    ``finally_after_s``, the time from the disconnect to its ``finally``. The
    record is None when no ``finally`` ran within 10 seconds.
    """
    tag = events.tag(path.strip("/"))
    client = disconnect_mid_stream(server.url(f"{path}?{query}&tag={tag}"), after_s=after_s)
    event = events.wait(tag)
    return {
        "server": server_kind(server),
        "path": path,
        "body_bytes_received": client["body_bytes_received"],
        "finally_ran": event is not None,
        "outcome": None if event is None else event["outcome"],
        "chunks": None if event is None else event["chunks"],
        "finally_after_s": None if event is None else event["ended"] - client["disconnected_at"],
    }


def log_lines(server: DemoServer, *needles: str) -> list[str]:
    """The lines of the server's log that contain any of ``needles``."""
    return [line for line in server.log.splitlines() if any(n in line for n in needles)]


# -- Quoting the installed source -------------------------------------------------------------


def excerpt(obj: object, first: str, last: str) -> str:
    """The lines of ``obj``'s source from the one containing ``first`` to the next with ``last``.

    Raises ``LookupError`` when either is missing: the installed version no
    longer has the code a notebook wants to quote, so its text needs a look.
    """
    lines = inspect.getsource(obj).splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if first in line)
        end = next(i for i in range(start, len(lines)) if last in lines[i])
    except StopIteration:
        where = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', obj)}"
        raise LookupError(f"{first!r} ... {last!r} not found in the source of {where}.") from None
    return textwrap.dedent("\n".join(lines[start : end + 1]))


def warning_texts(obj: object) -> list[str]:
    """The message of every ``warnings.warn("...")`` call in ``obj``'s source, as text."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    return [
        ast.literal_eval(node.args[0])
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr == "warn" and node.args and isinstance(node.args[0], ast.Constant)
    ]


# -- The 2x2 matrix ----------------------------------------------------------------------------


def server_kind(server: DemoServer) -> str:
    return "ASGI" if server.worker_class == "asgi" else "WSGI"


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
                "server": f"{server_kind(server)} ({server.worker_class} worker)",
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
