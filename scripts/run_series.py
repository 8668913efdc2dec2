#!/usr/bin/env python
"""Execute every notebook of the series headless into build/notebooks/ and render HTML.

    python scripts/run_series.py                 # the whole series
    python scripts/run_series.py notebooks/03_*  # some of it

Exit status 1 if any notebook failed; the failing cell's error is in its copy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from streamlab.notebooks import CELL_TIMEOUT, run, series
from streamlab.server import PROJECT_ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "build" / "notebooks")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds per cell")
    parser.add_argument("--no-html", action="store_true", help="skip the HTML rendering")
    args = parser.parse_args(argv)

    paths = [p.resolve() for p in args.notebooks] or series()
    if not paths:
        print("No notebooks found in notebooks/.", file=sys.stderr)
        return 1
    failed = 0
    for path in paths:
        print(f"{path.name:<45} ", end="", flush=True)
        result = run(path, args.out, timeout=args.timeout, html=not args.no_html)
        status = "ok" if result.ok else f"FAILED: {result.error}"
        print(f"{result.seconds:6.1f} s  {status}", flush=True)
        failed += not result.ok
    print(f"{len(paths) - failed} passed, {failed} failed: executed copies and HTML in {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
