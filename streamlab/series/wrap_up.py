"""The wrap-up (notebook 13): its decision guide's claims, checked against recorded figures.

``Evidence`` looks figures up in what ``results.gather()`` returned: a claim is
a function of recorded figures, and it either holds, is contradicted by them,
or is not measured yet: its notebook has not been run here, or ran without
recording a figure the claim needs (nginx where it is not installed, a figure
renamed since). A claim never holds on figures that are not there. ``GUIDE``
and ``HEADLINES`` are the wrap-up's claims and its table of headline figures;
``details`` folds everything else one click away. ``gather`` and ``label``
come from ``results``, so the notebook needs this module alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..environment import package_versions
from ..tables import format_table
from .results import (
    BENCH,
    Figure,
    Recorded,
    folded,
    gather,
    label,
    missing,
    provenance,
    summary_rows,
)

__all__ = [
    "GUIDE", "HEADLINES", "NOT_MEASURED", "AbsentFigure", "Claim", "Evidence", "Headline",
    "MissingResult", "NotMeasured", "contradicted", "details", "gather", "headline_rows",
    "label", "not_measured", "verdict",
]


# -- claims backed by the figures ----------------------------------------------------------


NOT_MEASURED = "not measured yet"


class NotMeasured(LookupError):
    """A claim needs a figure that is not there; ``reason`` says what to do about it."""

    def __init__(self, source: str, reason: str):
        super().__init__(reason)
        self.source = source
        self.reason = reason


class MissingResult(NotMeasured):
    """The source has recorded nothing yet: its notebook (or ``make bench``) has not run."""

    def __init__(self, source: str):
        how = "make bench" if source == BENCH else f"notebook {source}"
        super().__init__(source, f"run {how}")


class AbsentFigure(NotMeasured):
    """The source recorded, but not this figure: it could not measure it here (nginx not
    installed), or the figure's name changed since (re-run the notebook, or fix the name)."""

    def __init__(self, recorded: Recorded, name: str):
        super().__init__(recorded.label, f"{recorded.label} recorded no {name!r}")
        self.name = name


Claim = Callable[["Evidence"], bool]


class Evidence:
    """Recorded figures looked up by source (``"01"``, ``"bench"``) and name.

    ``evidence("01", "big CSV, first byte, streamed")`` returns the value, or
    raises ``NotMeasured`` when it is not there: ``MissingResult`` if the source
    recorded nothing, ``AbsentFigure`` if it recorded without that name. There is
    no default value on purpose: a claim about nginx must not hold because nginx
    never ran.
    """

    def __init__(self, results: Mapping[str, Recorded]):
        self.results = results
        self._read: list[tuple[str, Figure]] = []
        self._wanted: list[str] = []

    def key(self, source: str) -> str | None:
        """The results key for a notebook number (``"05"``) or ``"bench"``, if recorded."""
        return next((k for k in self.results if label(k) == source), None)

    def has(self, source: str) -> bool:
        return self.key(source) is not None

    def figure(self, source: str, name: str) -> Figure:
        """The recorded ``Figure``; ``NotMeasured`` if it is not there."""
        key = self.key(source)
        if key is None:
            raise MissingResult(source)
        figure = self.results[key].figure(name)
        if figure is None:
            raise AbsentFigure(self.results[key], name)
        return figure

    def __call__(self, source: str, name: str) -> float | int | str | bool:
        self._wanted.append(source)
        figure = self.figure(source, name)
        self._read.append((source, figure))
        return figure.value

    def check(self, claims: Mapping[str, Claim]) -> list[dict[str, str]]:
        """Evaluate each claim against the figures: ``holds``, ``CONTRADICTED``, or ``not
        measured yet`` with what to do. Each row lists the figures the claim read."""
        rows = []
        for text, claim in claims.items():
            self._read, self._wanted = [], []
            try:
                result = "holds" if bool(claim(self)) else "CONTRADICTED"
            except NotMeasured as absent:
                result = f"{NOT_MEASURED}: {absent.reason}"
            rows.append({
                "claim": text,
                "from": ", ".join(sorted(set(self._wanted))) or "-",
                "measured": " vs ".join(f.formatted() for _, f in self._read) or "-",
                "result": result,
            })
        return rows

    def values(self, source: str, names: Iterable[str]) -> str:
        """The figures' values joined by ``vs``, or ``not measured yet`` if any is missing."""
        try:
            return " vs ".join(self.figure(source, name).formatted() for name in names)
        except NotMeasured as absent:
            return f"{NOT_MEASURED} ({absent.reason})"


def contradicted(rows: Iterable[Mapping[str, str]]) -> list[str]:
    """The claims among ``Evidence.check`` rows that the figures contradict."""
    return [row["claim"] for row in rows if row["result"] == "CONTRADICTED"]


def not_measured(rows: Iterable[Mapping[str, str]]) -> list[str]:
    """The claims among ``Evidence.check`` rows that could not be checked yet."""
    return [row["claim"] for row in rows if row["result"].startswith(NOT_MEASURED)]


def verdict(rows: Sequence[Mapping[str, str]]) -> str:
    """One line: how many claims hold, are contradicted, are not measured yet."""
    held = sum(row["result"] == "holds" for row in rows)
    return (f"{len(rows)} claims: {held} hold, {len(contradicted(rows))} contradicted, "
            f"{len(not_measured(rows))} {NOT_MEASURED}")


# -- the wrap-up: its headline figures and the claims of its decision guide ---------------


@dataclass(frozen=True)
class Headline:
    """One row of the wrap-up's table: figures of one source, compared side by side."""

    what: str
    source: str
    names: tuple[str, ...]


def _sync_gthread_asgi(name: str) -> tuple[str, ...]:
    return tuple(f"{name}: {kind}" for kind in ("sync", "gthread", "asgi"))


HEADLINES = [
    Headline("first byte of the largest CSV: streamed vs built whole", "04",
             ("first byte, streamed, largest body", "first byte, HttpResponse, largest body")),
    Headline("worker memory rise, same CSV: streamed vs built whole", "04",
             ("worker memory rise, streamed, largest body",
              "worker memory rise, HttpResponse, largest body")),
    Headline("client's peak memory: iter_content vs .content", "04",
             ("client memory peak, iter_content", "client memory peak, .content")),
    Headline("throughput: one row per chunk vs the best chunk size", "04",
             ("throughput, smallest chunks", "throughput, best chunk size")),
    Headline("/hello waiting behind a stream: sync vs gthread vs ASGI worker", "05",
             _sync_gthread_asgi("/hello wait behind a stream")),
    Headline("stream longer than --timeout completed: sync vs gthread vs ASGI", "05",
             _sync_gthread_asgi("stream longer than --timeout completed")),
    Headline("first byte: mismatched iterator/server pairs (fastest) vs matching (slowest)",
             "06", ("first byte, mismatched pairs (fastest)",
                    "first byte, matching pairs (slowest)")),
    Headline("database export, first byte: streamed vs built whole", "07",
             ("DB export, first byte, streamed", "DB export, first byte, built whole")),
    Headline("extra worker memory with DEBUG = True", "07",
             ("extra worker memory with DEBUG on",)),
    Headline("streamed through jupyter-server-proxy with a browser's Accept", "08",
             ("streamed through jupyter-server-proxy, browser Accept",)),
    Headline("streamed through nginx with its default settings", "08",
             ("streamed through nginx, default settings",)),
    Headline("ASGI servers of six that send headers before the first body bytes", "11",
             ("servers sending headers before the first body bytes",)),
    Headline("Daphne, a generator that never awaits: first byte / total time", "11",
             ("Daphne, await-free generator: first byte / total",)),
    Headline("one event to 100 streams on 2 workers, delay p95: LISTEN per worker vs "
             "per stream", "12",
             ("fan-out delay p95, LISTEN per worker", "fan-out delay p95, LISTEN per stream")),
    Headline("PostgreSQL connections for those 100 streams: LISTEN per worker vs per stream", "12",
             ("connections for 100 streams, LISTEN per worker",
              "connections for 100 streams, LISTEN per stream")),
]


def headline_rows(evidence: Evidence, headlines: Iterable[Headline] = HEADLINES
                  ) -> list[dict[str, str]]:
    """The wrap-up's table: each headline's values, or ``not measured yet``, and its source."""
    return [{"measured": h.what, "value": evidence.values(h.source, h.names), "from": h.source}
            for h in headlines]


def details(
    results: Mapping[str, Recorded],
    checked: Mapping[str, Sequence[Mapping[str, str]]],
    installed: Mapping[str, str | None] | None = None,
    expected: Iterable[str] | None = None,
) -> str:
    """The wrap-up's details as folded HTML blocks, one click away: each section's claims
    with the figures behind them, where the numbers come from (dates and versions), what
    has not been run here yet, and every recorded figure."""
    installed = package_versions() if installed is None else installed
    not_yet = missing(results, expected)
    blocks = [folded(f"The claims: {section} ({verdict(rows)})", format_table(rows))
              for section, rows in checked.items()]
    sources = provenance(results, installed)
    stale = sum(row["versions"] != "as installed" for row in sources)
    blocks.append(folded(f"Where the numbers come from: {len(sources)} sources, {stale} "
                         "measured with other versions than the installed ones",
                         format_table(sources) if sources else "nothing recorded yet"))
    todo = [f"run notebooks/{stem}.ipynb" for stem in not_yet]
    if BENCH not in results:
        todo.append("run `make bench` (about a minute) for the benchmark's figures")
    blocks.append(folded(f"Not run here yet: {len(todo)}",
                         "\n".join(todo) or "nothing: every source has recorded"))
    figures = summary_rows(results, installed, not_yet)
    blocks.append(folded(f"Every recorded figure ({sum(r['figure'] != '-' for r in figures)})",
                         format_table(figures)))
    return "\n".join(blocks)


GUIDE: dict[str, dict[str, Claim]] = {
    "when to stream": {
        "large body: the first byte leaves sooner when streamed (01)": lambda v: (
            v("01", "big CSV, first byte, streamed")
            < v("01", "big CSV, first byte, HttpResponse")),
        "large body: the worker's memory rises less when streamed (01)": lambda v: (
            v("01", "big CSV, worker memory rise, streamed")
            < v("01", "big CSV, worker memory rise, HttpResponse")),
        "built whole, the worker's memory rises by more than the body (01)": lambda v: (
            v("01", "big CSV, worker memory rise, HttpResponse") > v("01", "big CSV, body size")),
        "slow producer: the first byte arrives before an HttpResponse is ready (01)": lambda v: (
            v("01", "slow producer, first byte, streamed")
            < v("01", "slow producer, HttpResponse ready")),
        "largest body of 04: first byte sooner, worker memory lower, streamed": lambda v: (
            v("04", "first byte, streamed, largest body")
            < v("04", "first byte, HttpResponse, largest body")
            and v("04", "worker memory rise, streamed, largest body")
            < v("04", "worker memory rise, HttpResponse, largest body")),
        "database export: first byte sooner, worker memory lower, streamed (07)": lambda v: (
            v("07", "DB export, first byte, streamed")
            < v("07", "DB export, first byte, built whole")
            and v("07", "DB export, worker memory rise, streamed")
            < v("07", "DB export, worker memory rise, built whole")),
        "the client: iter_content peaks lower than .content (04)": lambda v: (
            v("04", "client memory peak, iter_content") < v("04", "client memory peak, .content")),
    },
    "how to stream": {
        "a streamed response goes out chunked (01)": lambda v: (
            v("01", "streamed response sent chunked") is True),
        "under Gunicorn's sync worker, one HTTP chunk per item yielded (02)": lambda v: (
            v("02", "HTTP chunks received through Gunicorn")
            == v("02", "body items, StreamingHttpResponse")),
        "an HttpResponse is one item, not chunked with default middleware (02, 03)": lambda v: (
            v("02", "body items, HttpResponse") == 1
            and v("03", "chunked: /hello (HttpResponse), default middleware") is False),
        "chunked framing only for HTTP/1.1 clients (03)": lambda v: (
            v("03", "chunked: HTTP/1.1 GET, streaming")
            and not v("03", "chunked: HTTP/1.0 client")),
        "matching pairs stream: WSGI + sync iterator, ASGI + async iterator (06)": lambda v: (
            v("06", "streamed: WSGI + sync iterator")
            and v("06", "streamed: ASGI + async iterator")),
        "batched chunks are many (5+) times faster than one row per chunk (04)": lambda v: (
            v("04", "throughput, best chunk size") > 5 * v("04", "throughput, smallest chunks")),
        "under WSGI, FileResponse + sendfile costs the worker less CPU (07)": lambda v: (
            v("07", "file download, worker CPU, sendfile / generator") < 1),
        "close() ran for a full and a cut-short body (02)": lambda v: (
            v("02", "request_finished signals, full + cut-short body") == 2),
        "to a browser on Binder: EventSource streams through jupyter-server-proxy (09)":
            lambda v: v("09", "EventSource streamed through jupyter-server-proxy") is True,
        "HTTP/2: a client that grants no credit gets one window, 65,535 bytes (10)": lambda v: (
            v("10", "HTTP/2 bytes sent to a client giving no credit") == 65_535),
        "Django's, on all six ASGI servers: a sync iterator is consumed whole (11)": lambda v: (
            v("11", "ASGI servers buffering a sync iterator") == 6),
        "Django's, on all six ASGI servers: a disconnect cancels the view at once (11)":
            lambda v: v("11", "ASGI servers cancelling at once on disconnect") == 6,
        "several workers: one LISTEN per worker uses fewer connections than one per stream, "
        "and delivers sooner (12)": lambda v: (
            v("12", "connections for 100 streams, LISTEN per worker")
            < v("12", "connections for 100 streams, LISTEN per stream")
            and v("12", "fan-out delay p95, LISTEN per worker")
            < v("12", "fan-out delay p95, LISTEN per stream")),
    },
    "what breaks it": {
        "mismatched pairs do not stream: WSGI + async, ASGI + sync iterator (06)": lambda v: (
            not v("06", "streamed: WSGI + async iterator")
            and not v("06", "streamed: ASGI + sync iterator")),
        "mismatched pairs: first byte later than any matching pair's (06)": lambda v: (
            v("06", "first byte, mismatched pairs (fastest)")
            > v("06", "first byte, matching pairs (slowest)")),
        "mismatched pairs: the worker holds more than any matching pair (06)": lambda v: (
            v("06", "worker memory rise, mismatched pairs (smallest)")
            > v("06", "worker memory rise, matching pairs (largest)")),
        "async generator under WSGI: first item after the sync one's (02)": lambda v: (
            v("02", "first item under WSGI, async generator")
            > v("02", "first item under WSGI, sync generator")),
        "a stream makes /hello wait on sync, not on gthread or ASGI (05)": lambda v: (
            v("05", "/hello wait behind a stream: sync")
            > max(v("05", "/hello wait behind a stream: gthread"),
                  v("05", "/hello wait behind a stream: asgi"))),
        "longer than --timeout: cut on sync, whole on gthread and ASGI (05)": lambda v: (
            not v("05", "stream longer than --timeout completed: sync")
            and v("05", "stream longer than --timeout completed: gthread")
            and v("05", "stream longer than --timeout completed: asgi")),
        "jupyter-server-proxy holds back a browser's request (08)": lambda v: (
            not v("08", "streamed through jupyter-server-proxy, browser Accept")),
        "nginx with its default settings holds back a slow stream (08)": lambda v: (
            not v("08", "streamed through nginx, default settings")),
        "nginx cuts a stream idle longer than proxy_read_timeout, not a busy one (08)": lambda v: (
            v("08", "nginx cut a stream idle longer than proxy_read_timeout")
            and v("08", "nginx kept a stream never idle as long as proxy_read_timeout")),
        "a sync worker serves one event stream at a time (09)": lambda v: (
            v("09", "clients served at once, sync worker") == 1),
        "a sync worker keeps producing tokens after the client left (09)": lambda v: (
            v("09", "tokens produced after the client left, sync worker") > 0),
        "HTTP/2 on gthread: a second stream on one connection waits for the first (10)":
            lambda v: v("10", "gthread: 2nd stream waits for the 1st on one HTTP/2 connection")
            is True,
        "several workers: an in-process queue misses the other workers' streams (12)":
            lambda v: v("12", "in-process queue: share of streams an event reached") < 1,
        "polling the table costs about a query per stream per interval, idle or not (12)":
            lambda v: v("12", "polling queries per second, 40 streams every 100 ms")
            >= 0.5 * 40 * 1000 / 100,
        "DEBUG = True costs the worker extra memory (07)": lambda v: (
            v("07", "extra worker memory with DEBUG on") > 0),
        "under ASGI, FileResponse is read whole into the worker; under WSGI it streams (07)":
            lambda v: (v("07", "FileResponse, worker memory rise, ASGI worker")
                       > 10 * max(v("07", "FileResponse, worker memory rise, sync worker"), 1)),
        "under ASGI, QuerySet.iterator() holds more than aiterator() (07)": lambda v: (
            v("07", "DB export under ASGI, worker memory rise, iterator()")
            > v("07", "DB export under ASGI, worker memory rise, aiterator()")),
        "under ASGI, Django splits one large item into several body messages (06)": lambda v: (
            v("06", "ASGI body messages for one 1 MiB item") > 1),
        "Daphne buffers the body for a client that stops reading; no other server does (11)":
            lambda v: v("11", "servers buffering for a stalled client") == 1,
        "Daphne sends an await-free generator's first byte after half its time (11)":
            lambda v: v("11", "Daphne, await-free generator: first byte / total") > 0.5,
        "Gunicorn's ASGI worker listens with 100, whatever --backlog says (11)": lambda v: (
            v("11", "Gunicorn ASGI listen queue with --backlog 2048") == 100),
        "gevent frees the worker during a stream, not during computation (05)": lambda v: (
            v("05", "/hello wait behind a stream: gevent")
            < v("05", "/hello wait behind a stream: sync")
            and v("05", "/hello wait behind a CPU-bound view: gevent")
            > v("05", "/hello wait behind a CPU-bound view: gthread")),
    },
}
"""The claims of the wrap-up's decision guide, by section, each with the notebook that
measured it. A claim reads recorded figures only; it never holds without them."""
