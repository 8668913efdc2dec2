"""Plumbing for notebooks 05 and 06: what a stream does to the worker that sends it.

Each helper sets up one situation against a running demo server and returns
plain numbers (dicts, or a dataclass for the newer ones), so a notebook cell
only has to print and assert them:

* ``probe_while`` / ``second_request_wait``: how long a second request waits
  while something else (a stream, a slow reader) occupies the server;
* ``request_timeline``: a long stream and short probes sent while it runs, as
  spans on one time axis, with the worker's heartbeat sampled meanwhile
  (``heartbeat_file``, ``heartbeat_age``: what Gunicorn's master checks
  against ``--timeout``);
* ``slow_read``: a client that reads a few bytes per interval, as a phone on a
  bad network does, then gives up;
* ``disconnect_mid_stream``: a client that leaves halfway through a body;
* ``stream_outcome``: read a chunked body to the end and say whether it was
  complete (a body cut short has no zero-size last chunk);
* ``StreamEvents``: where the demo's tagged generators report, from their
  ``finally`` block, how they ended (see ``demo_app.async_views``).

Which iterator streams under which server (notebook 06's matrix, Django's
ASGI handler called in-process) is ``iterators``.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import json
import os
import shutil
import socket
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests

from ..servers.gunicorn import DemoServer
from ..wire.chunked import decode_chunked
from ..wire.http1 import raw_request, send_request
from .request import measure

T = TypeVar("T")

EVENTS_DIR_ENV = "DEMO_STREAM_EVENTS_DIR"  # the same name demo_app.async_views reads


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


# -- A stream and the requests around it, on one time axis ------------------------------------

QUICK_S = 0.25  # a probe answered within this many seconds did not wait for anything


@dataclass(frozen=True)
class Span:
    """One request on a timeline, in seconds since the timeline's stream was requested."""

    label: str
    sent_s: float
    done_s: float  # when its last body byte had arrived
    status: int

    @property
    def seconds(self) -> float:
        return self.done_s - self.sent_s

    @property
    def waited(self) -> bool:
        """True when the request took longer than a free server needs (``QUICK_S``)."""
        return self.seconds > QUICK_S


@dataclass(frozen=True)
class Timeline:
    """A long stream on one server, the short probes sent while it ran, and the heartbeat.

    ``heartbeat`` holds ``(seconds, age)`` samples: how long ago, at that moment,
    the worker had last told Gunicorn's master that it was alive. It is empty
    where the heartbeat cannot be read (no ``/proc``: not Linux).
    """

    worker_class: str
    stream: Span
    probes: tuple[Span, ...]
    heartbeat: tuple[tuple[float, float], ...] = ()

    @property
    def first_wait_s(self) -> float:
        """How long the first probe took, from sending it to its last byte."""
        return self.probes[0].seconds

    @property
    def stream_left_s(self) -> float:
        """How much of the stream was still to come when the first probe was sent."""
        return self.stream.done_s - self.probes[0].sent_s

    @property
    def max_heartbeat_age_s(self) -> float | None:
        return max((age for _, age in self.heartbeat), default=None)


def heartbeat_file(server: DemoServer) -> Path | None:
    """The worker's heartbeat file as ``/proc/PID/fd/N``, or None (not Linux, or not one worker).

    Gunicorn's ``WorkerTmp`` creates a temporary file per worker and unlinks
    its name at once; the worker keeps it open and ``notify()`` sets its
    modification time. The master reads that time to decide whether the worker
    is stuck. The open descriptor is still reachable through ``/proc``.
    """
    workers = server.worker_processes()
    fd_dir = Path(f"/proc/{workers[0].pid}/fd") if len(workers) == 1 else None
    if fd_dir is None or not fd_dir.is_dir():
        return None
    for fd in fd_dir.iterdir():
        try:
            if "wgunicorn-" in os.readlink(fd):
                return fd
        except OSError:  # closed meanwhile
            continue
    return None


def heartbeat_age(path: Path) -> float | None:
    """Seconds since the worker last called ``notify()``, or None once the file is gone.

    ``notify()`` stores ``time.monotonic()`` as the modification time, not the
    wall clock; the monotonic clock is the same for every process on a machine.
    """
    try:
        return time.monotonic() - path.stat().st_mtime
    except OSError:
        return None


def request_timeline(
    server: DemoServer,
    stream_path: str,
    *,
    probe_path: str = "/hello",
    probes_at: Sequence[float] = (0.5, 1.0, 1.5),
    sample_every_s: float = 0.05,
    timeout: float = 60.0,
) -> Timeline:
    """Request ``stream_path``; at each of ``probes_at`` seconds, send a GET of ``probe_path``.

    Every request is read to its last byte in its own thread, and the
    worker's heartbeat is sampled until the stream has ended.
    """
    beat = heartbeat_file(server)
    start = time.perf_counter()

    def timed(label: str, path: str, at_s: float) -> Span:
        time.sleep(max(0.0, start + at_s - time.perf_counter()))
        sent = time.perf_counter() - start
        response = requests.get(server.url(path), timeout=timeout)
        return Span(label, sent, time.perf_counter() - start, response.status_code)

    with ThreadPoolExecutor(max_workers=len(probes_at) + 1) as pool:
        stream = pool.submit(timed, "stream", stream_path, 0.0)
        probes = [pool.submit(timed, f"{probe_path} at {at:g} s", probe_path, at)
                  for at in probes_at]
        heartbeat = []
        while not stream.done():
            if beat is not None and (age := heartbeat_age(beat)) is not None:
                heartbeat.append((time.perf_counter() - start, age))
            time.sleep(sample_every_s)
        return Timeline(server.worker_class, stream.result(),
                        tuple(p.result() for p in probes), tuple(heartbeat))


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
        "thread": None if event is None else event["thread"],
    }


def replaced_workers(server: DemoServer, old: Iterable[int], timeout: float = 10.0) -> list[int]:
    """The worker pids once Gunicorn's master has replaced every pid in ``old``.

    A worker killed for its timeout takes a moment to exit and be reaped, and
    its replacement a moment to boot; reading the pids at once can still see
    the old one. Pass only the pids expected to go (with several workers, those
    of the one that timed out): it waits until none of them is left. Raises
    ``TimeoutError`` if the replacement takes over ``timeout`` s.
    """
    old = set(old)
    deadline = time.monotonic() + timeout
    while True:
        pids = [p.pid for p in server.worker_processes()]
        if pids and not old & set(pids) and len(pids) >= len(old):
            return pids
        if time.monotonic() > deadline:
            raise TimeoutError(f"{server}: workers {sorted(old)} not replaced after {timeout} s "
                               f"(now {pids}); its log:\n{server.log[-2000:]}")
        time.sleep(0.05)


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


def server_kind(server: DemoServer) -> str:
    """``ASGI`` or ``WSGI``: which of the demo app's entry points the server runs."""
    return "ASGI" if server.app.endswith("asgi:application") else "WSGI"
