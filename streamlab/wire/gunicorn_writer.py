"""Gunicorn's own ``Response`` writing a body in this process, so its bytes can be read.

Gunicorn's sync and gthread workers hand every item of a WSGI body to
``gunicorn.http.wsgi.Response``: ``start_response`` chooses the framing,
``write`` frames each item, ``close`` ends the body. ``written_by_gunicorn``
drives that very class with pieces of your choosing (an empty one, say, which
no demo view yields) and returns what it wrote to one end of a socket pair:
the bytes a worker would send for them, without starting a server.

Only the parsed request is a stand-in: ``Response`` reads nothing from it but
the HTTP version, the method and whether the client asked to close.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable
from types import SimpleNamespace

from .http1 import RawResponse


def written_by_gunicorn(
    pieces: Iterable[bytes],
    *,
    headers: Iterable[tuple[str, str]] = (),
    status: str = "200 OK",
    version: str = "HTTP/1.1",
    method: str = "GET",
) -> RawResponse:
    """The bytes Gunicorn's ``Response`` writes for ``pieces`` (status line, headers, body).

    >>> written_by_gunicorn([b"Hello", b"", b"!"]).body
    b'5\\r\\nHello\\r\\n1\\r\\n!\\r\\n0\\r\\n\\r\\n'
    """
    from gunicorn.config import Config
    from gunicorn.http.wsgi import Response

    major, minor = (int(n) for n in version.removeprefix("HTTP/").split("."))
    request = SimpleNamespace(version=(major, minor), method=method, should_close=lambda: False)
    sender, receiver = socket.socketpair()
    received = bytearray()
    # Read while Gunicorn writes: a body larger than the socket buffer would block otherwise.
    reader = threading.Thread(target=_read_all, args=(receiver, received), daemon=True)
    reader.start()
    try:
        response = Response(request, sender, Config())
        response.start_response(status, list(headers))
        for piece in pieces:
            response.write(piece)
        response.close()
    finally:
        sender.close()  # the reader sees the end of the stream
        reader.join(timeout=10)
        receiver.close()
    return RawResponse(bytes(received), closed_by_server=True, elapsed_s=0.0)


def _read_all(sock: socket.socket, into: bytearray) -> None:
    while data := sock.recv(65536):
        into += data
