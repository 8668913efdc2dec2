#!/usr/bin/env python
"""Build the book (build/book/) from the notebooks `make run` has executed, without running them.

    python scripts/build_book.py

Reads the executed copies in build/notebooks/ (all of them, in series order) and
writes build/book/index.html. Exit status 1 if there is nothing to build from or
Sphinx fails, with its message.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from streamlab.paths import BUILD_DIR as BUILD
from streamlab.series.book import build_and_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executed", type=Path, default=BUILD / "notebooks",
                        help="the executed notebooks (default: build/notebooks)")
    parser.add_argument("--out", type=Path, default=BUILD / "book")
    args = parser.parse_args(argv)
    return build_and_report(args.executed, args.out, slides=BUILD / "slides")


if __name__ == "__main__":
    sys.exit(main())
