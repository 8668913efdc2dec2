#!/usr/bin/env python
"""Render the instructor guide's table of the series from one run and the notebooks' prose.

    python scripts/guide_table.py                # from build/notebooks/runs.json (make run)
    python scripts/guide_table.py --keep-timings # the words again, the guide's timings kept
    python scripts/guide_table.py --check        # exit 1 if the guide's table differs

``make guide-table`` runs the first form. Compute time and peak memory come from
``runs.json``, which ``scripts/run_series.py`` (``make run``) writes: one line per
notebook, so the table must come from a run of the whole series (a notebook missing
from it is refused, not guessed). The words are the prose of each notebook's
markdown cells, counted now; *present* is those words at WORDS_PER_MINUTE, rounded
up to five minutes. The one idea of each notebook is the only column written by
hand (IDEAS). The table replaces what lies between the guide's
``<!-- series-table:start -->`` and ``<!-- series-table:end -->`` lines;
tests/test_guide_table.py checks that the guide's table is a rendering.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import textwrap
import time
from pathlib import Path

import nbformat

from streamlab.paths import BUILD_DIR, PROJECT_ROOT
from streamlab.series.notebooks import series
from streamlab.tables import between, replace_between

RUNS = BUILD_DIR / "notebooks" / "runs.json"
GUIDE = PROJECT_ROOT / "docs" / "INSTRUCTOR_GUIDE.md"
START = "<!-- series-table:start -->"
END = "<!-- series-table:end -->"
GENERATED = ("<!-- rendered by scripts/guide_table.py (make guide-table) from one run's "
             "runs.json and the notebooks' prose: do not edit by hand -->")
HEADER = ["| notebook | the one idea | words | present | compute | peak memory |",
          "| --- | --- | --- | --- | --- | --- |"]
# Read aloud with a pause at each figure and a question or two: slower than reading alone.
WORDS_PER_MINUTE = 100
MiB = 2**20
IDEAS = {
    "00": "the loop: start Gunicorn from a notebook, request, stop",
    "01": "`HttpResponse` holds a body; `StreamingHttpResponse` holds an iterator",
    "02": "the server loops over the response and writes each item; `close()` ends the request",
    "03": "chunked framing: hex sizes, CRLFs, last chunk; when Gunicorn uses it",
    "04": "streaming's first byte and worker memory stay flat with size; batch your chunks",
    "05": "a stream holds a sync worker; `--timeout` cuts it mid-body",
    "06": "only matching server/iterator pairs stream; mismatches buffer silently",
    "07": "rows from the database (PostgreSQL where installed) and files from disk, under WSGI "
          "and under ASGI",
    "08": "middleware and proxies (nginx, jupyter-server-proxy) can each hold a stream back",
    "09": "a token stream reaches a browser live only if nothing on the way buffers it",
    "10": "the same stream in DATA frames: no chunks, several streams per connection, flow "
          "control",
    "11": "which ASGI lessons are Django's and which the server's: Gunicorn's ASGI worker beside "
          "uvicorn, Daphne, Hypercorn and Granian",
    "12": "an in-process queue misses the other workers' streams; one `LISTEN` per worker "
          "carries every event to every stream",
    "13": "decision guide and checklist, then the headline figures with their sources",
}


class TableError(ValueError):
    """The table cannot be made (a partial run, a notebook without an idea, a bad table)."""


def prose_words(path: Path) -> int:
    """The words of a notebook's markdown cells (code spans and link targets included)."""
    nb = nbformat.read(path, as_version=4)
    return sum(len(cell.source.split()) for cell in nb.cells if cell.cell_type == "markdown")


def present_minutes(words: int) -> int:
    """Minutes to present ``words`` at WORDS_PER_MINUTE, rounded up to five."""
    return max(5, 5 * math.ceil(words / WORDS_PER_MINUTE / 5))


def title(path: Path) -> str:
    """"04 Measuring TTFB and memory": the number and the first heading's words."""
    nb = nbformat.read(path, as_version=4)
    heading = nb.cells[0].source.splitlines()[0].lstrip("# ")
    return re.sub(r"^(\d\d) — ", r"\1 ", heading)


def timings_from_runs(runs: dict) -> dict[str, tuple[float, float]]:
    """Per notebook file name: (seconds, peak MiB), from ``save_summaries``' JSON."""
    timings = {}
    for run in runs["runs"]:
        if not run["ok"] or run.get("skipped"):
            raise TableError(f"{run['notebook']} did not run to the end in that run "
                             f"({run.get('skipped') or run['error']}): run it again")
        timings[run["notebook"]] = (run["seconds"], run["peak_pss_bytes"] / MiB)
    return timings


def render(timings: dict[str, tuple[float, float]], measured: str,
           notebooks: list[Path] | None = None) -> str:
    """The table and its notes (no trailing newline): one row per notebook of the series."""
    notebooks = series() if notebooks is None else notebooks
    absent = [p.name for p in notebooks if p.name not in timings]
    if absent:
        raise TableError("not a run of the whole series; missing " + ", ".join(absent))
    lines = list(HEADER)
    total_words = total_minutes = total_s = 0.0
    for path in notebooks:
        number = path.name[:2]
        if number not in IDEAS:
            raise TableError(f"{path.name} has no entry in IDEAS: say its one idea there")
        words = prose_words(path)
        seconds, peak = timings[path.name]
        minutes = present_minutes(words)
        total_words, total_minutes, total_s = (total_words + words, total_minutes + minutes,
                                               total_s + seconds)
        lines.append(f"| {title(path)} | {IDEAS[number]} | {words:,} | {minutes} min | "
                     f"{seconds:.0f} s | {peak:,.0f} MiB |")
    notes = (
        f"*Words*: the prose of the notebook's markdown cells. *Present*: those words at "
        f"{WORDS_PER_MINUTE} words a minute (read aloud, with a pause at each figure), "
        f"rounded up to five minutes, without the exercises (add 10–15 minutes per notebook "
        f"if the room does them): {total_minutes / 60:.1f} hours for {total_words:,.0f} "
        f"words. *Compute* and *peak memory* come from one headless run of the whole series "
        f"({measured}; `scripts/run_series.py`, which `make run` calls): {total_s / 60:.1f} "
        f"minutes of compute in all. Peak memory is the kernel and every server it started, "
        f"their PSS summed (a page that processes share counts once).")
    lines += ["", textwrap.fill(notes, width=90)]
    return "\n".join(lines)


_ROW = re.compile(r"\| (\d\d) [^|]+ \| .+ \| [\d,]+ \| \d+ min \| (\d+) s \| ([\d,]+) MiB \|")
_MEASURED = re.compile(r"one headless run of the whole series \((.+?); `scripts/run_series")


def parse(table: str, notebooks: list[Path] | None = None) -> tuple[dict, str]:
    """The timings and the run's description that ``render`` turns back into ``table``."""
    notebooks = series() if notebooks is None else notebooks
    by_number = {p.name[:2]: p.name for p in notebooks}
    timings = {}
    for line in table.split("\n")[len(HEADER):]:
        if not line.startswith("| "):
            break
        match = _ROW.fullmatch(line)
        if match is None or match[1] not in by_number:
            raise TableError(f"not a row of the table: {line!r}")
        timings[by_number[match[1]]] = (float(match[2]), float(match[3].replace(",", "")))
    measured = _MEASURED.search(" ".join(table.split()))
    if measured is None:
        raise TableError("the table's notes do not say which run it came from")
    return timings, measured[1]


def describe(path: Path) -> str:
    """When and where the run in ``path`` ran: its date and this machine's cores."""
    day = time.strftime("%Y-%m-%d", time.localtime(path.stat().st_mtime))
    return f"{day}, a {os.cpu_count()}-core machine"


def replace(text: str, table: str) -> str:
    """``text`` with what lies between the markers replaced by ``table``."""
    return replace_between(text, START, END, f"{GENERATED}\n{table}")


def between_markers(text: str) -> str:
    """What the guide has between the markers (its table, without the generated notice)."""
    return between(text, START, END).removeprefix(GENERATED).strip("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=RUNS,
                        help="default: build/notebooks/runs.json")
    parser.add_argument("--guide", type=Path, default=GUIDE)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--check", action="store_true", help="exit 1 if the guide differs")
    what.add_argument("--keep-timings", action="store_true",
                      help="count the words again, keep the guide's compute and memory")
    args = parser.parse_args(argv)

    guide = args.guide.read_text()
    try:
        if args.keep_timings or args.check:
            timings, measured = parse(between_markers(guide))
        elif not args.runs.exists():
            print(f"No {args.runs}: run the whole series first (make run).", file=sys.stderr)
            return 1
        else:
            timings, measured = timings_from_runs(json.loads(args.runs.read_text())), describe(
                args.runs)
        updated = replace(guide, render(timings, measured))
    except (ValueError, KeyError) as error:  # TableError, a bad JSON file, bad markers
        print(f"{args.guide}: {error}", file=sys.stderr)
        return 1
    if args.check:
        if updated != guide:
            print(f"{args.guide}'s table differs from a rendering (a notebook's prose changed?): "
                  "run make guide-table, or scripts/guide_table.py --keep-timings",
                  file=sys.stderr)
            return 1
        return 0
    if updated != guide:
        args.guide.write_text(updated)
    print(f"{args.guide}: the series table rendered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
