"""Measured figures that notebooks record, for the wrap-up (notebook 13) to gather.

Each measuring notebook ends by recording its headline figures:

    record("04_measuring_ttfb_and_memory", [
        Figure("TTFB, streamed, 41 MB", m.ttfb_s, "s", "flat with size"),
    ])

which writes ``build/results/04_measuring_ttfb_and_memory.json`` with the
versions it was measured against. Notebook 13 reads them all back with
``load_all()`` (or ``gather()``, which adds the headline figures of
``make bench``), one ``Recorded`` per source; nothing in its summary is typed in.

Each file carries ``SCHEMA_VERSION``. A file of another version (or one
written before files were versioned) is left out with a warning that names
the notebook to run again; the wrap-up then lists that notebook as not
measured yet, as if it had never run.

The wrap-up checks its decision guide against these numbers: ``wrap_up``.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import platform
import re
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from ..environment import package_versions
from ..measurement.bench_results import (
    BenchResults,
    ChunkCosts,
    ChunkSweep,
    ClientMemory,
    SizeSeries,
)
from ..paths import NOTEBOOK_DIR, PROJECT_ROOT
from ..schema import SchemaError, check_schema_version, decode
from ..tables import format_table
from .notebooks import series

RESULTS_DIR = PROJECT_ROOT / "build" / "results"
BENCH_RESULTS = PROJECT_ROOT / "build" / "bench" / "results.json"
BENCH = "bench"  # the key of ``make bench``'s figures in ``gather()``
MiB = 2**20

SCHEMA_VERSION = 1
"""The layout of a notebook's results file (``Recorded.to_dict()``). Raise it when a
field of ``Recorded`` or ``Figure`` changes its name, type or meaning."""


@dataclass
class Figure:
    """One measured value: what it is, the number, its unit, and what it shows."""

    name: str
    value: float | int | str | bool
    unit: str = ""
    shows: str = ""

    def formatted(self) -> str:
        value = self.value
        if isinstance(value, float):
            text = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        elif isinstance(value, int) and not isinstance(value, bool):
            text = f"{value:,}"
        else:
            text = str(value)
        return f"{text} {self.unit}".strip()


@dataclass(frozen=True, kw_only=True)
class Recorded:
    """What one source recorded: a notebook's figures, or the headline figures of ``make bench``.

    ``notebook`` is the source's key: the notebook's file name without
    ``.ipynb``, or ``BENCH``. ``path`` is the file it was read from; it is not
    written into the file.
    """

    schema_version: int = SCHEMA_VERSION
    notebook: str
    recorded: str
    versions: dict[str, str | None]
    figures: list[Figure]
    path: str | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        """The short name of the source: the notebook's number, or ``bench``."""
        return label(self.notebook)

    def names(self) -> list[str]:
        return [f.name for f in self.figures]

    def figure(self, name: str) -> Figure | None:
        """The figure called ``name``, or None if this source did not record one."""
        return next((f for f in self.figures if f.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["path"]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Any, source: str = "recorded results") -> Recorded:
        """Read back what ``to_dict`` gave; a ``SchemaError`` for anything else."""
        remedy = (f"run notebooks/{Path(source).stem}.ipynb again" if source.endswith(".json")
                  else "run its notebook again")
        check_schema_version(data, SCHEMA_VERSION, source, remedy)
        return decode(cls, data, source)

    @classmethod
    def load(cls, path: Path) -> Recorded:
        """Read one notebook's results file; a ``SchemaError`` if this version cannot."""
        try:
            data = json.loads(Path(path).read_text())
        except ValueError as exc:
            raise SchemaError(f"{path} is not JSON ({exc}): run "
                              f"notebooks/{Path(path).stem}.ipynb again.") from None
        return dataclasses.replace(cls.from_dict(data, str(path)), path=str(path))


def results_dir() -> Path:
    """Where notebooks record: ``build/results``, or ``$STREAMLAB_RESULTS_DIR`` if set.

    The variable lets a test (or a learner trying things) run notebooks against
    a scratch directory without touching the series' own results.
    """
    return Path(os.environ.get("STREAMLAB_RESULTS_DIR") or RESULTS_DIR)


def bench_results_path() -> Path:
    """``make bench``'s result file, or ``$STREAMLAB_BENCH_RESULTS`` if set."""
    return Path(os.environ.get("STREAMLAB_BENCH_RESULTS") or BENCH_RESULTS)


def _checked(notebook: str, figures: list[Figure]) -> list[Figure]:
    """Refuse figures the wrap-up could not use: nameless, valueless or ambiguous."""
    if not figures:
        raise ValueError(f"{notebook}: nothing to record.")
    for figure in figures:
        if not isinstance(figure, Figure) or not figure.name:
            raise TypeError(f"{notebook}: record Figure(name, value, ...) objects, got {figure!r}.")
        if not isinstance(figure.value, float | int | str | bool):
            raise TypeError(
                f"{notebook}: {figure.name!r} has a {type(figure.value).__name__} value; "
                "record a number, a string or a bool (e.g. float(x))."
            )
    names = [f.name for f in figures]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{notebook}: each figure needs its own name; repeated: {twice}.")
    return figures


def record(notebook: str, figures: Iterable[Figure], directory: Path | None = None) -> Path:
    """Write ``figures`` for ``notebook`` (its file name without ``.ipynb``), replacing
    what an earlier run of that notebook recorded."""
    figures = _checked(notebook, list(figures))
    directory = results_dir() if directory is None else directory
    directory.mkdir(parents=True, exist_ok=True)
    recorded = Recorded(
        notebook=notebook,
        recorded=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        versions={
            "python": platform.python_version(),
            "django": version("django"),
            "gunicorn": version("gunicorn"),
        },
        figures=figures,
    )
    path = directory / f"{notebook}.json"
    # Written whole, then renamed: a reader never sees half a file.
    partial = path.with_suffix(".json.partial")
    partial.write_text(recorded.to_json())
    partial.replace(path)
    return path


def load_all(directory: Path | None = None) -> dict[str, Recorded]:
    """Every notebook's recorded results, keyed by notebook name, in series order.

    A file this version cannot read (another schema version) is left out with a
    warning saying which notebook to run again; ``missing()`` then lists it.
    """
    directory = results_dir() if directory is None else directory
    if not directory.exists():
        return {}
    results = {}
    for path in sorted(directory.glob("[0-9][0-9]_*.json")):
        try:
            recorded = Recorded.load(path)
        except SchemaError as exc:
            warnings.warn(f"{exc} Until then it counts as not measured.", stacklevel=2)
            continue
        results[recorded.notebook] = recorded
    return results


def format_figures(figures: Iterable[Figure]) -> str:
    """Figures as a plain-text table, for a notebook to show what it just recorded."""
    return format_table({"figure": f.name, "value": f.formatted(), "shows": f.shows}
                        for f in figures)


# -- make bench -----------------------------------------------------------------


def load_bench(path: Path | None = None) -> BenchResults | None:
    """The benchmark's full results (``scripts/bench.py``), or None if it has not been run.

    A ``SchemaError`` if the file is from another version of the benchmark.
    """
    path = bench_results_path() if path is None else path
    if not path.exists():
        return None
    return BenchResults.load(path)


def measurement_figures(
    sizes: SizeSeries, client: ClientMemory, chunks: ChunkSweep, costs: ChunkCosts | None = None
) -> list[Figure]:
    """The headline figures of notebook 04's measurements, which ``make bench`` repeats.

    One list for both, so the wrap-up finds the same names whichever ran; the
    sizes go into ``shows``. The default chunk size and the fixed cost of a
    chunk are included when the sweep measured them.
    """
    streaming, plain = sizes.streaming[-1], sizes.plain[-1]
    smallest, best = chunks.smallest(), chunks.best()
    default = chunks.by_rows().get(chunks.default_chunk_rows)
    medians = f"median of {streaming.repeats}, fresh worker"
    capped = " (the plain view's row cap)" if plain.rows < streaming.rows else ""
    figures = [
        Figure("first byte, streamed, largest body", streaming.ttfb_s, "s",
               f"{streaming.bytes / MiB:,.0f} MiB body, {medians}"),
        Figure("first byte, HttpResponse, largest body", plain.ttfb_s, "s",
               f"{plain.bytes / MiB:,.0f} MiB body{capped}, {medians}"),
        Figure("worker memory rise, streamed, largest body",
               streaming.worker_rss_delta / MiB, "MiB", f"{streaming.bytes / MiB:,.0f} MiB body"),
        Figure("worker memory rise, HttpResponse, largest body",
               plain.worker_rss_delta / MiB, "MiB", f"{plain.bytes / MiB:,.0f} MiB body"),
        Figure("client memory peak, .content", client.content.peak / MiB, "MiB",
               f"{client.bytes / MiB:,.0f} MiB body held whole"),
        Figure("client memory peak, iter_content", client.iter_content.peak / MiB, "MiB",
               f"{client.iter_content.read_size // 1024} KiB reads"),
        Figure("throughput, smallest chunks", smallest.throughput / MiB, "MiB/s",
               f"{smallest.chunk_rows} row(s) per chunk"),
        Figure("throughput, best chunk size", best.throughput / MiB, "MiB/s",
               f"{best.chunk_rows} rows per chunk"),
    ]
    if default is not None:
        figures.append(Figure("throughput, default chunk size", default.throughput / MiB,
                              "MiB/s", f"{default.chunk_rows} rows per chunk"))
    if costs is not None:
        figures.append(Figure("fixed CPU cost of one chunk",
                              (costs.per_chunk_server_s + costs.per_chunk_client_s) * 1e6, "µs",
                              "worker + client"))
    return figures


def bench_figures(bench: BenchResults) -> list[Figure]:
    """The headline figures of a benchmark run, read from its results: notebook 04's, and
    how many of the benchmark's targets were met."""
    missed = [t.name for t in bench.targets if not t.met]
    return [
        *measurement_figures(bench.sizes, bench.client_memory, bench.chunks),
        Figure("targets met", f"{len(bench.targets) - len(missed)} of {len(bench.targets)}",
               "", "missed: " + ", ".join(missed) if missed else "every target of make bench"),
    ]


def bench_result(bench: BenchResults, source: Path | None = None) -> Recorded:
    """A benchmark run as a source of figures, like a notebook's ``Recorded``."""
    return Recorded(
        notebook=BENCH,
        recorded=bench.created,
        versions=dict(bench.machine.versions),
        figures=bench_figures(bench),
        path=str(source or bench_results_path()),
    )


def gather(directory: Path | None = None, bench_path: Path | None = None) -> dict[str, Recorded]:
    """Every notebook's results in series order, then the benchmark's, if it has been run.

    A file this version cannot read is left out with a warning that says what to
    run again, rather than stopping the wrap-up; it then counts as not measured.
    """
    results = load_all(directory)
    path = bench_results_path() if bench_path is None else bench_path
    try:
        bench = load_bench(path)
    except SchemaError as exc:
        warnings.warn(f"{exc} Until then it counts as not measured.", stacklevel=2)
        bench = None
    if bench is not None:
        results[BENCH] = bench_result(bench, path)
    return results


# -- what is there, and what it was measured with ---------------------------------------


def recording_notebooks(directory: Path = NOTEBOOK_DIR) -> list[str]:
    """The notebooks of the series that record figures: their code calls
    ``record("<their own name>", ...)``. A notebook that starts recording is expected
    by the wrap-up without anyone updating a list."""
    stems = []
    for path in series(directory):
        cells = json.loads(path.read_text())["cells"]
        code = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        if re.search(rf"""record\(\s*["']{re.escape(path.stem)}["']""", code):
            stems.append(path.stem)
    return stems


def missing(results: Mapping[str, object], expected: Iterable[str] | None = None) -> list[str]:
    """The recording notebooks (default: all of them) with nothing in ``results`` yet."""
    expected = recording_notebooks() if expected is None else expected
    return [stem for stem in expected if stem not in results]


def version_differences(
    recorded: Mapping[str, str | None], installed: Mapping[str, str | None] | None = None
) -> dict[str, tuple[str | None, str | None]]:
    """``{package: (recorded, installed)}`` for each package both know about that differs."""
    installed = package_versions() if installed is None else installed
    return {name: (recorded[name], installed[name])
            for name in recorded if name in installed and recorded[name] != installed[name]}


def label(key: str) -> str:
    """A short label for a result's source: the notebook's number, or ``bench``."""
    return key if key == BENCH else key[:2]


def _versions_note(data: Recorded, installed: Mapping[str, str | None] | None) -> str:
    differences = version_differences(data.versions, installed)
    if not differences:
        return "as installed"
    return "DIFFERENT: " + ", ".join(f"{name} {was} (now {now})"
                                     for name, (was, now) in differences.items())


def _other_versions(data: Recorded, installed: Mapping[str, str | None] | None) -> str:
    """Empty when measured with the installed versions, else what it was measured with."""
    differences = version_differences(data.versions, installed)
    return ", ".join(f"{name} {was}" for name, (was, _) in differences.items())


def provenance(
    results: Mapping[str, Recorded], installed: Mapping[str, str | None] | None = None
) -> list[dict[str, str]]:
    """One row per source: when it was measured, with which versions, and whether they
    are the ones installed now."""
    installed = package_versions() if installed is None else installed
    return [{"source": key, "recorded": data.recorded,
             **{name: str(data.versions.get(name)) for name in ("python", "django", "gunicorn")},
             "versions": _versions_note(data, installed)}
            for key, data in results.items()]


def summary_rows(
    results: Mapping[str, Recorded],
    installed: Mapping[str, str | None] | None = None,
    expected: Iterable[str] | None = None,
) -> list[dict[str, str]]:
    """Every recorded figure as a table row, then one ``not measured yet`` row for each
    expected notebook (default: every recording notebook) that recorded nothing.

    The last column, ``other versions``, is empty for a figure measured with the
    installed versions, and names the ones it was measured with otherwise.
    """
    installed = package_versions() if installed is None else installed
    rows = []
    for key, data in results.items():
        other = _other_versions(data, installed)
        for figure in data.figures:
            rows.append({"from": label(key), "figure": figure.name, "value": figure.formatted(),
                         "shows": figure.shows, "other versions": other})
    for stem in missing(results, expected):
        rows.append({"from": label(stem), "figure": "-",
                     "value": f"not measured yet: run notebooks/{stem}.ipynb",
                     "shows": "", "other versions": ""})
    return rows


def folded(summary: str, text: str) -> str:
    """HTML for a block that stays folded until clicked: ``text`` (a plain-text table)
    under a ``summary`` line. It folds alike in JupyterLab and in the book."""
    return (f"<details><summary>{html.escape(summary)}</summary>"
            f"<pre>{html.escape(text)}</pre></details>")
