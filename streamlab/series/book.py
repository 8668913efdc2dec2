"""The book: the executed notebooks of the series as one static site, built with Sphinx.

``make run`` executes the series into ``build/notebooks/``, then ``build_book`` renders
those executed copies, without running a cell again, with MyST-NB and the Sphinx book
theme into ``build/book/``: a table of contents in series order, previous and next links,
search, the outputs and figures, and each exercise's solution folded until clicked.
``book/conf.py`` holds the configuration that never changes; what depends on the run
(which notebooks, their titles and questions, which failed) is written into
``build/book-src/`` next to copies of the executed notebooks, with Sphinx's own work.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..paths import BUILD_DIR, PROJECT_ROOT
from .notebooks import failed_runs, question, series, title

CONF_DIR = PROJECT_ROOT / "book"
BOOK_TITLE = "Streaming HTTP responses in Django, explained and measured"
SOLUTION_TAG = "solution"
SERIES = frozenset(path.name for path in series())  # the committed notebooks
WORK_MARKER = ".streamlab-book-src"  # marks the folder Sphinx works in as the book's
BUILD_TIMEOUT = 900  # seconds: a generous bound, Sphinx is quick next to executing the series


class BookError(RuntimeError):
    """Sphinx could not build the book, or there was nothing to build it from."""


@dataclass
class Book:
    """A built book: its front page, what Sphinx warned about, and how long it took."""

    index: Path
    pages: list[Path]  # one per notebook, in series order
    warnings: list[str]
    seconds: float

    def describe(self) -> str:
        """One line for the scripts that build it: where it is, how much, how long."""
        return (f"Book: {self.index} (notebooks: {len(self.pages)}; "
                f"built in {self.seconds:.0f} s)")


def read_notebook(text: str) -> nbformat.NotebookNode:
    """Read an executed notebook for the book, folded as JupyterLab shows it.

    MyST-NB folds a cell by its tags (``hide-cell``, ``hide-input``); the series marks
    an exercise's solution with the tag ``solution`` and hides its source in JupyterLab.
    Mapping one to the other here, as the book reads the notebook, leaves the executed
    copy untouched: that copy is what the download button serves.
    """
    nb = nbformat.reads(text, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.setdefault("tags", [])
        if SOLUTION_TAG in tags:
            tags.append("hide-cell")  # code and output, under one "Solution" toggle
            cell.metadata.setdefault("mystnb", {}).update(
                code_prompt_show="Solution", code_prompt_hide="Hide the solution")
        elif cell.metadata.get("jupyter", {}).get("source_hidden"):
            tags.append("hide-input")
    return nb


def write_source(
    notebooks: Sequence[Path], source_dir: Path, *, failed: Collection[str] = (),
    slides: Path | None = None, book_dir: Path | None = None,
) -> Path:
    """Copy ``notebooks`` into ``source_dir`` with a front page listing them in order.

    ``failed`` names the notebooks whose run failed; their entry says so. Where
    ``slides`` holds a notebook's reveal.js deck, its entry links it (relative to
    ``book_dir``, where the book is published).
    """
    read = {}
    for path in notebooks:  # every one read before anything is written
        try:
            read[path] = title(path), question(path)
        except (OSError, ValueError, nbformat.ValidationError) as exc:  # not a notebook
            raise BookError(f"{path} cannot be read as a notebook ({exc}). Execute it again "
                            f"(scripts/run_series.py {path.name}) or remove it.") from exc
    source_dir.mkdir(parents=True, exist_ok=True)
    for path in notebooks:
        shutil.copyfile(path, source_dir / path.name)
    entries = []
    for path in notebooks:
        heading, asked = read[path]
        entry = f"- [{heading}]({path.name})"
        deck = slides / f"{path.stem}.slides.html" if slides is not None else None
        if deck is not None and deck.exists() and book_dir is not None:
            entry += f' · <a href="{Path(os.path.relpath(deck, book_dir)).as_posix()}">slides</a>'
        if path.name in failed:
            entry += " *(failed: see the page for the error)*"
        if asked:
            entry += f"\n\n  {asked[:1].upper()}{asked[1:]}"
        entries.append(entry)
    toctree = "\n".join(path.stem for path in notebooks)
    index = source_dir / "index.md"
    index.write_text(_FRONT_PAGE.format(
        title=BOOK_TITLE, entries="\n\n".join(entries), toctree=toctree), encoding="utf-8")
    return index


_FRONT_PAGE = """# {title}

Each page is a notebook of the series, executed top to bottom against the versions named
in it, with its outputs and figures. Read them in order. Each exercise's solution is
folded under *Solution*: try first, then click.

{entries}

```{{toctree}}
:caption: The series
:hidden:
:maxdepth: 1

{toctree}
```
"""


def build_book(
    notebook_dir: Path = BUILD_DIR / "notebooks", book_dir: Path = BUILD_DIR / "book", *,
    slides: Path | None = None, names: Collection[str] | None = SERIES,
) -> Book:
    """Build the book in ``book_dir`` from the executed notebooks in ``notebook_dir``.

    ``names`` keeps the notebooks the book takes: by default those of the series today,
    so the executed copy of a notebook since renamed or removed is left out; None takes
    every ``NN_*.ipynb`` there.

    Sphinx works in ``book-src/`` next to ``book_dir``, from scratch every time (it is
    quick next to executing the notebooks), so no page outlives its notebook and every
    page is read as the code reads it now; the finished HTML is then copied to ``book_dir``.
    Raises BookError when there is nothing to build from or Sphinx fails, with
    Sphinx's own message.
    """
    notebooks = [p for p in series(notebook_dir) if names is None or p.name in names]
    if not notebooks:
        raise BookError(f"No executed notebooks in {notebook_dir}: run `make run` first "
                        "(or scripts/run_series.py), which executes them there.")
    try:
        failed = failed_runs(notebook_dir / "runs.json")
    except (ValueError, KeyError, TypeError) as exc:  # not the record save_summaries writes
        raise BookError(f"{notebook_dir / 'runs.json'} is not a record of a run ({exc!r}): "
                        "remove it, or run `make run` again.") from exc
    work = book_dir.parent / "book-src"
    source, html = work / "source", work / "html"
    _clear(work, WORK_MARKER, "source/index.md")  # the latter: builds before the marker
    work.mkdir(parents=True)
    (work / WORK_MARKER).write_text("Sphinx's working folder for the book; rebuilt each time.\n")
    write_source(notebooks, source, failed=failed, slides=slides, book_dir=book_dir)
    start = time.perf_counter()
    # A process of its own: Sphinx keeps state in the interpreter, and a failure stays there.
    # MyST-NB writes the images it extracts into `jupyter_execute/`, next to `html/`.
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(CONF_DIR),
               "-d", str(work / "doctrees"), str(source), str(html)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                              cwd=PROJECT_ROOT)
    except subprocess.TimeoutExpired as exc:
        raise BookError(f"Sphinx took more than {BUILD_TIMEOUT} s to build the book "
                        f"from {source}, and was stopped.") from exc
    if done.returncode != 0:
        raise BookError(f"Sphinx could not build the book from {source} "
                        f"(exit status {done.returncode}):\n{done.stderr.strip()}")
    _clear(book_dir, "searchindex.js")  # the last book stays until this one is built
    shutil.copytree(html, book_dir)
    warnings = [line for line in done.stderr.splitlines() if line.strip()]
    pages = [book_dir / f"{path.stem}.html" for path in notebooks]
    return Book(book_dir / "index.html", pages, warnings, time.perf_counter() - start)


def build_and_report(executed: Path, out: Path, *, slides: Path | None = None) -> int:
    """``build_book`` for a command line: the warnings and the result printed, an exit status
    returned (1 with the reason on stderr when the book cannot be built)."""
    try:
        book = build_book(executed, out, slides=slides)
    except BookError as exc:
        print(exc, file=sys.stderr)
        return 1
    for warning in book.warnings:
        print(warning, file=sys.stderr)
    print(book.describe())
    return 0


def _clear(folder: Path, *markers: str) -> None:
    """Remove ``folder`` before a build, unless it holds something other than a build
    (a build has one of ``markers``)."""
    if not folder.exists():
        return
    if not any((folder / marker).exists() for marker in markers) and any(folder.iterdir()):
        raise BookError(f"{folder} holds files that are not an earlier build of the book; "
                        "move them, or build the book somewhere else.")
    shutil.rmtree(folder)
