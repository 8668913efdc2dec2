#!/usr/bin/env python
"""Render every notebook of the series as reveal.js slides into build/slides/.

Uses the executed copy in build/notebooks/ when it is newer than the notebook
(``make run`` makes them); executes the notebook first otherwise, so the
slides always show outputs. Where npm is installed, reveal.js and require.js
are fetched once into build/slides/vendor/ so the decks work offline.
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
from streamlab.series.site import render_slides, vendor_reveal


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook")
    parser.add_argument("--executed", type=Path, default=BUILD / "notebooks")
    parser.add_argument("--out", type=Path, default=BUILD / "slides")
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    vendored = vendor_reveal(args.out)
    if vendored is None:
        print("npm not found: the slides load reveal.js from a CDN when shown.")
    failed = 0
    for path in tqdm([p.resolve() for p in args.notebooks] or series(), unit="deck", disable=None):
        executed = args.executed / path.name
        if not executed.exists() or executed.stat().st_mtime < path.stat().st_mtime:
            result = run(path, args.executed, timeout=CELL_TIMEOUT)  # no HTML needed
            if not result.ok:
                tqdm.write(f"{path.name}: FAILED while executing: {result.error}")
                failed += 1
        nb = nbformat.read(executed, as_version=4)
        deck = render_slides(nb, args.out / f"{path.stem}.slides.html", vendored=vendored)
        tqdm.write(f"{deck.relative_to(PROJECT_ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
