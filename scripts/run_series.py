#!/usr/bin/env python
"""Execute every notebook of the series headless and render the site.

    python scripts/run_series.py                 # the whole series
    python scripts/run_series.py notebooks/03_*  # some of it

Executed copies go to build/notebooks/, their HTML pages and an index.html
linking them in order to build/site/. Exit status 1 if any notebook failed;
the failing cell's error is in its copy and on its page.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from streamlab.paths import BUILD_DIR as BUILD
from streamlab.series.notebooks import CELL_TIMEOUT, run, save_summaries, series
from streamlab.series.site import write_index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook")
    parser.add_argument("--out", type=Path, default=BUILD / "notebooks")
    parser.add_argument("--site", type=Path, default=BUILD / "site")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds per cell")
    parser.add_argument("--no-html", action="store_true", help="skip the HTML pages")
    args = parser.parse_args(argv)

    paths = [p.resolve() for p in args.notebooks] or series()
    if not paths:
        print("No notebooks found in notebooks/.", file=sys.stderr)
        return 1
    html_dir = None if args.no_html else args.site
    failed, results = [], []
    with tqdm(paths, unit="notebook", desc="executing", leave=False, disable=None) as bar:
        for path in bar:
            bar.set_postfix_str(path.name)
            result = run(path, args.out, timeout=args.timeout, html_dir=html_dir)
            results.append(result)
            status = "ok" if result.ok else f"FAILED: {result.error}"
            memory = f"{result.peak_rss / 2**20:6.0f} MiB peak"
            tqdm.write(f"{path.name:<42} {result.seconds:6.1f} s {memory}  {status}")
            if not result.ok:
                failed.append(path)
    summary = save_summaries(results, args.out / "runs.json")
    print(f"{len(paths) - len(failed)} passed, {len(failed)} failed. "
          f"Executed notebooks: {args.out}; times and memory: {summary.name}")
    if html_dir is not None:
        # Pages from earlier runs of other notebooks stay linked.
        site_pages = [p for p in series() if (html_dir / p.with_suffix(".html").name).exists()]
        index = write_index(site_pages, html_dir, failed=failed, slides_dir=BUILD / "slides")
        print(f"Site: {index}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
