"""Execute the notebooks of the series headless, and read what each one is about.

One implementation for ``make run`` (scripts/run_series.py), ``make slides``,
the book (``streamlab.series.book``) and the tests: each notebook runs in a
fresh kernel with the notebooks folder as its working directory, exactly as
when a learner opens it in JupyterLab, while the memory of the kernel and of
every server it starts is sampled.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

from ..measurement.memory import TreeMemorySampler
from ..paths import NOTEBOOK_DIR

CELL_TIMEOUT = 180  # seconds any one cell may take before the run fails


def series(directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """The notebooks of the series in order (their names start with a number)."""
    return sorted(p for p in directory.glob("[0-9][0-9]_*.ipynb"))


def title(path: Path) -> str:
    """The notebook's title: the first line of its first markdown cell, without the ``#``."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.strip():
            return cell.source.strip().splitlines()[0].lstrip("#").strip()
    return path.stem


def question(path: Path) -> str:
    """The question a notebook answers: the bold-labelled line of its first cell, if any."""
    nb = nbformat.read(path, as_version=4)
    text = nb.cells[0].source if nb.cells else ""
    for paragraph in text.split("\n\n"):
        if "question" in paragraph.lower() and "**" in paragraph:
            sentence = " ".join(paragraph.split()).split(":**", 1)[-1]
            return sentence.replace("**", "").strip()
    return ""


@dataclass
class RunResult:
    """How one headless run of a notebook went."""

    path: Path
    seconds: float
    error: str | None
    peak_memory: int  # bytes: kernel plus every process it started, PSS summed, at the peak
    notebook: nbformat.NotebookNode
    executed: Path | None = None
    skipped: str | None = None  # why it was not run: something it needs is not installed

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> dict:
        """The figures worth keeping, JSON-ready."""
        return {
            "notebook": self.path.name, "seconds": round(self.seconds, 2),
            "peak_pss_bytes": self.peak_memory, "ok": self.ok, "error": self.error,
            "skipped": self.skipped,
        }


def needs(nb: nbformat.NotebookNode) -> list[str]:
    """What a notebook cannot run without, from its metadata (``"streamlab": {"needs":
    ["postgresql"]}``): notebook 12 is about PostgreSQL's LISTEN/NOTIFY, and has no
    SQLite fallback the way notebook 07 has."""
    return list(nb.metadata.get("streamlab", {}).get("needs", []))


def missing_needs(nb: nbformat.NotebookNode) -> str | None:
    """Why the notebook cannot run here (None: it can)."""
    from ..servers.postgres import postgres_available

    if "postgresql" in needs(nb) and not postgres_available():
        return ("it needs PostgreSQL, which is not installed here (Debian: apt-get install "
                "postgresql; Binder installs it)")
    return None


def run(
    path: Path,
    out_dir: Path | None = None,
    *,
    timeout: int = CELL_TIMEOUT,
    env: dict[str, str] | None = None,
) -> RunResult:
    """Execute ``path`` in a fresh kernel; never raise for a failing cell.

    The executed copy goes to ``out_dir`` when given. A notebook that fails is
    still written, with the error in the failing cell's output, so the reader can
    see where and why. ``env`` adds environment variables for the kernel (e.g.
    ``STREAMLAB_FULL``).
    """
    nb = nbformat.read(path, as_version=4)
    absent = missing_needs(nb)
    if absent is not None:  # not run, not failed: nothing is written
        return RunResult(path, 0.0, None, 0, nb, skipped=absent)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        # The kernel's start-up warning about unencrypted local TCP is noise here.
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    start = time.perf_counter()
    error = None
    with TreeMemorySampler(psutil.Process()) as memory, _environment(env or {}):
        try:
            client.execute()
        except (CellExecutionError, CellTimeoutError) as exc:
            error = _describe(exc)
    result = RunResult(path, time.perf_counter() - start, error, memory.peak_total, nb)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        result.executed = out_dir / path.name
        nbformat.write(nb, result.executed)
    return result


ARROW = re.compile(r"^\s*-+>\s*(\d+\s.*)$")


def _describe(exc: Exception) -> str:
    """The error's last line, and the notebook line that raised it.

    A bare ``assert`` says only "AssertionError:"; the line (IPython marks it
    with an arrow, ``---->`` or ``--->``) says which check failed, which CI logs need.
    """
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # no terminal colours
    if not text:
        return type(exc).__name__
    lines = text.splitlines()
    cell = next((line for line in lines if line.lstrip().startswith("Cell In[")), "")
    # IPython's arrow is "---->" before a one-digit line number, "--->" before two digits.
    raised = next((m[1].strip() for m in map(ARROW.match, lines) if m), "")
    where = f" [{cell.strip()}: {raised}]" if raised else ""
    return lines[-1].strip() + where


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for a kernel about to start, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def save_summaries(results: list[RunResult], destination: Path) -> Path:
    """Record each notebook's run time and peak memory (JSON), merged with earlier runs."""
    summaries = {}
    if destination.exists():
        summaries = {s["notebook"]: s for s in json.loads(destination.read_text())["runs"]}
    summaries.update({r.path.name: r.summary() for r in results})
    destination.parent.mkdir(parents=True, exist_ok=True)
    runs = [summaries[name] for name in sorted(summaries)]
    destination.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    return destination


def failed_runs(summaries: Path) -> set[str]:
    """The notebooks whose last run failed, from the record ``save_summaries`` writes."""
    if not summaries.exists():
        return set()
    return {s["notebook"] for s in json.loads(summaries.read_text())["runs"] if not s["ok"]}
