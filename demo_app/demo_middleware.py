"""Middleware that meets a streaming response (notebook 08): two ways to get it wrong.

Both add an ``X-Body-Bytes`` header with the size of the body, the kind of
thing a logging or metrics middleware does. Neither is for real use:

* ``BodySizeFromContentMiddleware`` reads ``response.content``. A streaming
  response has no ``content`` attribute, so every streaming view fails (500).
* ``BodySizeBufferingMiddleware`` avoids the error by joining
  ``streaming_content`` into one bytes object. That works, but the whole body
  is now produced before the first byte is sent: the stream is gone.

The notebook's exercise writes the version that keeps the stream.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase


class BodySizeFromContentMiddleware:
    """Reads ``response.content``: fine for ``HttpResponse``, an error on a stream."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        response["X-Body-Bytes"] = str(len(response.content))
        return response


class BodySizeBufferingMiddleware:
    """Consumes ``streaming_content`` to measure it, so the stream is buffered whole."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if response.streaming:
            body = b"".join(response.streaming_content)
            response.streaming_content = [body]
        else:
            body = response.content
        response["X-Body-Bytes"] = str(len(body))
        return response
