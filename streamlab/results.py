"""Measured figures that notebooks record, for the wrap-up (notebook 08) to gather.

Each measuring notebook ends by recording its headline figures:

    record("04_measuring_ttfb_and_memory", [
        Figure("TTFB, streamed, 41 MB", m.ttfb_s, "s", "flat with size"),
    ])

which writes ``build/results/04_measuring_ttfb_and_memory.json`` with the
versions it was measured against. Notebook 08 reads them all back with
``load_all()``; nothing in its summary is typed in.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

from .server import PROJECT_ROOT

RESULTS_DIR = PROJECT_ROOT / "build" / "results"


@dataclass
class Figure:
    """One measured value: what it is, the number, its unit, and what it shows."""

    name: str
    value: float | int | str | bool
    unit: str = ""
    shows: str = ""

    def formatted(self) -> str:
        value = self.value
        if isinstance(value, float):
            text = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        elif isinstance(value, int) and not isinstance(value, bool):
            text = f"{value:,}"
        else:
            text = str(value)
        return f"{text} {self.unit}".strip()


def record(notebook: str, figures: Iterable[Figure], directory: Path = RESULTS_DIR) -> Path:
    """Write ``figures`` for ``notebook`` (its file name without ``.ipynb``), replacing
    what an earlier run of that notebook recorded."""
    figures = list(figures)
    if not figures:
        raise ValueError(f"{notebook}: nothing to record.")
    directory.mkdir(parents=True, exist_ok=True)
    data = {
        "notebook": notebook,
        "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": {
            "python": platform.python_version(),
            "django": version("django"),
            "gunicorn": version("gunicorn"),
        },
        "figures": [asdict(f) for f in figures],
    }
    path = directory / f"{notebook}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def load_all(directory: Path = RESULTS_DIR) -> dict[str, dict]:
    """Every notebook's recorded results, keyed by notebook name, in series order."""
    if not directory.exists():
        return {}
    results = {}
    for path in sorted(directory.glob("[0-9][0-9]_*.json")):
        data = json.loads(path.read_text())
        data["figures"] = [Figure(**f) for f in data["figures"]]
        results[data["notebook"]] = data
    return results
