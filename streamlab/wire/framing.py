"""Where a response's body ends, as a client must work it out (RFC 9112, section 6.3).

No body (HEAD, 1xx, 204, 304), the last chunk, a Content-Length, or the
connection's close: ``body_end`` names which, ``body_bytes`` cuts the body
out, ``split_responses`` separates the responses of one kept-alive
connection, and ``observe_framing`` reports what a server chose for a URL.
"""

from __future__ import annotations

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


def split_responses(data: bytes, method: str = "GET") -> list[RawResponse]:
    """Split the bytes of several responses sent on one connection, using each one's framing.

    This is the reason framing exists: on a kept-alive connection, the client
    can only find where one response ends, and the next begins, by reading it.
    """
    responses = []
    while data:
        head, sep, after = data.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError(f"Incomplete response head after {len(responses)} response(s).")
        response = RawResponse(head + sep + after, closed_by_server=False, elapsed_s=0.0)
        length = len(head) + len(sep) + len(body_bytes(response, method))
        responses.append(RawResponse(data[:length], closed_by_server=False, elapsed_s=0.0))
        data = data[length:]
    return responses
