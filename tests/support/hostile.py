"""Hostile requests: malformed input for every URL of the demo app, sent over bare sockets.

A tutorial that runs servers on a learner's machine must never fall over on a
typo. This module builds the requests the reliability tests send, and judges
the answers:

* ``demo_urls()`` finds every URL of the demo app through Django's own URL
  resolver (``demo_app.urls``), and for each one the query parameters its view
  accepts, with their bounds and defaults: the view's own declaration,
  ``view.query_params`` (``demo_app.params.query_params``), with any bound
  that is a setting read now. A view added later is covered without editing
  anything here.
* ``corpus()`` turns that table into requests, each with the answer it must
  get: bad values for every parameter (non-numeric, negative, huge, float,
  unicode, repeated, percent-encoding tricks), values for parameters the view
  does not read, oversized headers and request lines, unknown paths, wrong
  methods, HTTP/1.0, HEAD, odd versions and pipelined requests.
* ``send()`` sends one with ``streamlab.wire.http1.exchange``; ``judge()`` reads
  every response on the connection by its framing and lists what is wrong
  (a 5xx, a status other than the expected one, a reason that is not one line
  naming the parameter, a connection the server did not close...).

Where Gunicorn answers before Django sees the request (a request line over
4094 bytes: 414; an oversized or 101st header: 431; a malformed request line
or header: 400), the expected status is Gunicorn's. Where Gunicorn's WSGI
workers and its ASGI worker parse differently, the expectation is given per
worker class, with the reason next to it.
"""

from __future__ import annotations

import inspect
import os
import re
import socket
import struct
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from streamlab.wire.chunked import decode_chunked
from streamlab.wire.framing import IncompleteResponse, body_bytes, is_chunked, split_responses
from streamlab.wire.http1 import RawResponse, build_request, exchange

HOST = "127.0.0.1"
URLCONF = "demo_app.urls"
WORKER_CLASSES = ("sync", "gthread", "asgi")
MIN_PER_URL = 200  # hostile requests per URL, at least
IDLE_TIMEOUT = 10.0  # a server that neither answers nor closes for this long hangs
SILENT_WAIT = 0.3  # how long a request that must get no answer is watched

Statuses = tuple[int, ...]


# -- The demo app's URLs and their parameters ------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A query parameter a view reads: ``kind`` is "int" (with bounds) or "text"; a
    ``required`` one must be sent (its ``example`` is a value the view accepts)."""

    name: str
    kind: str
    default: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    required: bool = False
    example: str | None = None


@dataclass(frozen=True)
class DemoURL:
    """One URL of the demo app, the view behind it, and what the view accepts and needs.

    ``needs`` is the view's declaration of what the server must give it
    (``view.needs``: "asgi", "postgresql"); without it, the view refuses a valid
    request with a status of its own: 501 under a WSGI server, 503 without
    PostgreSQL. ``method`` is the one the corpus sends (GET, or the view's only
    one), ``target`` the path with the required parameters' examples.
    """

    path: str
    view: str  # dotted name of the view function
    params: tuple[Param, ...]
    methods: tuple[str, ...] | None  # the methods the view allows; None: it does not say
    needs: tuple[str, ...] = ()

    @property
    def int_params(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.kind == "int")

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    @property
    def method(self) -> str:
        return "GET" if self.methods is None or "GET" in self.methods else self.methods[0]

    def allows(self, method: str) -> bool:
        return self.methods is None or method in self.methods

    def required(self, leave_out: str = "") -> list[tuple[str, str]]:
        """The required parameters (but ``leave_out``), each at its example value."""
        return [(p.name, p.example or "") for p in self.params
                if p.required and p.name != leave_out]

    def target(self, query: str = "") -> str:
        """The path, with the required parameters and then ``query``."""
        parts = [_query(self.required()), query]
        joined = "&".join(part for part in parts if part)
        return f"{self.path}?{joined}" if joined else self.path

    def served(self, method: str | None = None, *, postgresql: bool = False) -> dict[str, int]:
        """The status a well-formed request gets from each worker class: 405 for a method the
        view does not allow, the view's own refusal for a need the server does not meet
        (the hostile-request servers run on SQLite unless ``postgresql``), else 200."""
        method = method or self.method
        statuses = {}
        for worker_class in WORKER_CLASSES:
            if not self.allows(method):
                statuses[worker_class] = 405
            elif "asgi" in self.needs and worker_class != "asgi":
                statuses[worker_class] = 501
            elif "postgresql" in self.needs and not postgresql:
                statuses[worker_class] = 503
            else:
                statuses[worker_class] = 200
        return statuses


def demo_urls(urlconf: str = URLCONF) -> list[DemoURL]:
    """Every URL of the demo app, found through Django's URL resolver, in URLconf order."""
    _ensure_django()
    from django.urls import get_resolver

    urls: dict[str, DemoURL] = {}
    for route, pattern in _walk(get_resolver(urlconf).url_patterns, ""):
        path = "/" + _sample_route(route, pattern)
        view = pattern.callback
        if path not in urls:
            urls[path] = DemoURL(
                path=path,
                view=f"{view.__module__}.{view.__qualname__}",
                params=view_params(view),
                methods=allowed_methods(view),
                needs=tuple(getattr(view, "needs", ())),
            )
    return list(urls.values())


def _ensure_django() -> None:
    import django
    from django.apps import apps

    if not apps.ready:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_app.settings")
        django.setup()


def _walk(patterns: Iterable, prefix: str) -> Iterator[tuple[str, object]]:
    from django.urls import URLResolver

    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


_CONVERTER_SAMPLES = {
    "int": "1", "str": "x", "slug": "x", "path": "x",
    "uuid": "00000000-0000-0000-0000-000000000000",
}


def _sample_route(route: str, pattern: object) -> str:
    """The route with each ``<converter:name>`` replaced by a value it accepts."""
    from django.urls.resolvers import RoutePattern

    if not isinstance(pattern.pattern, RoutePattern):
        raise ValueError(
            f"URL pattern {route!r} is a regular expression; hostile.demo_urls() only knows "
            "path() routes. Add a sample path for it to _sample_route()."
        )

    def sample(match: re.Match[str]) -> str:
        converter = match[1] or "str"
        if converter not in _CONVERTER_SAMPLES:
            raise ValueError(f"No sample value for the path converter {converter!r} in {route!r}.")
        return _CONVERTER_SAMPLES[converter]

    return re.sub(r"<(?:(\w+):)?\w+>", sample, route)


def allowed_methods(view: object) -> tuple[str, ...] | None:
    """The methods a ``require_http_methods``-style decorator lets through, if any."""
    while view is not None:
        if inspect.isfunction(view):
            methods = inspect.getclosurevars(view).nonlocals.get("request_method_list")
            if methods is not None:
                return tuple(methods)
        view = getattr(view, "__wrapped__", None)
    return None


def view_params(view: object) -> tuple[Param, ...]:
    """The query parameters ``view`` declares (``view.query_params``), settings read now."""
    from demo_app import params

    found = []
    for declared in getattr(view, "query_params", ()):
        if isinstance(declared, params.Param):
            minimum, maximum = declared.bounds()
            found.append(Param(declared.name, "int", declared.default_value(), minimum, maximum))
        else:
            found.append(Param(declared.name, "text", required=declared.required,
                               example=declared.example))
    return tuple(found)


# -- What a response must look like -----------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """The answer a hostile request must get.

    ``statuses`` holds one status per response on the connection, in order
    (several for pipelined requests), for each worker class; ``None`` means
    a single response with any status in ``allowed`` (per worker class).
    ``reason`` names the parameter a 400's one-line body must start with.
    ``methods`` gives each request's method (a response to HEAD has no body).
    ``silent``: the request is incomplete, so the right answer is none; the
    server must wait. ``declared``: 5xx statuses that are the view's declared
    refusal (``DemoURL.needs``), not a failure.
    """

    statuses: Mapping[str, Statuses] | None
    reason: str | None = None
    methods: tuple[str, ...] = ("GET",)
    allow: tuple[str, ...] | None = None  # a 405 must list these in its Allow header
    silent: bool = False
    allowed: Mapping[str, frozenset[int]] = field(default_factory=dict)
    declared: frozenset[int] = frozenset()

    def accepts(self, statuses: Statuses, worker_class: str) -> bool:
        if self.statuses is None:
            return len(statuses) == 1 and statuses[0] in self.allowed[worker_class]
        return statuses == self.statuses[worker_class]


def everywhere(*statuses: int) -> dict[str, Statuses]:
    """The same statuses from every worker class."""
    return dict.fromkeys(WORKER_CLASSES, statuses)


def by_worker(*, sync: Statuses, gthread: Statuses, asgi: Statuses) -> dict[str, Statuses]:
    return {"sync": sync, "gthread": gthread, "asgi": asgi}


def times(served: Mapping[str, int], count: int = 1) -> dict[str, Statuses]:
    """``count`` responses with each worker class's status in ``served``."""
    return {w: (status,) * count for w, status in served.items()}


def declared(url: DemoURL) -> frozenset[int]:
    """The 5xx statuses ``url``'s view gives, by its own declaration, for an unmet need."""
    return frozenset(s for method in {url.method, "GET", "HEAD"}
                     for s in url.served(method).values() if s >= 500)


@dataclass(frozen=True)
class Hostile:
    """One hostile request: the exact bytes sent, and the answer they must get."""

    url: str  # the demo URL it targets (its path)
    category: str
    label: str
    payload: bytes
    expect: Expect
    idle_timeout: float = IDLE_TIMEOUT

    def __str__(self) -> str:
        return f"{self.category}: {self.label} -> {self.url}"


# -- The corpus ---------------------------------------------------------------------------------

# Values that are not a whole number, in their decoded form (sent percent-encoded).
NON_NUMERIC = (
    "abc", "", " ", "one", "1a", "a1", "0x1F", "0o17", "0b101", "1_000", "1,000", "1 2",
    "--5", "+-5", "-+5", "+5", "-", "+", "--", "5-", "true", "null", "None", "[]", "{}",
    "1;2", "'; DROP TABLE demo_app_exportrow; --", "<script>alert(1)</script>",
    "../../etc/passwd", "${jndi:ldap://127.0.0.1/x}", "%s%s%n", "\x00", "1\x00", "\r\n",
    "\t", "5\nX-Injected: yes",
)
FLOATS = ("1.5", "1.0", "0.5", ".5", "5.", "1e2", "1E2", "-1.5", "1,5", "3.14159", "1/2", "NaN",
          "inf", "-inf", "0.0")
# Unicode digits and look-alikes: Python's int() reads several of them, the demo must not.
# (Whitespace that str.strip() removes, like U+00A0, is left out: " 1 " is a valid 1.)
UNICODE = ("\u0663", "\uff15", "\u2460", "\u00b2", "\U0001d7d3", "\u096b", "\u3007", "\u2167",
           "1\u200b", "\ufeff1", "\u0661\u0660\u0660", "\u00e9", "\U0001f600", "1\U0001f600",
           "\u3000", "\ufffd", "\u202e1")
# Query fragments sent exactly as written (bad or sneaky percent-encoding).
RAW_VALUES = ("%zz", "%", "%4", "%ff", "%c3%28", "%ed%a0%80", "%00", "%0d%0aX-Injected:%20yes",
              "1%2e5", "%2d1", "%2B5", "1%00", "%E2%80%AE1")
STRAY_VALUES = ("abc", "-1", "9" * 30, "1.5", "\u0663", "", "1&", "%zz", "<x>", "\x00")
STRAY_NAMES = ("zzz", "rows[]", "ROWS", "r ows", "p\x00", "_", "callback", "format")
WRONG_METHODS = ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO", "PROPFIND")


def corpus(
    urls: Sequence[DemoURL] | None = None, *, min_per_url: int = MIN_PER_URL
) -> list[Hostile]:
    """Every hostile request for every URL (at least ``min_per_url`` each), in a fixed order."""
    urls = list(demo_urls() if urls is None else urls)
    names = sorted({p.name for u in urls for p in u.params})
    requests: list[Hostile] = []
    for url in urls:
        mine = list(_bad_parameters(url)) + list(_protocol(url))
        stray = _stray_parameters(url, names)
        while len(mine) < min_per_url:
            mine.append(next(stray))
        requests += mine
    return requests


def connection_level() -> list[Hostile]:
    """Requests that belong to no URL: bytes that are not HTTP, or a request cut short."""
    silent = Expect(everywhere(), silent=True)
    return [
        Hostile("-", "protocol", "TLS ClientHello on the plain port",
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64), silent,
                SILENT_WAIT),
        Hostile("-", "protocol", "request cut short", b"GET /hello HTTP/1.1\r\nHost: 127",
                silent, SILENT_WAIT),
        Hostile("-", "protocol", "connection with nothing sent", b"", silent, SILENT_WAIT),
        # The asterisk form asks about the server as a whole; Django has no page for it.
        Hostile("-", "protocol", "OPTIONS *", build_request("*", HOST, method="OPTIONS"),
                Expect(everywhere(404))),
    ]


def _get(target: str, **options: object) -> bytes:
    return build_request(target, HOST, **options)  # type: ignore[arg-type]


def _query(pairs: Iterable[tuple[str, str]], *, encoded: bool = False) -> str:
    if encoded:
        return "&".join(f"{n}={v}" for n, v in pairs)
    return "&".join(f"{quote(n, safe='')}={quote(v, safe='')}" for n, v in pairs)


def _defaults(url: DemoURL, leave_out: str) -> list[tuple[str, str]]:
    """The required parameters at their examples and the other int parameters at their
    defaults (all but ``leave_out``), so the bad one is not alone."""
    return url.required(leave_out) + [(p.name, str(p.default)) for p in url.int_params
                                      if p.name != leave_out and p.default is not None]


def _out_of_range(param: Param) -> list[str]:
    """Whole numbers the parameter must refuse: below its minimum, above its maximum."""
    values: list[int] = []
    if param.minimum is not None:
        values += [param.minimum - 1, param.minimum - 1000, -1, -(2**63), -(10**19)]
    if param.maximum is not None:
        values += [param.maximum + 1, param.maximum * 10 + 7, 2**31, 2**32, 2**63, 2**64,
                   10**19, 10**20 - 1]
    bad = [v for v in dict.fromkeys(values)
           if (param.minimum is not None and v < param.minimum)
           or (param.maximum is not None and v > param.maximum)]
    # Longer than any bound: refused as "not a whole number" before any comparison.
    return [str(v) for v in bad] + ["9" * 21, "9" * 100, "9" * 1000, "-" + "9" * 30]


def _bad_parameters(url: DemoURL) -> Iterator[Hostile]:
    for param in url.params:
        yield from _bad_values(url, param)


def _bad_values(url: DemoURL, param: Param) -> Iterator[Hostile]:
    """Bad values for one parameter, the view's other parameters at their defaults.

    An int parameter must refuse every one of them with a 400 and a one-line
    reason. What a text parameter accepts is the view's business, so for one
    of those the status a valid request gets is fine too (``DemoURL.served``);
    a refusal must still be a 400 with its reason. Each is sent with the view's
    method (a POST for a POST-only view, which reads its query the same way).
    """
    others = _defaults(url, param.name)
    refusals = declared(url)
    if param.kind == "int":
        refused: dict[str, Statuses] | None = everywhere(400)
        allowed: dict[str, frozenset[int]] = {}
    else:
        refused = None
        allowed = {w: frozenset({status, 400}) for w, status in url.served().items()}
    reason = Expect(refused, reason=param.name, allowed=allowed, declared=refusals)
    if not url.allows("HEAD"):
        head = Expect(everywhere(405), methods=("HEAD",), allow=url.methods)
    elif param.kind == "int":
        head = Expect(everywhere(400), methods=("HEAD",))
    else:
        head = Expect(None, methods=("HEAD",), declared=refusals, allowed={
            w: frozenset({status, 400}) for w, status in url.served("HEAD").items()})

    def hostile(category: str, label: str, query: str, expect: Expect = reason,
                **options: object) -> Hostile:
        options.setdefault("method", url.method)
        return Hostile(url.path, category, label, _get(f"{url.path}?{query}", **options), expect)

    def bad(value: str, *, encoded: bool = False) -> str:
        return _query([*others, (param.name, value)], encoded=encoded)

    if param.kind == "int":
        for value in NON_NUMERIC:
            yield hostile("non-numeric", f"{param.name}={value!r}", bad(value))
        for value in _out_of_range(param):
            category = "negative" if value.startswith("-") else "huge"
            yield hostile(category, f"{param.name}={value[:30]}", bad(value))
        for value in FLOATS:
            yield hostile("float", f"{param.name}={value}", bad(value))
    else:
        for value in ("", "a" * 65, "a" * 3000, "a b", "../x", "a/b", "a.b", "\x00", "<x>"):
            yield hostile("non-numeric", f"{param.name}={value[:30]!r}", bad(value))
    for value in UNICODE:
        yield hostile("unicode", f"{param.name}={value!r}", bad(value))
    for value in RAW_VALUES:
        yield hostile("encoding", f"{param.name}={value}", bad(value, encoded=True))
    for first, second in (("1", "1"), ("1", "2"), ("", ""), ("1", "x")):
        query = _query([*others, (param.name, first), (param.name, second)])
        yield hostile("repeated", f"{param.name} twice", query, Expect(
            everywhere(400), reason=param.name))
    yield hostile("repeated", f"{param.name} three times",
                  _query([(param.name, "1")] * 3 + others), Expect(
                      everywhere(400), reason=param.name))
    name_encoded = "".join(f"%{ord(c):02X}" if i == 0 else c for i, c in enumerate(param.name))
    yield hostile("encoding", f"name percent-encoded ({name_encoded})",
                  _query([*others, (name_encoded, "x")], encoded=True))
    yield hostile("HTTP/1.0", f"{param.name}=x over HTTP/1.0", bad("x"), version="HTTP/1.0")
    yield hostile("HEAD", f"HEAD {param.name}=x", bad("x"), head, method="HEAD")
    if param.required:
        yield hostile("missing", f"{param.name} left out", _query(others),
                      Expect(everywhere(400), reason=param.name))
    # Raw UTF-8 in the request line: Gunicorn refuses it (400) before Django sees it.
    raw = f"{url.method} {url.path}?{param.name}=\u0663 HTTP/1.1\r\nHost: {HOST}\r\n"
    yield Hostile(url.path, "unicode", f"raw UTF-8 in the query ({param.name})",
                  (raw + "Connection: close\r\n\r\n").encode(), Expect(everywhere(400)))


def _stray_parameters(url: DemoURL, names: Sequence[str]) -> Iterator[Hostile]:
    """Hostile values for parameters this view does not read: ignored, so the answer a
    valid request gets (a 200, unless the view refuses this server: ``DemoURL.served``)."""
    own = {p.name for p in url.params}
    candidates = [n for n in names if n not in own] + list(STRAY_NAMES)
    ok = Expect(times(url.served()), declared=declared(url))
    while True:
        for value in STRAY_VALUES:
            for name in candidates:
                query = _query([(name, value)])
                yield Hostile(url.path, "stray parameter", f"{name!r}={value!r}",
                              _get(url.target(query), method=url.method), ok)


def _protocol(url: DemoURL) -> Iterator[Hostile]:
    """Requests whose problem is not a parameter value: methods, versions, sizes, paths.

    Each is sent with the view's method to its ``target`` (the required parameters
    filled in), so "fine" means the answer a valid request gets (``DemoURL.served``).
    """
    path, method, target = url.path, url.method, url.target()
    served, head_served = url.served(), url.served("HEAD")
    refusals = declared(url)
    ok = Expect(times(served), declared=refusals)
    bad_query = _first_bad_query(url)

    def h(category: str, label: str, payload: bytes, expect: Expect = ok) -> Hostile:
        return Hostile(path, category, label, payload, expect)

    def req(where: str, **options: object) -> bytes:
        options.setdefault("method", method)
        return _get(where, **options)

    def raw(*lines: str) -> bytes:
        return _raw_head(target, f"Host: {HOST}", *lines, method=method)

    def fine(**per_worker: Statuses) -> Expect:
        return Expect({**times(served), **per_worker}, declared=refusals)

    # Wrong methods: most of the demo's views answer only GET and HEAD (require_safe), the
    # publishing view only POST (require_POST).
    for wrong in ("GET", "HEAD", *WRONG_METHODS):
        if not url.allows(wrong):
            framing = ("HEAD",) if wrong == "HEAD" else ("GET",)
            yield h("wrong method", wrong, _get(target, method=wrong),
                    Expect(everywhere(405), allow=url.methods, methods=framing))
    if not url.allows("POST"):
        body = b"rows=1&status=500"
        post = (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: "
                f"application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode() + body
        yield h("wrong method", "POST with a form body", post,
                Expect(everywhere(405), allow=url.methods))
    # Gunicorn only accepts upper-case method tokens (RFC 9110 methods are case-sensitive).
    yield h("wrong method", f"lower-case {method.lower()}", req(target, method=method.lower()),
            Expect(everywhere(400)))
    yield h("wrong method", "method with a space", _get(target, method="G ET"),
            Expect(everywhere(400)))

    # HTTP/1.0 and HEAD.
    head = Expect(times(head_served), methods=("HEAD",), declared=refusals,
                  allow=None if url.allows("HEAD") else url.methods)
    yield h("HTTP/1.0", f"{method} over HTTP/1.0", req(target, version="HTTP/1.0"))
    yield h("HTTP/1.0", "HTTP/1.0 without Host", f"{method} {target} HTTP/1.0\r\n\r\n".encode())
    yield h("HEAD", "HEAD", _get(target, method="HEAD"), head)
    yield h("HEAD", "HEAD over HTTP/1.0", _get(target, method="HEAD", version="HTTP/1.0"), head)

    # Versions Gunicorn does not speak. Its WSGI parser accepts any HTTP/1.x and answers in
    # kind; its ASGI worker accepts only 1.0 and 1.1.
    close = {"Connection": "close"}
    yield h("version", "HTTP/1.2", req(target, version="HTTP/1.2", headers=close),
            fine(asgi=(400,)))
    for version in ("HTTP/2.0", "HTTP/9.9", "HTTP/1", "HTTPS/1.1", "http/1.1"):
        yield h("version", version, req(target, version=version, headers=close),
                Expect(everywhere(400)))
    yield h("version", "HTTP/0.9 (no version)", f"{method} {target}\r\n\r\n".encode(),
            Expect(everywhere(400)))

    # Pipelined requests on one connection. The sync worker handles one request per
    # connection and closes it, so only the first is answered; the others answer each.
    def pipelined(label: str, parts: list[bytes], methods: tuple[str, ...],
                  *columns: Mapping[str, int]) -> Hostile:
        statuses = {w: tuple(column[w] for column in columns) for w in WORKER_CLASSES}
        statuses["sync"] = statuses["sync"][:1]
        return h("pipelined", label, b"".join(parts),
                 Expect(statuses, methods=methods, declared=refusals))

    again = req(target, close=False)
    yield pipelined(f"two {method}s", [again, req(target)], (method,) * 2, served, served)
    yield pipelined(f"HEAD then {method}", [_get(target, method="HEAD", close=False),
                                            req(target)], ("HEAD", method), head_served, served)
    yield pipelined(f"three {method}s", [again, again, req(target)], (method,) * 3,
                    served, served, served)
    if bad_query is not None:
        yield pipelined(f"{method}, bad {method}, {method}",
                        [again, req(f"{path}?{bad_query}", close=False), req(target)],
                        (method,) * 3, served, everywhere_one(400), served)
    # A broken request after a good one: the good one is answered, then the threaded and
    # ASGI workers answer the garbage with a 400 (the sync worker has closed by then).
    yield pipelined(f"{method} then garbage", [again, b"\xff\xfe\r\n\r\n"], (method,) * 2,
                    served, everywhere_one(400))

    # An absolute-form target, as clients send to a proxy (RFC 9112, section 3.2.2: a server
    # must accept it). Gunicorn's WSGI parser takes the path out of it; its ASGI worker
    # passes the whole URL on as the ASGI path, so Django finds no page there: a 404.
    yield h("version", "absolute-form target", req(f"http://{HOST}{target}"), fine(asgi=(404,)))

    # Sizes. Gunicorn's limits: request line 4094 bytes (then 414), a header field 8190
    # bytes and 100 header fields (then 431).
    long_value = "a" * 5000
    yield h("oversized", "request line over 4094 bytes", req(url.target(f"x={long_value}")),
            Expect(everywhere(414)))
    yield h("oversized", "path over 4094 bytes", req(path.rstrip("/") + "/" + "a" * 5000),
            Expect(everywhere(414)))
    yield h("oversized", "query just under the limit", req(url.target(f"x={'a' * 4000}")))
    yield h("oversized", "a 9000-byte header", req(target, headers={"X-Big": "a" * 9000}),
            Expect(everywhere(431)))
    yield h("oversized", "an 8000-byte header", req(target, headers={"X-Big": "a" * 8000}))
    yield h("oversized", "an 8000-byte cookie",
            req(target, headers={"Cookie": "a=" + "b" * 8000}))
    many = {f"X-H{i}": "1" for i in range(120)}
    yield h("oversized", "120 headers", req(target, headers=many), Expect(everywhere(431)))
    yield h("oversized", "1000-byte header name", req(target, headers={"X" * 1000: "1"}))
    # More fields than Django parses (DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000): a view that
    # reads the query gets Django's own 400; one that never looks at it answers normally.
    fields = "a&" * 1100 + "b=1"
    yield h("oversized", "1100 query fields", req(url.target(fields)),
            Expect(everywhere(400)) if url.params else ok)
    yield h("oversized", "600 repeats of a parameter the view ignores",
            req(url.target("&".join(["zzz=1"] * 600))))

    # Unknown paths next to this one.
    for label, unknown in _unknown_paths(path):
        yield h("unknown path", label, _get(unknown), Expect(everywhere(404)))

    # Headers that break the message framing or lie about the host.
    # Django refuses a Host outside ALLOWED_HOSTS (DisallowedHost: its plain 400 page).
    yield h("headers", "Host not allowed", build_request(target, "evil.example", method=method),
            Expect(everywhere(400)))
    yield h("headers", "Host with a path",
            _raw_head(target, "Host: 127.0.0.1/evil", method=method), Expect(everywhere(400)))
    yield h("headers", "two Host headers", raw("Host: evil.example"), Expect(everywhere(400)))
    yield h("headers", "X-Forwarded-Host is ignored",
            req(target, headers={"X-Forwarded-Host": "evil.example"}))
    yield h("headers", "space before the colon", raw("X-A : b"), Expect(everywhere(400)))
    yield h("headers", "obsolete line folding", raw("X-A: b", " c"), Expect(everywhere(400)))
    yield h("headers", "control character in a value", raw("X-A: a\x01b"),
            Expect(everywhere(400)))
    yield h("headers", "bare LF line endings",
            f"{method} {target} HTTP/1.1\nHost: {HOST}\nConnection: close\n\n".encode(),
            Expect(everywhere(400)))
    yield h("headers", "Content-Length and Transfer-Encoding",
            raw("Content-Length: 5", "Transfer-Encoding: chunked") + b"0\r\n\r\n",
            Expect(everywhere(400)))
    yield h("headers", "negative Content-Length", raw("Content-Length: -1"),
            Expect(everywhere(400)))
    yield h("headers", "non-numeric Content-Length", raw("Content-Length: abc"),
            Expect(everywhere(400)))
    yield h("headers", "Transfer-Encoding gzip only", raw("Transfer-Encoding: gzip"),
            Expect(everywhere(400)))
    yield h("headers", "UTF-8 bytes in a value", raw("X-A: \u00e9"))
    # Gunicorn's WSGI parser refuses an expectation it does not know (417); its ASGI
    # worker ignores the header.
    yield h("headers", "Expect: something unknown", req(target, headers={"Expect": "foo"}),
            fine(sync=(417,), gthread=(417,)))
    yield h("headers", "Expect: 100-continue (the interim 100 is skipped)",
            req(target, headers={"Expect": "100-continue"}))
    yield h("headers", "Range: bytes=garbage", req(target, headers={"Range": "bytes=x-y"}))
    yield h("headers", "Accept-Encoding: everything",
            req(target, headers={"Accept-Encoding": "*"}))
    yield h("headers", "garbage request line", b"\xff\xfe\xfd " + target.encode() + b"\r\n\r\n",
            Expect(everywhere(400)))
    yield h("headers", "NUL in the path",
            f"{method} {path}\x00 HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode(),
            Expect(everywhere(400)))


def everywhere_one(status: int) -> dict[str, int]:
    """One status, the same from every worker class (a column of ``pipelined``)."""
    return dict.fromkeys(WORKER_CLASSES, status)


def _raw_head(target: str, *lines: str, method: str = "GET") -> bytes:
    """A request with exactly these header lines (plus Connection: close), however malformed."""
    head = "\r\n".join([f"{method} {target} HTTP/1.1", *lines, "Connection: close"]) + "\r\n\r\n"
    return head.encode("utf-8")


def _first_bad_query(url: DemoURL) -> str | None:
    return f"{url.params[0].name}=x" if url.params else None


def _unknown_paths(path: str) -> Iterator[tuple[str, str]]:
    """Paths next to ``path`` that Django's resolver does not know (checked, not assumed)."""
    from django.urls import Resolver404, resolve

    base = path.rstrip("/")  # "" for the index, so base + "/x" is "/x"
    candidates = [
        ("trailing slash", path + "/"), ("extra letter", path + "x"),
        ("extra segment", base + "/x"), ("dot-dot segment", base + "/../etc/passwd"),
        ("encoded NUL", path + "%00"), ("encoded slash", path + "%2F"),
        ("double slash", "/" + path), ("upper case", path.upper()),
        (".php suffix", path + ".php"), ("percent-encoded é", path + "%C3%A9"),
        ("encoded newline", path + "%0d%0aX-Injected:%20yes"),
    ]
    for label, target in candidates:
        try:
            resolve(_decoded(target), urlconf=URLCONF)
        except Resolver404:
            yield label, target


def _decoded(target: str) -> str:
    from urllib.parse import unquote

    return unquote(urlsplit(target).path)


# -- Sending and judging ----------------------------------------------------------------------


def send(hostile: Hostile, port: int, host: str = HOST) -> RawResponse:
    """Send the request's exact bytes and read until the server closes (or goes quiet)."""
    return exchange(host, port, hostile.payload, idle_timeout=hostile.idle_timeout)


@dataclass
class Answer:
    """The responses read off one connection, split by their framing."""

    statuses: Statuses
    responses: list[RawResponse]
    bodies: list[bytes]  # each body with its framing removed
    leftover: bytes = b""
    error: str | None = None  # why the bytes could not be split into responses


def split(raw: RawResponse, methods: Sequence[str]) -> Answer:
    """Split what came back into responses (interim 1xx ones dropped), each by its framing."""
    try:
        responses, leftover, error = split_responses(raw.data, methods), b"", None
    except IncompleteResponse as incomplete:
        responses, leftover, error = incomplete.responses, incomplete.rest, incomplete.reason
    bodies = []
    for index, response in enumerate(responses):
        framed = body_bytes(response, methods[min(index, len(methods) - 1)])
        bodies.append(decode_chunked(framed).data if is_chunked(response) and framed else framed)
    return Answer(_statuses(responses), responses, bodies, leftover, error)


def _statuses(responses: Sequence[RawResponse]) -> Statuses:
    return tuple(r.status for r in responses)


PROBLEMS = ("5xx", "wrong status", "bad reason", "hang", "framing", "injected header",
            "connection error")


def judge(hostile: Hostile, raw: RawResponse, worker_class: str) -> list[str]:
    """What is wrong with the answer to ``hostile`` (an empty list when nothing is)."""
    expect = hostile.expect
    if expect.silent:
        return [] if raw.data == b"" else ["wrong status"]
    answer = split(raw, expect.methods)
    problems = []
    if any(status >= 500 and status not in expect.declared for status in answer.statuses):
        problems.append("5xx")
    if not expect.accepts(answer.statuses, worker_class):
        problems.append("wrong status")
    if answer.error is not None or answer.leftover:
        problems.append("framing")
    if not raw.closed_by_server:
        problems.append("hang")
    for response, body in zip(answer.responses, answer.bodies, strict=True):
        if "X-Injected" in response.headers:
            problems.append("injected header")
        if expect.reason is not None and response.status == 400 and not is_reason(
            body, expect.reason
        ):
            problems.append("bad reason")
        if response.status == 405 and expect.allow is not None:
            allow = {m.strip() for m in response.headers.get("Allow", "").split(",")}
            if allow != set(expect.allow):
                problems.append("wrong status")
    return sorted(set(problems))


def is_reason(body: bytes, name: str) -> bool:
    """True for a one-line reason that starts with the parameter's name: "rows must be ...\\n"."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return text.endswith("\n") and text.count("\n") == 1 and text.startswith(f"{name} ")


# -- Running a corpus against a server --------------------------------------------------------


@dataclass
class Outcome:
    """How one hostile request fared."""

    hostile: Hostile
    problems: list[str]
    statuses: Statuses
    seconds: float
    error: str | None = None  # what went wrong with the connection itself


@dataclass
class Tally:
    """Counts over many hostile requests: how many, and how many of each problem."""

    requests: int = 0
    per_url: dict[str, int] = field(default_factory=dict)
    per_category: dict[str, int] = field(default_factory=dict)
    problems: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PROBLEMS, 0))
    examples: list[str] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        hostile = outcome.hostile
        self.requests += 1
        self.per_url[hostile.url] = self.per_url.get(hostile.url, 0) + 1
        self.per_category[hostile.category] = self.per_category.get(hostile.category, 0) + 1
        for problem in outcome.problems:
            self.problems[problem] += 1
        if outcome.problems and len(self.examples) < 20:
            got = outcome.error or outcome.statuses
            self.examples.append(f"{hostile} got {got}: {outcome.problems}")

    @property
    def failures(self) -> int:
        return sum(self.problems.values())

    def merged(self, other: Tally) -> Tally:
        """Both tallies' counts together (examples up to the usual 20)."""
        total = Tally(self.requests + other.requests)
        for mine, theirs, into in ((self.per_url, other.per_url, total.per_url),
                                   (self.per_category, other.per_category, total.per_category),
                                   (self.problems, other.problems, total.problems)):
            for key in {**mine, **theirs}:
                into[key] = mine.get(key, 0) + theirs.get(key, 0)
        total.examples = (self.examples + other.examples)[:20]
        return total


def run(hostiles: Iterable[Hostile], port: int, worker_class: str, *, host: str = HOST,
        threads: int = 1) -> Tally:
    """Send every request (``threads`` at a time) and tally the problems."""

    def one(hostile: Hostile) -> Outcome:
        start = time.perf_counter()
        try:
            raw = send(hostile, port, host)
        except OSError as error:  # refused, or reset before anything came back
            return Outcome(hostile, ["connection error"], (), 0.0, repr(error))
        problems = judge(hostile, raw, worker_class)
        statuses = split(raw, hostile.expect.methods).statuses
        return Outcome(hostile, problems, statuses, time.perf_counter() - start)

    tally = Tally()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for outcome in pool.map(one, hostiles):
            tally.add(outcome)
    return tally


# -- A client that leaves in the middle of a download ----------------------------------------


def abort_download(url: str, body_bytes_wanted: int, *, reset: bool = False,
                   timeout: float = 30.0, receive_buffer: int | None = 16 * 1024,
                   ) -> dict[str, object]:
    """GET ``url``, read until ``body_bytes_wanted`` body bytes have arrived, then leave.

    ``reset`` closes with an RST (SO_LINGER 0), as a killed client does; otherwise
    the socket is closed normally (FIN). ``receive_buffer`` is set as SO_RCVBUF
    before connecting, which fixes the window the client offers (Linux doubles
    the value and stops tuning it): once the client stops reading, the server
    can get at most that, plus its own send buffer, ahead of what was read, and
    then its write blocks. Returns what was received, and the receive buffer
    the kernel granted (``receive_buffer``, in bytes).
    """
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    received = bytearray()
    head_end = -1
    family, kind, proto, _, address = socket.getaddrinfo(
        parts.hostname, parts.port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as sock:
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.settimeout(timeout)
        sock.connect(address)
        granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        sock.sendall(build_request(target, parts.netloc))
        while True:
            data = sock.recv(65536)
            if not data:
                break
            received += data
            if head_end < 0:
                head_end = received.find(b"\r\n\r\n")
            if head_end >= 0 and len(received) - head_end - 4 >= body_bytes_wanted:
                break
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return {
        "bytes_received": len(received),
        "body_bytes_received": max(len(received) - head_end - 4, 0) if head_end >= 0 else 0,
        "status_line": bytes(received[: received.find(b"\r\n")]).decode("latin-1"),
        "finished_first": head_end >= 0 and received.endswith(b"0\r\n\r\n"),
        "receive_buffer": granted,
    }
