"""The same streams on every ASGI server: what is Django's, and what is the server's (notebook 11).

Each function asks one question of one running server (any of
``streamlab.servers.asgi_servers.SERVERS``, or a Gunicorn ``DemoServer``) and returns
a small dataclass, so the notebook builds its table from objects and asserts on them:

``headers_first``    does the status line leave before the view's first body bytes?
``framing``          chunked or not, the hex digits' case, one chunk per ASGI message,
                     and what an HTTP/1.0 client gets;
``disconnect``       how soon a view sees the client leave, while writing and while silent;
``stalled_reader``   a client that stops reading: does the view pause, or the server buffer?
``silent_stream``    a stream that says nothing for longer than the server's idle timeouts;
``listen_backlog``   the listen queue the kernel holds for the server's socket.

Everything runs against 127.0.0.1, with deadlines; nothing here starts a server.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from ..servers.process import HOST, ManagedProcess
from ..wire.chunked import decode_chunked
from ..wire.framing import body_end
from ..wire.http1 import raw_request, send_request
from ..wire.http2_client import Http2Client
from .memory import total_cpu, total_rss
from .proxies import read_stream
from .request import Measurement, measure
from .workers import StreamEvents, disconnect_mid_stream

T = TypeVar("T")

MiB = 2**20


def server_name(server: ManagedProcess) -> str:
    """The server's name as the series' tables show it: ``uvicorn``, ``gunicorn asgi``..."""
    name = getattr(server, "server", "")
    return name or f"gunicorn {getattr(server, 'worker_class', '')}".strip()


# -- 1. Headers before the first body bytes ----------------------------------------------------


@dataclass(frozen=True)
class HeadersFirst:
    server: str
    think_s: float  # how long the view waits, after returning its response, before a byte
    head_s: float  # when the status line and headers had arrived
    first_body_s: float  # when the first body bytes arrived

    @property
    def at_once(self) -> bool:
        """The headers came well before the think time was over: the server sent them as
        soon as Django handed them over (``http.response.start``)."""
        return self.head_s < self.think_s / 2

    def row(self) -> dict[str, object]:
        return {"server": self.server, "headers at s": f"{self.head_s:.2f}",
                "first body byte at s": f"{self.first_body_s:.2f}",
                "headers sent": "at once" if self.at_once else "with the body"}


def headers_first(server: ManagedProcess, *, think_ms: int = 1000) -> HeadersFirst:
    """``/tokens`` as plain text: Django returns the response at once, then the view thinks
    ``think_ms`` before its first token."""
    read = read_stream(server.url(f"/tokens?format=text&think_ms={think_ms}&token_ms=0"))
    if read.head_s is None or read.first_byte_s is None or not read.complete:
        raise RuntimeError(f"{server_name(server)}: {read.url} did not stream ({read.error}).")
    return HeadersFirst(server_name(server), think_ms / 1000, read.head_s, read.first_byte_s)


# -- 2. Framing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Framing:
    server: str
    transfer_encoding: str  # "chunked", or "-" when the header is absent
    hex_case: str  # "lower", "upper" or "-" (no size line had a letter in it)
    items: int  # what the view yielded: one ASGI message each
    wire_chunks: int  # chunks on the wire
    http10: str  # how an HTTP/1.0 client's body ended: "connection close", ...
    http10_complete: bool  # and whether it was the whole body

    @property
    def chunk_per_message(self) -> bool:
        return self.items == self.wire_chunks

    def row(self) -> dict[str, object]:
        return {"server": self.server, "Transfer-Encoding": self.transfer_encoding,
                "hex digits": self.hex_case,
                "items -> chunks": f"{self.items} -> {self.wire_chunks}",
                "HTTP/1.0 body ends": self.http10 + ("" if self.http10_complete else ", cut")}


def hex_case(size_lines: list[bytes]) -> str:
    """Whether the chunk sizes' hex letters are written in lower or upper case."""
    letters = b"".join(re.findall(rb"[a-fA-F]", b"".join(size_lines)))
    if not letters:
        return "-"
    if letters.islower():
        return "lower"
    return "upper" if letters.isupper() else "mixed"


def framing(server: ManagedProcess, *, rows: int = 40, chunk_rows: int = 1) -> Framing:
    """The matching generator's stream (``streaming_path``): one CSV line per item, yielded
    back to back, over HTTP/1.1 and over HTTP/1.0."""
    from demo_app import csvgen

    url = server.url(f"{streaming_path(server)}?rows={rows}&chunk_rows={chunk_rows}")
    expected = csvgen.csv_text(rows).encode()
    items = len(list(csvgen.iter_chunks(rows, chunk_rows)))
    response = raw_request(url)
    body = decode_chunked(response.body) if response.headers.chunked else None
    if body is not None and body.data != expected:
        raise RuntimeError(f"{server_name(server)}: {url} sent another body.")
    old = raw_request(url, version="HTTP/1.0")
    end = body_end(old)
    got = (decode_chunked(old.body).data if end == "last chunk" else old.body)
    return Framing(
        server_name(server),
        response.headers.get("Transfer-Encoding") or "-",
        hex_case([chunk.size_line for chunk in body.chunks]) if body else "-",
        items, len(body.chunks) if body else 0,
        end, got == expected,
    )


# -- 4. Disconnect -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Disconnect:
    server: str
    case: str  # "writing" or "silent"
    outcome: str | None  # how the generator ended: "CancelledError", ...; None: it never did
    seen_after_s: float | None  # from the client's close to the generator's ``finally``
    items_after: int | None  # items the generator made after the client had left

    def row(self) -> dict[str, object]:
        seen = "never" if self.seen_after_s is None else f"{self.seen_after_s:.2f}"
        return {"server": self.server, "while": self.case, "generator ended": self.outcome,
                "seen after s": seen,
                "items after": "-" if self.items_after is None else self.items_after}


WRITING = "?rows=100000000&chunk_rows=50&delay_ms=20"  # after the matching generator's path
SILENT = "/tokens?format=text&think_ms={think_ms}&token_ms=0"


def disconnect(server: ManagedProcess, events: StreamEvents, *, case: str = "writing",
               leave_after_s: float = 0.5, think_ms: int = 3000) -> Disconnect:
    """Leave a stream after ``leave_after_s``: during steady writes (an item every 20 ms), or
    during a silent think of ``think_ms`` before the first token. The server must have been
    started with ``env=events.env``."""
    if case not in ("writing", "silent"):
        raise ValueError(f"case must be 'writing' or 'silent', got {case!r}.")
    path = (streaming_path(server) + WRITING if case == "writing"
            else SILENT.format(think_ms=think_ms))
    tag = events.tag(f"{server_name(server).replace(' ', '-')}-{case}")
    client = disconnect_mid_stream(server.url(f"{path}&tag={tag}"), after_s=leave_after_s)
    record = events.wait(tag, timeout=think_ms / 1000 + 5)
    if record is None:
        return Disconnect(server_name(server), case, None, None, None)
    received = _items_in(client["body_bytes_received"], case)
    return Disconnect(server_name(server), case, record["outcome"],
                      record["ended"] - client["disconnected_at"],
                      max(0, record["chunks"] - received))


def _items_in(framed_bytes: int, case: str) -> int:
    """Roughly how many items a client had received in ``framed_bytes`` of chunked body."""
    if case != "writing":
        return 0  # the silent view had made no item yet
    from demo_app import csvgen

    item = len(csvgen.csv_text(51)) // 51 * 50 + 6  # 50 lines, plus the chunk's framing
    return framed_bytes // item


# -- 5. A client that stops reading ------------------------------------------------------------


@dataclass(frozen=True)
class StalledReader:
    server: str
    tag: str  # the generator's tag: its record tells how it ended, once it has
    body_mib: float  # the size of the whole stream
    stall_s: float  # how long the client read nothing
    finished_unread: bool  # the view made the whole body while the client read none of it
    rss_growth_mib: float  # the worker's largest RSS growth while the client did not read
    cpu_s: float  # the worker's CPU time meanwhile: making items costs CPU, waiting does not
    timeline: tuple[tuple[float, float], ...]  # (seconds, worker RSS growth in MiB)

    @property
    def back_pressure(self) -> bool:
        """The view was held back: it had not made the whole body when the stall ended, and
        the worker did not grow by a quarter of the body (what a server that buffers the
        body holds; a paused one holds one piece or two, the rest waits in the kernel)."""
        return not self.finished_unread and self.rss_growth_mib < self.body_mib / 4

    def row(self) -> dict[str, object]:
        return {"server": self.server,
                "worker RSS growth MiB": f"{self.rss_growth_mib:.0f}",
                "worker CPU s": f"{self.cpu_s:.2f}",
                "while nobody read, the view": "paused" if self.back_pressure
                else f"made all {self.body_mib:.0f} MiB" if self.finished_unread
                else "ran on, held in the worker"}


def stalled_reader(server: ManagedProcess, events: StreamEvents, *, body_mib: int = 16,
                   stall_s: float = 3.0) -> StalledReader:
    """Ask for a ``body_mib`` stream (items of about 64 KiB) with a small receive buffer and
    read nothing, sampling the worker's RSS and CPU time, until the view has made the whole
    body or ``stall_s`` seconds have passed; then leave. ``after_leaving`` tells later how
    each generator ended."""
    from demo_app import csvgen

    rows = _rows_for(body_mib * MiB)
    chunk_rows = max(1, rows * 64 * 1024 // csvgen.csv_size(rows))
    tag = events.tag(f"{server_name(server).replace(' ', '-')}-stalled")
    url = server.url(f"{streaming_path(server)}?rows={rows}&chunk_rows={chunk_rows}&tag={tag}")
    workers = server.worker_processes()
    samples: list[tuple[float, float]] = []
    base, cpu = total_rss(workers), total_cpu(workers)
    finished = False
    with send_request(url, rcvbuf=64 * 1024):
        start = time.perf_counter()
        while not finished and (now := time.perf_counter() - start) < stall_s:
            samples.append((now, (total_rss(workers) - base) / MiB))
            time.sleep(0.05)
            finished = events.get(tag) is not None
        samples.append((time.perf_counter() - start, (total_rss(workers) - base) / MiB))
        cpu = total_cpu(workers) - cpu
    return StalledReader(server_name(server), tag, csvgen.csv_size(rows) / MiB, stall_s,
                         finished, max(g for _, g in samples), cpu, tuple(samples))


def after_leaving(runs: Sequence[StalledReader], events: StreamEvents, *,
                  timeout: float = 5.0) -> dict[str, str]:
    """How each stalled stream's generator ended once its client had left: ``ran to its end``
    (it made the rest of the body for nobody), its exception's name, or ``still suspended``
    when no ``finally`` had run ``timeout`` s after the last client left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(events.get(r.tag) is None for r in runs):
        time.sleep(0.05)
    ends = {}
    for run in runs:
        record = events.get(run.tag)
        outcome = None if record is None else record["outcome"]
        ends[run.server] = ("still suspended" if outcome is None
                            else "ran to its end" if outcome == "completed" else outcome)
    return ends


def _rows_for(nbytes: int) -> int:
    """The fewest CSV rows whose text is at least ``nbytes`` long."""
    from demo_app import csvgen

    low, high = 1, 2
    while csvgen.csv_size(high) < nbytes:
        low, high = high, high * 2
    while low < high:
        mid = (low + high) // 2
        low, high = (mid + 1, high) if csvgen.csv_size(mid) < nbytes else (low, mid)
    return low


# -- 6. A silent event stream ------------------------------------------------------------------


@dataclass(frozen=True)
class SilentStream:
    server: str
    silence_s: float
    heartbeat_s: int
    complete: bool  # every event arrived, the ``end`` event last
    ended_well: bool  # the chunked body ended with its last chunk (even if events are missing)
    elapsed_s: float  # until the connection closed

    @property
    def cut(self) -> bool:
        return not self.complete

    def row(self) -> dict[str, object]:
        return {"server": self.server,
                "heartbeats": f"every {self.heartbeat_s} s" if self.heartbeat_s else "none",
                "silence s": f"{self.silence_s:g}",
                "result": "complete" if not self.cut else f"cut after {self.elapsed_s:.1f} s"
                + (" (ended with a last chunk)" if self.ended_well else "")}


def silent_stream(server: ManagedProcess, *, silence_s: float = 4.0,
                  heartbeat_s: int = 0) -> SilentStream:
    """Two events ``silence_s`` apart (with a heartbeat comment every ``heartbeat_s`` s, if
    not 0): does the server let a response sit silent longer than its own timeouts?"""
    ms = int(silence_s * 1000)
    read = read_stream(server.url(f"/events?count=2&interval_ms={ms}&heartbeat_s={heartbeat_s}"),
                       timeout=silence_s + 10)
    data = decode_chunked(read.body).data if read.complete else b""
    return SilentStream(server_name(server), silence_s, heartbeat_s,
                        b"id: 2\n" in data and b"event: end" in data, read.complete,
                        read.elapsed_s)


# -- The listen queue --------------------------------------------------------------------------


def listen_backlog(port: int) -> int | None:
    """The backlog the kernel holds for the socket listening on ``port`` (``ss -ltn``: for a
    listening socket, its Send-Q column is the queue's maximum). None when ``ss`` is missing."""
    try:
        out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0] == "LISTEN":
            return int(fields[2])
    return None


# -- 7. The series' headline, per server -------------------------------------------------------


@dataclass(frozen=True)
class SizePair:
    server: str
    nbytes: int
    streamed: Measurement
    whole: Measurement

    def row(self) -> dict[str, object]:
        def ms(m: Measurement) -> str:
            return "-" if m.ttfb_s is None else f"{m.ttfb_s * 1000:.0f}"

        def mib(m: Measurement) -> str:
            return f"{(m.worker_rss_delta or 0) / MiB:.0f}"

        return {"server": self.server, "body MiB": f"{self.nbytes / MiB:.0f}",
                "TTFB ms, streamed": ms(self.streamed), "TTFB ms, whole": ms(self.whole),
                "worker MiB, streamed": mib(self.streamed), "worker MiB, whole": mib(self.whole)}


def streaming_path(server: ManagedProcess) -> str:
    """The matching pair's view: a sync generator under WSGI, an async one under ASGI."""
    return "/stream_async" if server.app.endswith("asgi:application") else "/stream_sync"


def size_pairs(server: ManagedProcess, sizes: list[int], *, chunk_rows: int = 1000
               ) -> list[SizePair]:
    """The CSV of each size in ``sizes`` (bytes) streamed (the matching generator, in items of
    ``chunk_rows`` lines) and built whole (``HttpResponse``), with the worker's memory rise."""
    from demo_app import csvgen

    measure(server.url(f"{streaming_path(server)}?rows=100"), server=server)  # warm up
    measure(server.url("/download_csv?rows=100"), server=server)
    pairs = []
    for size in sorted(sizes):
        rows = csvgen.rows_for_size(size)
        streamed = measure(server.url(f"{streaming_path(server)}?rows={rows}"
                                      f"&chunk_rows={chunk_rows}"), server=server)
        whole = measure(server.url(f"/download_csv?rows={rows}"), server=server)
        for m in (streamed, whole):
            if m.status != 200 or m.nbytes != csvgen.csv_size(rows):
                raise RuntimeError(f"{server_name(server)}: {m.url} answered {m.status} "
                                   f"with {m.nbytes:,} bytes.")
        pairs.append(SizePair(server_name(server), csvgen.csv_size(rows), streamed, whole))
    return pairs


# -- 8. Cleartext HTTP/2 -----------------------------------------------------------------------


@dataclass(frozen=True)
class H2c:
    server: str
    status: int | None  # the HTTP/2 response's status; None when the server did not answer so
    answer: str  # what came back instead: the first line of an HTTP/1.1 answer, or "-"
    items: int
    data_frames: int  # DATA frames that carried bytes
    same_body: bool

    @property
    def speaks_h2c(self) -> bool:
        return self.status == 200 and self.same_body

    def row(self) -> dict[str, object]:
        return {"server": self.server,
                "h2c (prior knowledge)": "yes" if self.speaks_h2c else f"no: {self.answer}",
                "items -> DATA frames": f"{self.items} -> {self.data_frames}"
                if self.speaks_h2c else "-"}


def h2c(server: ManagedProcess, *, rows: int = 20) -> H2c:
    """Open HTTP/2 with prior knowledge on the server's HTTP/1.1 port and ask for the stream
    of ``framing`` (one line per item), read with the series' own frame decoder."""
    from demo_app import csvgen

    path = f"{streaming_path(server)}?rows={rows}&chunk_rows=1"
    items = len(list(csvgen.iter_chunks(rows, 1)))
    try:
        with Http2Client(HOST, server.port, timeout=3) as client:
            stream = client.get(path, timeout=3)
            unparsed = client.unparsed
    except OSError as error:
        return H2c(server_name(server), None, type(error).__name__, items, 0, False)
    answer = unparsed.split(b"\r\n", 1)[0].decode("latin-1") if unparsed else "connection closed"
    frames = [f for f in stream.data_frames if f.length]
    return H2c(server_name(server), stream.status, "-" if stream.status else answer, items,
               len(frames), bytes(stream.body) == csvgen.csv_text(rows).encode())


# -- Many servers at once ----------------------------------------------------------------------


def each(servers: Sequence[ManagedProcess], ask: Callable[[ManagedProcess], T]) -> list[T]:
    """``ask(server)`` for every server at the same time (one thread each), in order: for the
    questions that mostly wait, so a row of the table takes as long as its slowest server."""
    with ThreadPoolExecutor(max_workers=len(servers) or 1) as pool:
        return list(pool.map(ask, servers))


def summary_table(servers: Sequence[str], rows: dict[str, dict[str, object]]
                  ) -> list[dict[str, object]]:
    """One table row per question, one column per server; ``-`` where a question was not
    asked of a server (a WSGI worker has no sync-iterator-under-ASGI row)."""
    return [{"": question, **{name: answers.get(name, "-") for name in servers}}
            for question, answers in rows.items()]


def first_quarter_streams(pairs: Sequence[SizePair]) -> set[str]:
    """The servers whose largest streamed body sent its first byte within the first quarter
    of its own time (a ratio within one request, so a loaded machine does not move it)."""
    largest = max(p.nbytes for p in pairs)
    return {p.server for p in pairs
            if p.nbytes == largest and p.streamed.ttfb_s < p.streamed.total_s / 4}


def headline_figures(*, first: Sequence[HeadersFirst], framed: Sequence[Framing],
                     matrix: Sequence[dict], gone: Sequence[Disconnect],
                     stalled: Sequence[StalledReader], pairs: Sequence[SizePair],
                     backlog: dict[str, int | None], asgi_names: Sequence[str],
                     ) -> list[tuple[str, float | int, str, str]]:
    """Notebook 11's figures for the wrap-up, as ``(name, value, unit, shows)``."""
    at_once = sorted(r.server for r in first if r.at_once)
    largest = max(p.nbytes for p in pairs)
    daphne = next(p for p in pairs if p.server == "daphne" and p.nbytes == largest)
    return [
        ("servers sending headers before the first body bytes", len(at_once), "",
         ", ".join(at_once)),
        ("ASGI servers writing upper-case chunk sizes",
         sum(f.hex_case == "upper" for f in framed if f.server in asgi_names), "", ""),
        ("ASGI servers buffering a sync iterator",
         sum(not r["matched"] and not r["streamed"] for r in matrix if "ASGI" in r["server"]),
         "", ""),
        ("ASGI servers cancelling at once on disconnect",
         sum(d.outcome == "CancelledError" for d in gone) // 2, "", "writing and silent"),
        ("servers buffering for a stalled client", sum(not r.back_pressure for r in stalled),
         "", ""),
        ("servers whose stream's first byte comes in its first quarter",
         len(first_quarter_streams(pairs)), "", f"{largest / MiB:.0f} MiB"),
        ("Daphne, await-free generator: first byte / total",
         daphne.streamed.ttfb_s / daphne.streamed.total_s, "", ""),
        ("Gunicorn ASGI listen queue with --backlog 2048",
         backlog["gunicorn asgi, --backlog 2048"] or 0, "", ""),
    ]
