"""Where a response's body ends, as a client must work it out (RFC 9112, section 6.3).

No body (HEAD, 1xx, 204, 304), the last chunk, a Content-Length, or the
connection's close: ``body_end`` names which, ``body_bytes`` cuts the body
out, ``split_responses`` separates the responses of one kept-alive
connection, and ``observe_framing`` reports what a server chose for a URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from .chunked import decode_chunked
from .http1 import RawResponse, raw_request


def is_chunked(response: RawResponse) -> bool:
    """True when the response announces ``Transfer-Encoding: chunked``."""
    return response.headers.chunked


def body_end(response: RawResponse, method: str = "GET") -> str:
    """How a client knows where this response's body ends (RFC 9112, section 6.3).

    The rules are tried in the order the RFC gives them: no body at all for a
    HEAD request or a 1xx/204/304 status, then chunked framing, then
    Content-Length; with none of those, the body runs until the server closes
    the connection.
    """
    if method == "HEAD" or response.status in (204, 304) or response.status < 200:
        return "no body"
    if is_chunked(response):
        return "last chunk"
    length = response.headers.get("Content-Length")
    if length is not None:
        return f"after {length} bytes"
    return "connection close"


def body_bytes(response: RawResponse, method: str = "GET") -> bytes:
    """The body's bytes as the framing delimits them (still chunk-framed if chunked)."""
    end = body_end(response, method)
    if end == "no body":
        return b""
    if end == "last chunk":
        return response.body[: decode_chunked(response.body).framed_length]
    if end.startswith("after "):
        return response.body[: int(response.headers.get("Content-Length") or 0)]
    return response.body


def observe_framing(url: str, *, method: str = "GET", version: str = "HTTP/1.1",
                    **labels: str) -> dict[str, object]:
    """Request ``url`` over a bare socket and report the framing the server chose.

    ``labels`` (e.g. ``condition="HEAD"``) become the first columns of the row.
    The body is checked against its framing: a chunked body must decode, a
    Content-Length body must be complete, a body that runs to the connection's
    close must have been closed by the server.
    """
    response = raw_request(url, method=method, version=version)
    end = body_end(response, method)
    if end == "last chunk":
        decode_chunked(response.body)  # raises if the framing is broken
    if end.startswith("after ") and len(response.body) < int(response.headers["Content-Length"]):
        raise ValueError(f"{url}: the body is shorter than its Content-Length; it was cut short.")
    if end == "connection close" and not response.closed_by_server:
        raise ValueError(f"{url}: no length and no chunking, yet the server kept the connection.")
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return {
        **labels,
        "request": f"{method} {target} {version}",
        "status": response.status,
        "Transfer-Encoding": response.headers.get("Transfer-Encoding") or "-",
        "Content-Length": response.headers.get("Content-Length") or "-",
        "Connection": response.headers.get("Connection") or "-",
        "body ends": end,
        "body bytes": len(body_bytes(response, method)),
        "chunked": is_chunked(response),
    }


class IncompleteResponse(ValueError):
    """The bytes stop, or stop making sense, before the response they begin is complete.

    ``responses`` holds the complete responses before it; ``rest`` the bytes
    from the start of the one that failed.
    """

    def __init__(self, reason: str, responses: list[RawResponse], rest: bytes) -> None:
        super().__init__(f"{reason} after {len(responses)} complete response(s)")
        self.reason = reason
        self.responses = responses
        self.rest = rest


def split_responses(
    data: bytes, methods: str | Sequence[str] = "GET", *, keep_interim: bool = False
) -> list[RawResponse]:
    """Split the bytes of several responses sent on one connection, using each one's framing.

    This is the reason framing exists: on a kept-alive connection, the client
    can only find where one response ends, and the next begins, by reading it.
    ``methods`` are the requests' methods in order (a HEAD's answer has no
    body); the last one stands for any further responses. Interim 1xx
    responses (a ``100 Continue``) are dropped unless ``keep_interim``.
    Raises ``IncompleteResponse`` where a head, a chunked body or a
    Content-Length body is cut short.
    """
    methods = [methods] if isinstance(methods, str) else list(methods)
    responses: list[RawResponse] = []
    while data:
        head, sep, after = data.partition(b"\r\n\r\n")
        if not sep:
            raise IncompleteResponse("incomplete head", responses, data)
        response = RawResponse(data, closed_by_server=False, elapsed_s=0.0)
        method = methods[min(len(responses), len(methods) - 1)]
        try:
            status = response.status
            framed = body_bytes(response, method)
        except (IndexError, ValueError) as error:
            raise IncompleteResponse(f"unreadable response: {error}", responses, data) from error
        declared = response.headers.get("Content-Length")
        if body_end(response, method).startswith("after ") and len(framed) < int(declared):
            raise IncompleteResponse("body cut short", responses, data)
        length = len(head) + len(sep) + len(framed)
        if status >= 200 or keep_interim:
            responses.append(RawResponse(data[:length], closed_by_server=False, elapsed_s=0.0))
        data = data[length:]
    return responses
