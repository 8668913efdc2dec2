"""Validation of query parameters: a bad value becomes a 400 with a one-line reason."""

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest


class BadParameter(ValueError):
    """A query parameter that cannot be used; its message is sent to the client."""


def int_param(request: HttpRequest, name: str, default: int, *, minimum: int, maximum: int) -> int:
    """Read one whole-number parameter, or raise ``BadParameter`` saying what is wrong."""
    values = request.GET.getlist(name)
    if not values:
        return default
    if len(values) > 1:
        raise BadParameter(f"{name} was given {len(values)} times; give it once.")
    raw = values[0].strip()
    if not raw.isascii() or not raw.removeprefix("-").isdigit() or len(raw) > 20:
        raise BadParameter(f"{name} must be a whole number, got {values[0][:40]!r}.")
    value = int(raw)
    if value < minimum or value > maximum:
        raise BadParameter(f"{name} must be between {minimum} and {maximum}, got {value}.")
    return value


def bad_request(error: BadParameter) -> HttpResponse:
    """The 400 response for a bad parameter: its reason as one line of plain text."""
    return HttpResponseBadRequest(f"{error}\n", content_type="text/plain; charset=utf-8")
