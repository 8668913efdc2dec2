"""Plumbing for notebook 07: files and database rows under WSGI and ASGI workers.

* ``fresh_measure`` / ``memory_by_size``: one measured request on a server
  started for it alone, after a small warm-up request. A worker keeps the
  memory a big response freed for reuse, so a second big request on the same
  worker would show a smaller rise; a fresh worker shows the whole of it.
* ``send_cost``: the worker CPU time (user and system) spent sending a download.
* ``first_part_probe``: drive a view's response in this process the way
  Django's ASGI handler does (``async for part in response``) and count how
  much of its iterator was consumed before the first part came out.
* ``range_request`` / ``resumed_download``: HTTP ``Range`` requests, and a
  download cut short then resumed where it stopped.
"""

from __future__ import annotations

import asyncio
import inspect
import warnings
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from ..servers.gunicorn import DemoServer, start_server
from .request import Measurement, measure

MiB = 2**20


def worker_cpu(server: DemoServer) -> tuple[float, float]:
    """CPU seconds (user, system) the server's first worker has used so far."""
    times = server.worker_processes()[0].cpu_times()
    return times.user, times.system


@dataclass
class SendCost:
    """Worker CPU seconds spent on ``repeat`` downloads of one URL, and the last download."""

    user_s: float  # in Python and the worker's own code
    system_s: float  # in the kernel on the worker's behalf: reading the file, the socket
    repeat: int
    measurement: Measurement = field(repr=False)

    @property
    def total_s(self) -> float:
        return self.user_s + self.system_s


def send_cost(server: DemoServer, path: str, *, repeat: int = 3) -> SendCost:
    """Download ``path`` ``repeat`` times from ``server`` and sum its worker's CPU time.

    The kernel counts CPU time in ticks (10 ms on most Linux systems), and one
    download of a few hundred MiB over loopback takes a tenth of a second: a
    sum over a few downloads is needed to compare the ways of sending.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}.")
    user, system = worker_cpu(server)
    for _ in range(repeat):
        last = measure(server.url(path), server=server, read_size=MiB)
    after_user, after_system = worker_cpu(server)
    return SendCost(after_user - user, after_system - system, repeat, last)


def fresh_measure(
    path: str,
    *,
    env: Mapping[str, str],
    worker_class: str = "sync",
    warm_up: str | None = None,
    name: str = "nb07-fresh",
    server_options: Mapping[str, object] | None = None,
    **measure_options: object,
) -> Measurement:
    """GET ``path`` on a server started for this one request, then stop it.

    ``warm_up`` (a path) is requested first and not measured, so the measured
    request does not pay for first-request costs (imports, the database
    connection). ``measure_options`` go to ``measure()``.
    """
    with start_server(name=name, env=dict(env), worker_class=worker_class,
                      **dict(server_options or {})) as server:
        if warm_up is not None:
            measure(server.url(warm_up))
        return measure(server.url(path), server=server, **measure_options)  # type: ignore[arg-type]


def memory_by_size(
    path: str, sizes: Sequence[int], *, env: Mapping[str, str], worker_class: str,
    warm_up: str | None = None, read_size: int = MiB,
) -> dict[int, Measurement]:
    """``fresh_measure(path.format(mib=size))`` for each size: one fresh server per size."""
    return {
        size: fresh_measure(path.format(mib=size), env=env, worker_class=worker_class,
                            warm_up=warm_up, read_size=read_size,
                            name=f"nb07-{worker_class}-{size}")
        for size in sizes
    }


# -- What Django's ASGI handler does with a response, in this process -------------------------


@dataclass
class FirstPartProbe:
    """How a response's iterator was consumed when driven the ASGI way."""

    view: str
    iterator: str  # "sync" or "async": the kind of iterator the response holds
    pulled_at_first_part: int  # pieces taken from it when the first part came out
    pulled: int  # pieces taken from it in all
    warnings: list[str] = field(default_factory=list)

    @property
    def whole_first(self) -> bool:
        """True when every piece was produced before the first one was handed on."""
        return self.pulled > 1 and self.pulled_at_first_part == self.pulled


class _Counted:
    """Wraps an iterator (sync or async) and counts the pieces taken from it."""

    def __init__(self, source: Iterable[bytes] | AsyncIterator[bytes]) -> None:
        self.source = source
        self.n = 0

    def sync(self) -> Iterator[bytes]:
        for piece in self.source:  # type: ignore[union-attr]
            self.n += 1
            yield piece

    async def asynchronous(self) -> AsyncIterator[bytes]:
        async for piece in self.source:  # type: ignore[union-attr]
            self.n += 1
            yield piece


def first_part_probe(view: Callable[..., object], query: str = "") -> FirstPartProbe:
    """Call ``view`` with a GET of ``?query`` and consume its streaming response as
    Django's ``ASGIHandler.send_response`` does: ``async for part in response``.

    A ``FileResponse`` gets the block size that handler gives it (``chunk_size``).
    The response's own iterator is wrapped in a counter first, so the probe can
    tell whether the first part came out after one piece or after all of them.
    A sync view is called in this thread, as Django calls one outside the event
    loop; the consuming runs in a fresh event loop in a helper thread.
    """
    from django.core.handlers.asgi import ASGIHandler
    from django.http import FileResponse
    from django.test import RequestFactory

    request = RequestFactory().get(f"/?{query}")
    sync_response = None if inspect.iscoroutinefunction(view) else view(request)

    async def drive() -> FirstPartProbe:
        response = sync_response if sync_response is not None else await view(request)
        if isinstance(response, FileResponse):
            response.block_size = ASGIHandler.chunk_size
        counted = _Counted(response.streaming_content)
        kind = "async" if response.is_async else "sync"
        response.streaming_content = counted.asynchronous() if response.is_async else counted.sync()
        at_first = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            async for _ in response:
                at_first = counted.n if at_first is None else at_first
        await asyncio.to_thread(response.close)
        return FirstPartProbe(view.__name__, kind, at_first or 0, counted.n,
                              [str(w.message) for w in caught])

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, drive()).result()


# -- Range requests -----------------------------------------------------------------------------


@dataclass
class RangeAnswer:
    """What a server answered to a ``Range`` request."""

    status: int
    content_range: str | None
    accept_ranges: str | None
    nbytes: int  # body bytes received
    head: bytes  # the first bytes of the body


def range_request(url: str, first: int, last: int, *, keep: int = 64) -> RangeAnswer:
    """GET ``url`` asking for bytes ``first``..``last`` (inclusive); read the whole answer."""
    with requests.get(url, headers={"Range": f"bytes={first}-{last}"}, stream=True,
                      timeout=60) as response:
        head, nbytes = b"", 0
        for piece in response.iter_content(MiB):
            head = (head + piece)[:keep] if len(head) < keep else head
            nbytes += len(piece)
    return RangeAnswer(response.status_code, response.headers.get("Content-Range"),
                       response.headers.get("Accept-Ranges"), nbytes, head)


@dataclass
class ResumedDownload:
    """A download cut short after ``cut_at`` bytes, then resumed with ``Range``."""

    first_status: int
    cut_at: int
    resume_status: int
    content_range: str | None
    body: bytes = field(repr=False)


def resumed_download(url: str, cut_at: int) -> ResumedDownload:
    """Read ``cut_at`` bytes of ``url`` and drop the connection, as a failed download
    does; then ask for the rest with ``Range: bytes=cut_at-`` and ``If-Range`` (the
    validator of the first answer: only resume if the file is still the same)."""
    with requests.get(url, stream=True, timeout=60) as first:
        start = first.raw.read(cut_at)
        validator = first.headers.get("ETag") or first.headers.get("Last-Modified", "")
    rest = requests.get(url, headers={"Range": f"bytes={len(start)}-", "If-Range": validator},
                        timeout=60)
    return ResumedDownload(first.status_code, len(start), rest.status_code,
                           rest.headers.get("Content-Range"), start + rest.content)
