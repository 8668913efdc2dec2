"""Where the project's folders are, in one place.

Everything the series writes goes under ``build/``; each writer takes a
directory argument as well, so the tests can write elsewhere and leave a
learner's own results alone.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
BUILD_DIR = PROJECT_ROOT / "build"
