"""Measure one HTTP request the way a client experiences it.

``measure()`` sends a GET with ``requests`` in stream mode and times it:

* TTFB: from just before the request is sent (connection set-up included) to
  the moment the first byte of the *body* has been read;
* total time: to the last byte of the body;
* a timeline of (seconds, bytes received so far) for arrival plots.

Given the server, it also samples the resident memory (RSS) of the Gunicorn
workers with psutil while the request runs, and reports the peak above the
baseline taken just before the request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import requests

from ..servers.gunicorn import DemoServer
from ..wire.headers import Headers
from .memory import RssSampler

READ_SIZE = 64 * 1024


@dataclass
class Measurement:
    """What one request looked like from the client, plus the worker's memory."""

    url: str
    status: int
    headers: Headers  # names as sent, looked up in any case (RFC 9110)
    headers_s: float
    ttfb_s: float | None
    total_s: float
    nbytes: int
    timeline: list[tuple[float, int]] = field(repr=False)
    worker_rss_baseline: int | None = None
    worker_rss_delta: int | None = None
    body: bytes | None = field(default=None, repr=False)

    @property
    def chunked(self) -> bool:
        return self.headers.chunked

    @property
    def throughput(self) -> float:
        """Body bytes per second over the whole request."""
        return self.nbytes / self.total_s if self.total_s > 0 else float("nan")

    def summary(self) -> str:
        ttfb = "n/a" if self.ttfb_s is None else f"{self.ttfb_s * 1000:.1f} ms"
        memory = (
            "" if self.worker_rss_delta is None
            else f", worker RSS +{self.worker_rss_delta / 2**20:.1f} MiB"
        )
        length = self.headers.get("Content-Length")
        framing = "chunked" if self.chunked else f"Content-Length {length}"
        return (
            f"{self.status} {framing}: {self.nbytes:,} bytes, TTFB {ttfb}, "
            f"total {self.total_s * 1000:.1f} ms{memory}"
        )


def measure(
    url: str,
    *,
    server: DemoServer | None = None,
    read_size: int = READ_SIZE,
    keep_body: bool = False,
    headers: dict[str, str] | None = None,
    timeout: float = 120.0,
    session: requests.Session | None = None,
    timeline_step: float = 0.001,
) -> Measurement:
    """GET ``url`` in stream mode and time it; sample ``server``'s workers' memory if given.

    The body is read raw (no decompression), so ``nbytes`` is what crossed the
    wire inside the HTTP framing. Timeline points are at least
    ``timeline_step`` seconds apart, so a million tiny chunks do not make a
    million points.
    """
    processes = server.worker_processes() if server is not None else []
    sampler = RssSampler(processes) if processes else None
    http = session or requests.Session()
    body = bytearray() if keep_body else None
    timeline: list[tuple[float, int]] = [(0.0, 0)]
    nbytes = 0
    ttfb = None
    try:
        if sampler:
            sampler.__enter__()
        start = time.perf_counter()
        with http.get(url, stream=True, timeout=timeout, headers=headers) as response:
            headers_s = time.perf_counter() - start
            for piece in _body_pieces(response, read_size):
                now = time.perf_counter() - start
                if ttfb is None:
                    ttfb = now
                nbytes += len(piece)
                if body is not None:
                    body += piece
                if now - timeline[-1][0] >= timeline_step:
                    timeline.append((now, nbytes))
            total = time.perf_counter() - start
    finally:
        if sampler:
            sampler.__exit__(None, None, None)
        if session is None:
            http.close()
    if timeline[-1] != (total, nbytes):
        timeline.append((total, nbytes))
    return Measurement(
        url=url,
        status=response.status_code,
        headers=Headers(response.headers.items()),
        headers_s=headers_s,
        ttfb_s=ttfb,
        total_s=total,
        nbytes=nbytes,
        timeline=timeline,
        worker_rss_baseline=sampler.baseline_total if sampler else None,
        worker_rss_delta=sampler.peak_delta if sampler else None,
        body=bytes(body) if body is not None else None,
    )


def _body_pieces(response: requests.Response, read_size: int):
    """Yield the raw body as it arrives.

    For a chunked body urllib3 hands over each chunk as soon as it is complete.
    For a body with a Content-Length, a read of N bytes waits for all N, so the
    first read asks for one byte: the TTFB is then the first byte's arrival.
    """
    raw = response.raw
    if not raw.chunked:
        first = raw.read(1, decode_content=False)
        if not first:
            return
        yield first
    yield from raw.stream(read_size, decode_content=False)
