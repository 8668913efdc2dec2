"""Execute the notebooks of the series headless and render them to HTML.

One implementation for ``make run`` (scripts/run_series.py) and the tests:
each notebook runs in a fresh kernel with the notebooks folder as its working
directory, exactly as it does when a learner opens it in JupyterLab.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

from .server import PROJECT_ROOT

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
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


@dataclass
class RunResult:
    path: Path
    seconds: float
    error: str | None
    executed: Path | None = None
    html: Path | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def execute(path: Path, *, timeout: int = CELL_TIMEOUT) -> nbformat.NotebookNode:
    """Run every cell of ``path`` in a fresh kernel; raise if a cell fails or times out."""
    nb = nbformat.read(path, as_version=4)
    _client(nb, path, timeout).execute()
    return nb


def _client(nb: nbformat.NotebookNode, path: Path, timeout: int) -> NotebookClient:
    return NotebookClient(
        nb, timeout=timeout, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        # The kernel's start-up warning about unencrypted local TCP is noise here.
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )


def render_html(nb: nbformat.NotebookNode, destination: Path) -> Path:
    """Write ``nb`` (already executed) as a standalone HTML page."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    destination.write_text(body, encoding="utf-8")
    return destination


def run(
    path: Path, out_dir: Path, *, timeout: int = CELL_TIMEOUT, html_dir: Path | None = None
) -> RunResult:
    """Execute one notebook into ``out_dir`` (and render it into ``html_dir``);
    never raise for a failing cell.

    A notebook that fails is still written, with the error in the failing
    cell's output, so the reader can see where and why.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    error = None
    try:
        _client(nb, path, timeout).execute()
    except (CellExecutionError, CellTimeoutError) as exc:
        error = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    seconds = time.perf_counter() - start
    executed = out_dir / path.name
    nbformat.write(nb, executed)
    page = None
    if html_dir is not None:
        html_dir.mkdir(parents=True, exist_ok=True)
        page = render_html(nb, html_dir / path.with_suffix(".html").name)
    return RunResult(path, seconds, error, executed, page)
