#!/usr/bin/env python
"""Execute every notebook of the series headless, then build the book from them.

    python scripts/run_series.py                 # the whole series
    python scripts/run_series.py notebooks/03_*  # some of it
    python scripts/run_series.py --no-book       # execute only

Executed copies go to build/notebooks/; the book (build/book/index.html) is
built from every executed copy there, in series order, without running them
again. Exit status 1 if any notebook failed (the failing cell's error is in its
copy and on its page) or the book could not be built.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from streamlab.paths import BUILD_DIR as BUILD
from streamlab.series.book import build_and_report
from streamlab.series.notebooks import CELL_TIMEOUT, run, save_summaries, series


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook")
    parser.add_argument("--out", type=Path, default=BUILD / "notebooks")
    parser.add_argument("--book", type=Path, default=BUILD / "book")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds per cell")
    parser.add_argument("--no-book", "--no-html", dest="no_book", action="store_true",
                        help="execute only, no book")
    args = parser.parse_args(argv)

    paths = [p.resolve() for p in args.notebooks] or series()
    if not paths:
        print("No notebooks found in notebooks/.", file=sys.stderr)
        return 1
    failed, results = [], []
    with tqdm(paths, unit="notebook", desc="executing", leave=False, disable=None) as bar:
        for path in bar:
            bar.set_postfix_str(path.name)
            result = run(path, args.out, timeout=args.timeout)
            results.append(result)
            status = "ok" if result.ok else f"FAILED: {result.error}"
            if result.skipped:
                status = f"skipped: {result.skipped}"
            memory = f"{result.peak_memory / 2**20:6.0f} MiB peak"
            tqdm.write(f"{path.name:<42} {result.seconds:6.1f} s {memory}  {status}")
            if not result.ok:
                failed.append(path)
    summary = save_summaries(results, args.out / "runs.json")
    print(f"{len(paths) - len(failed)} passed, {len(failed)} failed. "
          f"Executed notebooks: {args.out}; times and memory: {summary.name}")
    # Every executed copy in args.out, so notebooks executed by earlier runs stay in.
    if not args.no_book and build_and_report(args.out, args.book, slides=BUILD / "slides"):
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
