"""WSGI by hand: build an environ, call an application as a server does, serve it on a socket.

PEP 3333 asks very little of a server: build an ``environ`` dict, call
``app(environ, start_response)``, iterate what comes back and send each bytes
item, then call the iterable's ``close()`` if it has one, even after an error.
The helpers below do exactly those steps in plain Python, so a notebook can
watch each one:

* ``call_wsgi`` runs them in-process and records what happened
  (status, headers, every body item, whether ``close()`` was called);
* ``handle`` runs them for one request on a real socket, the way Gunicorn's
  sync worker does, and ``ToyServer`` runs ``handle`` in a loop on a thread.

The toy server is for watching the contract work, not for serving anything:
one connection at a time, no request bodies, no keep-alive, and none of the
special cases of HEAD or 204/304 responses.
"""

from __future__ import annotations

import io
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from ..wire.headers import Headers

HOST = "127.0.0.1"
MAX_HEAD_BYTES = 64 * 1024

Environ = dict[str, Any]
HeaderList = list[tuple[str, str]]
StartResponse = Callable[..., Callable[[bytes], None]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def django_application() -> WSGIApp:
    """The demo app's WSGI callable (Django's ``WSGIHandler``), set up in this process.

    Importing ``demo_app.wsgi`` runs ``django.setup()`` with the demo settings,
    so nothing else needs configuring; the same object is what Gunicorn loads.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_app.settings")
    from demo_app.wsgi import application

    return application


def response_app(response: Any) -> WSGIApp:
    """A WSGI app that serves one ready-made Django response, whatever the request.

    It does what ``WSGIHandler`` does once a view has returned: start the
    response with its status and headers, then hand the response object itself
    to the server as the body iterable. Handy for trying a response class
    without adding a view and a URL.
    """

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
        return response

    return app


def build_environ(
    target: str = "/",
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    protocol: str = "HTTP/1.1",
    server_name: str = HOST,
    server_port: int = 80,
) -> Environ:
    """The ``environ`` a server builds for one request: the PEP 3333 keys and nothing more.

    ``target`` is a path with an optional query (``/download_csv?rows=3``) or
    a full ``http://host:port/path`` URL, whose host and port then win.
    ``PATH_INFO`` holds the percent-decoded path bytes as a latin-1 string,
    which is how PEP 3333 carries bytes inside a ``str``.
    """
    parts = urlsplit(target)
    if parts.scheme:
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"Expected a path or an http:// URL, got {target!r}.")
        server_name, server_port = parts.hostname, parts.port or 80
    if not (parts.path or "/").startswith("/"):
        raise ValueError(f"A request path starts with '/', got {target!r}.")
    environ: Environ = {
        "REQUEST_METHOD": method.upper(),
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(parts.path or "/").decode("latin-1"),
        "QUERY_STRING": parts.query,
        "SERVER_NAME": server_name,
        "SERVER_PORT": str(server_port),
        "SERVER_PROTOCOL": protocol,
        "HTTP_HOST": server_name if server_port == 80 else f"{server_name}:{server_port}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in (headers or {}).items():
        key = name.strip().upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
        else:
            environ["HTTP_" + key] = value
    return environ


class RecordingStartResponse:
    """A ``start_response`` that remembers what the application passed to it.

    Like a real server's, it returns the legacy ``write()`` callable PEP 3333
    requires; bytes given to it are kept in ``written``.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, HeaderList]] = []
        self.written: list[bytes] = []

    def __call__(self, status: str, headers: HeaderList, exc_info: object = None):
        if self.calls and exc_info is None:
            raise AssertionError(
                "start_response was called a second time without exc_info; PEP 3333 allows "
                "that only while handling an error."
            )
        self.calls.append((status, list(headers)))
        return self.written.append

    @property
    def status(self) -> str | None:
        return self.calls[-1][0] if self.calls else None

    @property
    def headers(self) -> HeaderList:
        return self.calls[-1][1] if self.calls else []


@dataclass
class WSGIResult:
    """What one call of a WSGI application produced, as a server saw it."""

    status: str
    headers: HeaderList
    items: list[bytes]
    item_times: list[float] = field(repr=False)
    iterable: object = field(repr=False)
    close_called: bool = False
    start_response_calls: int = 1

    @property
    def body(self) -> bytes:
        return b"".join(self.items)

    @property
    def iterable_type(self) -> str:
        return type(self.iterable).__name__

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), or None if the app did not set it."""
        return Headers(self.headers).get(name)

    def summary(self) -> str:
        sizes = [len(item) for item in self.items]
        shown = ", ".join(map(str, sizes[:6])) + (", ..." if len(sizes) > 6 else "")
        return (
            f"{self.status} | {self.iterable_type} | {len(self.items)} item(s) of [{shown}] "
            f"bytes, {len(self.body):,} in all | close() called: {self.close_called}"
        )


def call_wsgi(
    app: WSGIApp,
    target: str = "/",
    *,
    environ: Environ | None = None,
    max_items: int | None = None,
    **environ_options: Any,
) -> WSGIResult:
    """Call ``app`` the way a WSGI server does and record everything it hands back.

    Iterates the returned iterable (stopping after ``max_items`` items if given,
    as a server does when the client goes away), then calls its ``close()``
    if it has one, in a ``finally`` block, as PEP 3333 requires.
    ``environ_options`` go to ``build_environ`` when no ``environ`` is given.
    """
    environ = environ if environ is not None else build_environ(target, **environ_options)
    start_response = RecordingStartResponse()
    started = time.perf_counter()
    iterable = app(environ, start_response)
    items: list[bytes] = []
    times: list[float] = []
    close_called = False
    try:
        for item in iterable:
            if not isinstance(item, bytes):
                raise TypeError(
                    f"The application yielded {type(item).__name__}, not bytes: PEP 3333 "
                    "body items must be bytes."
                )
            items.append(item)
            times.append(time.perf_counter() - started)
            if max_items is not None and len(items) >= max_items:
                break
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
            close_called = True
    if start_response.status is None:
        raise AssertionError("The application never called start_response.")
    return WSGIResult(
        status=start_response.status,
        headers=start_response.headers,
        items=start_response.written + items,
        item_times=times,
        iterable=iterable,
        close_called=close_called,
        start_response_calls=len(start_response.calls),
    )


# -- a toy server ----------------------------------------------------------------


class ToyResponse:
    """The server's side of one response, modelled on Gunicorn's ``Response``.

    The status line and headers go out with the first ``write``. Without a
    Content-Length, an HTTP/1.1 body is framed as chunked, one chunk per
    ``write``; ``close`` sends the zero-length last chunk. The connection is
    always closed afterwards, as Gunicorn's sync worker does.
    """

    def __init__(self, conn: socket.socket, environ: Environ) -> None:
        self.conn = conn
        protocol = environ.get("SERVER_PROTOCOL", "HTTP/1.1")
        self.protocol = protocol if protocol in ("HTTP/1.0", "HTTP/1.1") else "HTTP/1.1"
        query = environ.get("QUERY_STRING", "")
        self.target = environ.get("PATH_INFO", "/") + ("?" + query if query else "")
        self.status: str | None = None
        self.headers: HeaderList = []
        self.headers_sent = False
        self.chunked = False
        self.writes = 0

    def start_response(self, status: str, headers: HeaderList, exc_info: object = None):
        if self.headers_sent and exc_info is not None:
            raise exc_info[1]  # type: ignore[index]  # too late to change the status
        self.status, self.headers = status, list(headers)
        return self.write

    def send_headers(self) -> None:
        if self.headers_sent:
            return
        if self.status is None:
            raise AssertionError("The application sent body bytes before calling start_response.")
        has_length = "Content-Length" in Headers(self.headers)
        self.chunked = not has_length and self.protocol == "HTTP/1.1"
        lines = [f"{self.protocol} {self.status}", *(f"{n}: {v}" for n, v in self.headers)]
        lines.append("Connection: close")
        if self.chunked:
            lines.append("Transfer-Encoding: chunked")
        self.conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self.headers_sent = True

    def write(self, data: bytes) -> None:
        self.send_headers()
        if not data:
            return  # an empty chunk would mean "end of body"
        self.writes += 1
        self.conn.sendall(b"%x\r\n%s\r\n" % (len(data), data) if self.chunked else data)

    def close(self) -> None:
        self.send_headers()
        if self.chunked:
            self.conn.sendall(b"0\r\n\r\n")


def read_request(conn: socket.socket, server_port: int) -> Environ:
    """Read a request head (no body) from ``conn`` and turn it into an environ."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            raise ConnectionError("The client closed the connection before a full request head.")
        data += piece
        if len(data) > MAX_HEAD_BYTES:
            raise ValueError(f"The request head is over {MAX_HEAD_BYTES} bytes; refusing it.")
    request_line, *header_lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    method, target, protocol = request_line.split(" ")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    return build_environ(
        target, method=method, headers=headers, protocol=protocol, server_port=server_port
    )


def handle(conn: socket.socket, app: WSGIApp, port: int) -> ToyResponse:
    """Serve one request on ``conn``, step for step like ``SyncWorker.handle_request``."""
    environ = read_request(conn, port)
    resp = ToyResponse(conn, environ)
    respiter = app(environ, resp.start_response)
    try:
        for item in respiter:
            resp.write(item)
        resp.close()
    finally:
        if hasattr(respiter, "close"):
            respiter.close()
    return resp


@dataclass
class ToyExchange:
    """One request the toy server handled."""

    target: str
    status: str | None
    chunked: bool
    writes: int
    error: str | None = None


class ToyServer:
    """``handle`` in a loop on a background thread, on 127.0.0.1 and a free port.

    Use it as a context manager, or ``start()`` and ``stop()`` it. Every
    request it answers is appended to ``exchanges``.
    """

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.exchanges: list[ToyExchange] = []
        self.port: int | None = None
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ToyServer:
        if self._thread is not None:
            return self
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.1)  # wake up now and then to see whether to stop
        self.port = self._listener.getsockname()[1]
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="toy-wsgi-server", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._listener is not None and self.port is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break  # the listener was closed
            with conn:
                conn.settimeout(30)
                self._handle_logged(conn)

    def _handle_logged(self, conn: socket.socket) -> None:
        assert self.port is not None
        try:
            resp = handle(conn, self.app, self.port)
        except Exception as error:  # keep serving; the failure is recorded for the reader
            self.exchanges.append(ToyExchange("?", None, False, 0, error=repr(error)))
            return
        self.exchanges.append(ToyExchange(resp.target, resp.status, resp.chunked, resp.writes))

    def url(self, path: str = "/") -> str:
        if self.port is None:
            raise RuntimeError("The toy server has not been started: call start() first.")
        return f"http://{HOST}:{self.port}" + (path if path.startswith("/") else "/" + path)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> ToyServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"on {self.url()}" if self.running else "stopped"
        return f"<ToyServer {state}, {len(self.exchanges)} request(s) handled>"
