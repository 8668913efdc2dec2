"""The bytes on the wire, read by hand.

``http1``: send exact request bytes over a socket and keep exactly what came
back. ``headers``: header fields looked up in any case. ``chunked``: the
chunked transfer coding decoded line by line. ``framing``: where a response's
body ends (no body, last chunk, Content-Length, or the connection's close).
``gunicorn_writer``: Gunicorn's own ``Response`` framing pieces you choose, in
this process, so a notebook can read what a worker would write for them.
``sse``: the text/event-stream format parsed as the WHATWG spec says.
``http2``: HTTP/2 frames (and a request's HPACK block) encoded and decoded by
hand. ``http2_client``: an HTTP/2 client over a raw socket, built on them.
"""
