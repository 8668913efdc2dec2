"""HTTP/1.x over a plain socket: send exact bytes, get back exact bytes.

An HTTP library hides the framing (chunk sizes, CRLFs, the final zero-length
chunk). This module shows it: what ``curl --raw`` prints, as Python bytes.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from .headers import Headers


@dataclass
class RawResponse:
    """The bytes a server sent, and how the exchange ended."""

    data: bytes
    closed_by_server: bool
    elapsed_s: float

    @property
    def head(self) -> bytes:
        """Status line and headers, up to the blank line."""
        return self.data.partition(b"\r\n\r\n")[0]

    @property
    def body(self) -> bytes:
        """Everything after the blank line, framing included (not decoded)."""
        return self.data.partition(b"\r\n\r\n")[2]

    @property
    def status_line(self) -> str:
        return self.head.split(b"\r\n", 1)[0].decode("latin-1")

    @property
    def status(self) -> int:
        return int(self.status_line.split()[1])

    @property
    def headers(self) -> Headers:
        """The header fields, names as sent, looked up in any case."""
        return Headers.parse(self.head)


def build_request(
    target: str,
    host: str,
    *,
    method: str = "GET",
    version: str = "HTTP/1.1",
    headers: dict[str, str] | None = None,
    close: bool = True,
) -> bytes:
    """The bytes of a request with no body. ``close`` asks the server to close afterwards."""
    lines = [f"{method} {target} {version}", f"Host: {host}"]
    if close and version == "HTTP/1.1":
        lines.append("Connection: close")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def open_connection(
    host: str, port: int, *, timeout: float = 10.0, rcvbuf: int | None = None
) -> socket.socket:
    """A TCP connection to ``host:port``. ``rcvbuf`` shrinks the receive buffer before
    connecting (so the TCP window is small from the start): a slow network, on loopback."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def split_url(url: str) -> tuple[str, int, str, str]:
    """``(host, port, target, netloc)`` of an ``http://host:port/path?query`` URL."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        raise ValueError(f"Expected a URL like http://127.0.0.1:8000/path, got {url!r}.")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, parts.port, target, parts.netloc


def send_request(
    url: str,
    *,
    method: str = "GET",
    version: str = "HTTP/1.1",
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    rcvbuf: int | None = None,
) -> socket.socket:
    """Connect to ``url``'s server and send the request (``Connection: close``); the caller
    reads the answer at its own pace, and closes the socket (it is a context manager)."""
    host, port, target, netloc = split_url(url)
    sock = open_connection(host, port, timeout=timeout, rcvbuf=rcvbuf)
    sock.sendall(build_request(target, netloc, method=method, version=version, headers=headers))
    return sock


def exchange(
    host: str,
    port: int,
    payload: bytes,
    *,
    idle_timeout: float = 1.0,
    max_bytes: int = 16 * 2**20,
) -> RawResponse:
    """Send ``payload`` and read until the server closes, goes quiet for ``idle_timeout``
    seconds (a kept-alive connection), or ``max_bytes`` have arrived."""
    start = time.perf_counter()
    received = bytearray()
    closed = False
    with open_connection(host, port, timeout=idle_timeout) as sock:
        sock.sendall(payload)
        while len(received) < max_bytes:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                closed = True
                break
            if not data:
                closed = True
                break
            received += data
    return RawResponse(bytes(received), closed, time.perf_counter() - start)


def raw_request(
    url: str,
    *,
    method: str = "GET",
    version: str = "HTTP/1.1",
    headers: dict[str, str] | None = None,
    close: bool = True,
    idle_timeout: float = 1.0,
) -> RawResponse:
    """Request ``url`` over a bare socket and return exactly what came back.

    >>> raw_request("http://127.0.0.1:8000/hello_streaming").data   # doctest: +SKIP
    b'HTTP/1.1 200 OK\\r\\n...\\r\\n\\r\\n6\\r\\nHello,\\r\\n8\\r\\n there!\\n\\r\\n0\\r\\n\\r\\n'
    """
    host, port, target, netloc = split_url(url)
    payload = build_request(target, netloc, method=method, version=version, headers=headers,
                            close=close)
    return exchange(host, port, payload, idle_timeout=idle_timeout)
