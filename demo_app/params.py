"""Query parameters, declared once per view: a bad value becomes a 400 with a one-line reason.

A view lists what it accepts and gets the values as keyword arguments::

    ROWS = Param("rows", minimum=0, maximum="DEMO_MAX_ROWS", default=100)

    @require_safe
    @query_params(ROWS)
    def download_csv(request, rows): ...

The declaration stays on the view as ``view.query_params`` (``functools.wraps``
carries it up through ``require_safe``), so a tool can resolve a URL and ask
what its view accepts: the hostile-request tests build their corpus from it.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest


class BadParameter(ValueError):
    """A query parameter that cannot be used; its message is sent to the client."""


def _single(name: str, values: Sequence[str]) -> str:
    """The one value given; a repeated parameter is refused rather than guessed at."""
    if len(values) > 1:
        raise BadParameter(f"{name} was given {len(values)} times; give it once.")
    return values[0]


def _setting(value: int | str) -> int:
    """``value`` itself, or the setting it names, read now (so ``override_settings`` works)."""
    return getattr(settings, value) if isinstance(value, str) else value


@dataclass(frozen=True)
class Param:
    """A whole-number parameter in ``minimum..maximum``, optionally one of ``choices``.

    ``maximum`` and ``default`` may name a setting instead (``"DEMO_MAX_ROWS"``):
    it is read at each request, so an environment variable or a test can move it.
    """

    name: str
    minimum: int
    maximum: int | str
    default: int | str
    choices: tuple[int, ...] = ()

    def bounds(self) -> tuple[int, int]:
        """The accepted range, with any setting read now."""
        return self.minimum, _setting(self.maximum)

    def default_value(self) -> int:
        """The value used when the request does not give one, with any setting read now."""
        return _setting(self.default)

    def parse(self, values: Sequence[str]) -> int:
        """The value from the query string's ``values`` for this name, or ``BadParameter``."""
        if not values:
            return self.default_value()
        raw = _single(self.name, values).strip()
        if not raw.isascii() or not raw.removeprefix("-").isdigit() or len(raw) > 20:
            raise BadParameter(f"{self.name} must be a whole number, got {values[0][:40]!r}.")
        value = int(raw)
        minimum, maximum = self.bounds()
        if value < minimum or value > maximum:
            raise BadParameter(
                f"{self.name} must be between {minimum} and {maximum}, got {value}."
            )
        if self.choices and value not in self.choices:
            raise BadParameter(f"{self.name} must be one of {self.choices}, got {value}.")
        return value


@dataclass(frozen=True)
class TextParam:
    """A text parameter whose whole value must match ``pattern``: when it is missing, the view
    gets ``None``, or, if ``required``, the client a 400. ``example`` is a value it accepts
    (a tool that must send a valid request reads it)."""

    name: str
    pattern: str
    description: str  # what ``pattern`` accepts, in words, for the 400's reason
    required: bool = False
    example: str | None = None

    def parse(self, values: Sequence[str]) -> str | None:
        """The value from the query string's ``values`` for this name, or ``BadParameter``."""
        if not values:
            if self.required:
                raise BadParameter(f"{self.name} is required: {self.description}.")
            return None
        value = _single(self.name, values)
        if not re.fullmatch(self.pattern, value):
            raise BadParameter(f"{self.name} must be {self.description}, got {value[:40]!r}.")
        return value


AnyParam = Param | TextParam


def parse(request: HttpRequest, params: Sequence[AnyParam]) -> dict[str, Any]:
    """Every declared parameter's value by name, or ``BadParameter`` for the first bad one."""
    return {p.name: p.parse(request.GET.getlist(p.name)) for p in params}


def bad_request(error: BadParameter) -> HttpResponse:
    """The 400 response for a bad parameter: its reason as one line of plain text."""
    return HttpResponseBadRequest(f"{error}\n", content_type="text/plain; charset=utf-8")


def query_params(*params: AnyParam) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a view's query parameters: they are parsed before it runs and passed to it
    as keyword arguments; a bad one is answered with ``bad_request`` and the view never runs.

    Works on sync and async views alike (an async view stays a coroutine function,
    so Django still runs it as one), and sets ``view.query_params = params``.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
                try:
                    values = parse(request, params)
                except BadParameter as error:
                    return bad_request(error)
                return await view(request, *args, **kwargs, **values)

        else:

            @functools.wraps(view)
            def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
                try:
                    values = parse(request, params)
                except BadParameter as error:
                    return bad_request(error)
                return view(request, *args, **kwargs, **values)

        wrapper.query_params = params
        return wrapper

    return decorate
