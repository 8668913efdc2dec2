"""Plain-text tables for notebooks, scripts and test summaries (no pandas needed).

The one table formatter of the project: the benchmark's report, the figures a
notebook records and the wrap-up's tables all build rows of dicts and call
``format_table``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping


def format_table(
    rows: Iterable[Mapping[str, object]],
    *,
    right: Collection[str] = (),
    title: str | None = None,
) -> str:
    """Rows of dicts as a plain-text table with aligned columns (no pandas needed).

    The columns are the rows' keys, in the order they first appear; a row
    without a key leaves that cell empty. Columns are left-aligned, except the
    ones named in ``right`` (numbers, so they line up on the last digit).
    ``title``, if given, is the first line.
    """
    rows = list(rows)
    head = [title] if title else []
    if not rows:
        return "\n".join([*head, "(no rows)"])
    columns = list(dict.fromkeys(key for row in rows for key in row))
    unknown = [name for name in right if name not in columns]
    if unknown:
        raise ValueError(f"right names columns the rows do not have: {unknown}; "
                         f"the columns are {columns}.")
    cells = [[str(row.get(col, "")) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]

    def line(texts: list[str]) -> str:
        return "  ".join(text.rjust(width) if col in right else text.ljust(width)
                         for text, width, col in zip(texts, widths, columns, strict=True))

    lines = [line(columns), "  ".join("-" * w for w in widths), *(line(r) for r in cells)]
    return "\n".join([*head, *(text.rstrip() for text in lines)])


# -- Rendered tables inside a document ----------------------------------------------------------


def replace_between(text: str, start: str, end: str, content: str) -> str:
    """``text`` with what lies between its ``start`` and ``end`` lines replaced by
    ``content``; ``ValueError`` unless each marker is there once, ``start`` first."""
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"the document needs one {start} line, then one {end} line")
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    return f"{before}{start}\n{content}\n{end}{after}"


def between(text: str, start: str, end: str) -> str:
    """What ``text`` holds between its ``start`` and ``end`` lines."""
    return text.split(start, 1)[1].split(end, 1)[0].strip("\n")
