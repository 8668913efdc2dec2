#!/usr/bin/env python
"""Render every notebook of the series as reveal.js slides into build/slides/.

Uses the executed copy in build/notebooks/ when it is newer than the notebook
(``make run`` makes them); executes the notebook first otherwise, so the
slides always show outputs. reveal.js, the one thing the decks load, is copied
from the project (streamlab/series/vendor/) into build/slides/vendor/, so the
folder can be zipped and presented with no network.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from tqdm import tqdm

from streamlab.paths import BUILD_DIR as BUILD
from streamlab.paths import PROJECT_ROOT
from streamlab.series.notebooks import CELL_TIMEOUT, run, series
from streamlab.series.slides import copy_reveal, render_slides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook")
    parser.add_argument("--executed", type=Path, default=BUILD / "notebooks")
    parser.add_argument("--out", type=Path, default=BUILD / "slides")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)} (they are in notebooks/)")

    args.out.mkdir(parents=True, exist_ok=True)
    copy_reveal(args.out)
    failed = 0
    for path in tqdm([p.resolve() for p in args.notebooks] or series(), unit="deck", disable=None):
        executed = args.executed / path.name
        if not executed.exists() or executed.stat().st_mtime < path.stat().st_mtime:
            result = run(path, args.executed, timeout=CELL_TIMEOUT)  # no HTML needed
            if not result.ok:
                tqdm.write(f"{path.name}: FAILED while executing: {result.error}")
                failed += 1
        nb = nbformat.read(executed, as_version=4)
        try:
            deck = render_slides(nb, args.out / f"{path.stem}.slides.html")
        except ValueError as exc:
            tqdm.write(f"{path.name}: FAILED: {exc}")
            failed += 1
            continue
        deck = deck.resolve()
        shown = deck.relative_to(PROJECT_ROOT) if deck.is_relative_to(PROJECT_ROOT) else deck
        tqdm.write(str(shown))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
