"""Plain-text tables for notebooks, scripts and test summaries (no pandas needed)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def format_table(rows: Iterable[Mapping[str, object]]) -> str:
    """Rows of dicts as a plain-text table with aligned columns (no pandas needed)."""
    rows = list(rows)
    if not rows:
        return "(no rows)"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[str(row.get(col, "")) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
    lines = ["  ".join(col.ljust(w) for col, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)
