"""What one benchmark run measured, as typed objects (``build/bench/results.json``).

``bench.run()`` returns a ``BenchResults``; ``plots`` draws it; the wrap-up
notebook reads it back with ``BenchResults.load``. The file's layout is
``SCHEMA_VERSION``: a file of another version is refused with the command
that replaces it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..schema import SchemaError, check_schema_version, decode

MiB = 2**20
KiB = 2**10
LABELS = {"plain": "HttpResponse", "streaming": "StreamingHttpResponse"}
KINDS = ("streaming", "plain")

SCHEMA_VERSION = 1
"""The layout of ``results.json``: the dataclasses below, as ``asdict`` writes them.

Raise it whenever a field changes its name, type, unit or meaning. Files written
before the layout was versioned have no ``schema_version`` at all.
"""


@dataclass
class BenchConfig:
    """What to measure: body sizes in bytes, repeats, and the chunk-size sweep."""

    sizes: list[int]
    repeats: int = 5
    chunk_rows: list[int] = field(
        default_factory=lambda: [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536]
    )
    chunk_body: int = 4 * MiB
    client_body: int = 16 * MiB
    full: bool = False

    @classmethod
    def default(cls) -> BenchConfig:
        """About a minute on two cores; the worker never holds more than ~100 MB."""
        return cls(sizes=[1 * MiB, 4 * MiB, 16 * MiB])

    @classmethod
    def full_run(cls) -> BenchConfig:
        """Streaming up to 1 GiB; the plain response stops at the app's row cap (~39 MiB)."""
        sizes = [1 * MiB, 4 * MiB, 16 * MiB, 64 * MiB, 256 * MiB, 1024 * MiB]
        chunk_rows = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144]
        return cls(sizes=sizes, repeats=3, chunk_rows=chunk_rows, chunk_body=16 * MiB, full=True)


# -- what the series return ---------------------------------------------------------
# Times in seconds, sizes and memory in bytes, throughputs in bytes per second.


@dataclass(frozen=True)
class SizePoint:
    """One kind at one body size: medians over ``repeats`` runs, each on a fresh worker.

    ``chunk_rows`` is the streaming view's default batch (None for the plain
    view); the ``*_runs`` lists keep every run, in the order they were taken.
    """

    kind: str
    rows: int
    bytes: int
    chunk_rows: int | None
    chunked: bool
    repeats: int
    headers_s: float
    ttfb_s: float
    total_s: float
    throughput: float
    worker_rss_baseline: int
    worker_rss_delta: int
    ttfb_s_runs: list[float | None]
    total_s_runs: list[float]
    worker_rss_delta_runs: list[int | None]


@dataclass(frozen=True)
class SizeSeries:
    """The size series: each kind's points, smallest body first."""

    streaming: list[SizePoint]
    plain: list[SizePoint]

    def points(self, kind: str) -> list[SizePoint]:
        """The points of ``kind`` (``"streaming"`` or ``"plain"``)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
        return self.streaming if kind == "streaming" else self.plain


@dataclass(frozen=True)
class ChunkPoint:
    """The streaming view at one ``chunk_rows``, with producing the same rows in-process.

    Medians over the sweep's repeats, except ``generation_best`` (the fastest
    in-process run: the ceiling). ``share`` is streamed over in-process
    throughput; ``cpu_share`` is in-process CPU over worker CPU, None when the
    worker's CPU time was too short to register.
    """

    chunk_rows: int
    chunk_bytes: float
    chunks: int
    throughput: float
    total_s: float
    ttfb_s: float
    server_cpu_s: float
    client_cpu_s: float
    generation_throughput: float
    generation_best: float
    generation_cpu_s: float
    share: float
    cpu_share: float | None
    throughput_runs: list[float]
    generation_throughput_runs: list[float]


@dataclass(frozen=True)
class WholeBody:
    """The plain view for the same rows as a chunk sweep: the end-to-end reference."""

    total_s: float
    ttfb_s: float
    throughput: float


@dataclass(frozen=True)
class ChunkSweep:
    """Throughput against ``chunk_rows`` for one body, in the order the sweep was given."""

    rows: int
    bytes: int
    repeats: int
    read_size: int
    default_chunk_rows: int
    plain: WholeBody
    points: list[ChunkPoint]

    def by_rows(self) -> dict[int, ChunkPoint]:
        """The points keyed by their ``chunk_rows``."""
        return {p.chunk_rows: p for p in self.points}

    def point(self, chunk_rows: int) -> ChunkPoint:
        """The point for ``chunk_rows``; a ValueError naming the sweep if it has none."""
        found = self.by_rows().get(chunk_rows)
        if found is None:
            raise ValueError(f"chunk_rows={chunk_rows} is not in the sweep "
                             f"({sorted(self.by_rows())}).")
        return found

    def best(self) -> ChunkPoint:
        """The chunk size with the highest streaming throughput."""
        return max(self.points, key=lambda p: p.throughput)

    def smallest(self) -> ChunkPoint:
        """The point with the fewest rows per chunk (the most chunks)."""
        return min(self.points, key=lambda p: p.chunk_rows)


@dataclass(frozen=True)
class ChunkCosts:
    """The CPU cost of streaming split into a fixed cost per chunk and a cost per row.

    ``overhead`` is the fixed cost (worker + client) as a fraction of producing
    one chunk's rows in-process; None if producing the rows took no measurable CPU.
    """

    chunk_rows: int
    per_chunk_server_s: float
    per_chunk_client_s: float
    per_row_s: float
    overhead: float | None


@dataclass(frozen=True)
class ArrivalRun:
    """One request's arrival curve: (seconds since sent, body bytes received so far)."""

    ttfb_s: float | None
    total_s: float
    timeline: list[tuple[float, int]]


@dataclass(frozen=True)
class Arrival:
    """The same CSV sent whole and streamed, one run each."""

    rows: int
    bytes: int
    streaming: ArrivalRun
    plain: ArrivalRun

    def run(self, kind: str) -> ArrivalRun:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
        return self.streaming if kind == "streaming" else self.plain


@dataclass(frozen=True)
class ClientPeak:
    """Peak traced Python memory of the client while it read ``bytes`` in one way (``how``)."""

    how: str
    bytes: int
    peak: int
    read_size: int


@dataclass(frozen=True)
class ClientMemory:
    """``.content`` against ``iter_content`` for the same streamed CSV."""

    rows: int
    bytes: int
    content: ClientPeak
    iter_content: ClientPeak


@dataclass(frozen=True)
class Machine:
    """What a result file was measured on; load averages are (1, 5, 15 min)."""

    versions: dict[str, str | None]
    platform: str
    cpus: int | None
    memory_total: int
    load_average: list[float] | None
    load_average_before: list[float] | None = None


@dataclass(frozen=True)
class Target:
    """One target of the benchmark: what it asks, what was measured, and whether it was met."""

    name: str
    target: str
    measured: str
    met: bool


def target_lines(targets: Iterable[Target]) -> list[str]:
    """Each target as the benchmark prints it: met or MISSED, what it asks, what was measured."""
    lines = []
    for t in targets:
        lines.append(f"  [{'met' if t.met else 'MISSED'}] {t.name}: {t.target}")
        lines.append(f"      measured: {t.measured}")
    return lines


@dataclass(frozen=True)
class ProtocolRun:
    """One protocol's reading of the same streamed body: medians over ``repeats`` runs.

    ``framing_bytes`` is what the body's framing added on the wire: chunk-size
    lines and CRLFs for HTTP/1.1, the nine-byte header of every DATA frame for
    HTTP/2. ``head_bytes`` is the response head: the status line and header
    fields, or the HEADERS frame (HPACK-compressed) with its frame header.
    """

    protocol: str
    ttfb_s: float
    total_s: float
    throughput: float
    framing_bytes: int
    head_bytes: int
    pieces_on_wire: int  # chunks, or DATA frames
    ttfb_s_runs: list[float]
    total_s_runs: list[float]


@dataclass(frozen=True)
class Http2Comparison:
    """HTTP/1.1 against HTTP/2 for one streamed CSV, from the same server and run.

    Ratios are HTTP/2 over HTTP/1.1: above 1 means HTTP/2 took longer (TTFB)
    or went faster (throughput). ``window`` is the HTTP/2 client's flow-control
    window, per stream and for the connection.
    """

    worker_class: str
    path: str
    rows: int
    chunk_rows: int
    bytes: int
    pieces: int  # what the view yielded
    repeats: int
    window: int
    http1: ProtocolRun
    http2: ProtocolRun
    ttfb_ratio: float
    throughput_ratio: float


@dataclass(frozen=True, kw_only=True)
class BenchResults:
    """Everything one benchmark run measured: what ``results.json`` holds."""

    schema_version: int = SCHEMA_VERSION
    created: str
    config: BenchConfig
    machine: Machine
    default_chunk_rows: int
    max_plain_rows: int
    sizes: SizeSeries
    chunks: ChunkSweep
    arrival: Arrival
    client_memory: ClientMemory
    elapsed_s: float
    targets: list[Target]
    http2: Http2Comparison | None = None  # None in files written before it was measured

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts, lists and numbers, ready for ``json.dump``."""
        return asdict(self)

    def to_json(self) -> str:
        """The text of ``results.json``."""
        return json.dumps(self.to_dict(), indent=1) + "\n"

    @classmethod
    def from_dict(cls, data: Any, source: str = "the benchmark results") -> BenchResults:
        """Read back what ``to_dict`` gave; a ``SchemaError`` for anything else."""
        check_schema_version(data, SCHEMA_VERSION, source, "run `make bench` again")
        return decode(cls, data, source)

    @classmethod
    def from_json(cls, text: str, source: str = "the benchmark results") -> BenchResults:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SchemaError(f"{source} is not JSON ({exc}): run `make bench` again.") from None
        return cls.from_dict(data, source)

    @classmethod
    def load(cls, path: Path) -> BenchResults:
        """Read ``results.json``; a ``SchemaError`` if it is not in this version's format."""
        return cls.from_json(Path(path).read_text(), str(path))
