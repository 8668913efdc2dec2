#!/usr/bin/env python
"""Render the README's reliability table from the figures a whole test run wrote.

    python scripts/reliability_table.py           # rewrite the table in README.md
    python scripts/reliability_table.py --check   # exit 1 if README.md's table differs
    python scripts/reliability_table.py --print   # print the table, change nothing

``make readme-figures`` runs the first form. The figures come from
build/reliability/figures.json, which tests/support/reliability_plugin.py
writes at the end of a run in which every test that records a figure ran (a
whole ``make test``; a partial run writes figures-partial.json instead). The
table replaces what lies between the README's ``<!-- reliability:start -->``
and ``<!-- reliability:end -->`` lines; nothing else in the README changes.
tests/test_reliability_table.py checks that the README's table is a rendering.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamlab.paths import BUILD_DIR, PROJECT_ROOT
from streamlab.tables import between, replace_between

FIGURES = BUILD_DIR / "reliability" / "figures.json"
README = PROJECT_ROOT / "README.md"
START = "<!-- reliability:start -->"
END = "<!-- reliability:end -->"
GENERATED = ("<!-- rendered by scripts/reliability_table.py (make readme-figures) from the "
             "figures of a whole test run: do not edit by hand -->")
HEADER = ["| area | tried | failures and leaks |", "| --- | --- | --- |"]
RESERVED = ("notes", "singular")  # keys of an area that are not counts


@dataclass(frozen=True)
class Row:
    area: str  # its key in figures.json
    what: str  # the first column: what was done (no figures here)
    tried: tuple[str, ...]  # the counts of what was tried; every other count is a failure
    notes: bool = False  # add the area's notes (phrases the tests wrote) after the failures


ROWS = (
    Row("bad input", "bad input: hostile requests to every demo URL on the sync, gthread and "
        "ASGI workers (malformed, huge, unicode and repeated parameters; oversized headers and "
        "query strings; wrong methods; HTTP/1.0, HEAD, pipelining)", ("requests",)),
    Row("disconnects", "disconnects: streaming downloads and database exports aborted at random "
        "points; each generator's cleanup must run (GeneratorExit under WSGI, CancelledError "
        "under ASGI)", ("aborted downloads", "generator cleanups seen")),
    Row("disconnects (event streams)", "disconnects from event streams: /events and /tokens on "
        "the sync, gthread and ASGI workers, each left after its first one to three events; "
        "each generator's cleanup must run", ("aborted event streams", "generator cleanups seen")),
    Row("load", "load: concurrent full downloads on gthread and ASGI, each body verified",
        ("downloads", "verified"), notes=True),
    Row("load (sync worker)", "load on the sync worker (reported, not hidden)",
        ("downloads", "verified"), notes=True),
    Row("process hygiene", "process hygiene: the whole notebook suite, kernel restarts "
        "mid-notebook, an interrupted streaming cell, then whatever the whole suite left running",
        ("notebooks executed", "kernel restarts", "interrupted cells",
         "checks after the whole suite")),
    Row("exposure", "exposure: listening sockets of every server kind, DEBUG in each running "
        "configuration, secrets in tracked files, Django's checks",
        ("servers checked", "listening sockets", "tracked files scanned")),
)


class FiguresError(ValueError):
    """The figures cannot make the table (a partial run, or not a figures file)."""


def _count(value: Any, label: str, singular: dict[str, str]) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FiguresError(f"{label!r}: {value!r} is not a number")
    name = singular.get(label, label) if value == 1 else label
    return f"{value:,} {name}" if isinstance(value, int) else f"{value:g} {name}"


def render(figures: dict[str, Any]) -> str:
    """The markdown table (no trailing newline) for ``figures``, as figures.json holds them."""
    missing = [f"{row.area}: {label}" for row in ROWS for label in row.tried
               if label not in figures.get(row.area, {})]
    if missing:
        raise FiguresError("not the figures of a whole run; missing " + ", ".join(missing))
    lines = list(HEADER)
    for row in ROWS:
        area = figures[row.area]
        singular = area.get("singular", {})
        tried = ", ".join(_count(area[label], label, singular) for label in row.tried)
        failures = ", ".join(_count(value, label, singular) for label, value in area.items()
                             if label not in row.tried and label not in RESERVED)
        if row.notes and area.get("notes"):
            failures += "; " + "; ".join(area["notes"])
        cells = [row.what, tried, failures]
        if any("|" in cell or "\n" in cell for cell in cells):
            raise FiguresError(f"{row.area}: a '|' or line break would break the table")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


_COUNT = re.compile(r"(-?[\d,]+(?:\.\d+)?(?:e[+-]?\d+)?) (.+)")


def _parse_counts(cell: str) -> dict[str, int | float]:
    counts: dict[str, int | float] = {}
    for part in cell.split(", ") if cell else []:
        match = _COUNT.fullmatch(part)
        if match is None:
            raise FiguresError(f"{part!r} is not a count")
        number = match[1].replace(",", "")
        counts[match[2]] = float(number) if "." in number or "e" in number else int(number)
    return counts


def parse(table: str) -> dict[str, Any]:
    """Figures that ``render`` turns back into ``table``: its inverse, for the README check.

    The counts of what was tried are read in the row's order; a count of 1 among the
    failures comes back under the name the table gives it, so rendering it again gives
    the same text.
    """
    lines = table.strip("\n").split("\n")
    if lines[:2] != HEADER or len(lines) != len(HEADER) + len(ROWS):
        raise FiguresError("not the table's header, or not one line per area")
    figures: dict[str, Any] = {}
    for row, line in zip(ROWS, lines[2:], strict=True):
        cells = line.removeprefix("| ").removesuffix(" |").split(" | ")
        if len(cells) != 3 or cells[0] != row.what:
            raise FiguresError(f"expected the row {row.area!r}, found {line!r}")
        _, tried, failures = cells
        notes = []
        if row.notes and "; " in failures:
            failures, rest = failures.split("; ", 1)
            notes = [rest]
        counted = list(_parse_counts(tried).items())
        if len(counted) != len(row.tried):
            raise FiguresError(f"{row.area}: expected {', '.join(row.tried)}; found {tried!r}")
        area: dict[str, Any] = {}
        singular = {}
        for label, (name, value) in zip(row.tried, counted, strict=True):
            area[label] = value
            if name != label:
                singular[label] = name
        area.update(_parse_counts(failures))
        if notes:
            area["notes"] = notes
        if singular:
            area["singular"] = singular
        figures[row.area] = area
    return figures


def replace(readme: str, table: str) -> str:
    """``readme`` with the text between the markers replaced by ``table``."""
    return replace_between(readme, START, END, f"{GENERATED}\n{table}")


def between_markers(readme: str) -> str:
    """What the README has between the markers (its table, and the generated notice)."""
    return between(readme, START, END)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figures", type=Path, default=FIGURES,
                        help="default: build/reliability/figures.json")
    parser.add_argument("--readme", type=Path, default=README)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--check", action="store_true", help="exit 1 if the README differs")
    what.add_argument("--print", action="store_true", help="print the table only")
    args = parser.parse_args(argv)

    if not args.figures.exists():
        print(f"No {args.figures}: run the whole suite first (make test).", file=sys.stderr)
        return 1
    try:
        table = render(json.loads(args.figures.read_text()))
    except (FiguresError, ValueError, AttributeError) as error:
        print(f"{args.figures}: {error}", file=sys.stderr)
        return 1
    if args.print:
        print(table)
        return 0
    readme = args.readme.read_text()
    updated = replace(readme, table)
    if args.check:
        if updated != readme:
            print(f"{args.readme}'s reliability table differs from {args.figures}; "
                  "run make readme-figures", file=sys.stderr)
            return 1
        return 0
    if updated != readme:
        args.readme.write_text(updated)
        print(f"{args.readme}: reliability table rendered from {args.figures}")
    else:
        print(f"{args.readme}: reliability table already matches {args.figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
