"""The instructor guide's table of the series is rendered from one run and the notebooks' prose."""

import importlib.util
import json
import subprocess
import sys

import pytest

from streamlab.paths import PROJECT_ROOT
from streamlab.series.notebooks import series

_spec = importlib.util.spec_from_file_location(
    "guide_table", PROJECT_ROOT / "scripts" / "guide_table.py")
guide_table = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = guide_table
_spec.loader.exec_module(guide_table)
NOTEBOOKS = series()


def made_up_runs(skip: str | None = None, failed: str | None = None) -> dict:
    """What ``save_summaries`` writes, for every notebook of the series."""
    return {"runs": [
        {"notebook": p.name, "seconds": 10.0 + n, "peak_pss_bytes": (100 + n) * 2**20,
         "ok": p.name != failed, "error": "AssertionError" if p.name == failed else None,
         "skipped": None} for n, p in enumerate(NOTEBOOKS) if p.name != skip]}


def test_a_run_renders_one_row_per_notebook_with_its_words_and_timings():
    table = guide_table.render(guide_table.timings_from_runs(made_up_runs()), "2026-12-08, here")
    rows = table.split("\n")[2:2 + len(NOTEBOOKS)]
    assert [row.split(" | ")[0].removeprefix("| ")[:2] for row in rows] == [
        p.name[:2] for p in NOTEBOOKS]
    first = rows[0].split(" | ")
    words = guide_table.prose_words(NOTEBOOKS[0])
    assert first[2] == f"{words:,}" and first[3] == f"{guide_table.present_minutes(words)} min"
    assert (first[4], first[5]) == ("10 s", "100 MiB |")
    notes = " ".join(table.split())  # the notes are wrapped
    assert "2026-12-08, here" in notes
    assert f"{guide_table.WORDS_PER_MINUTE} words a minute" in notes
    assert guide_table.parse(table) == (guide_table.timings_from_runs(made_up_runs()),
                                        "2026-12-08, here")


def test_present_time_is_the_words_at_the_stated_rate_rounded_up_to_five_minutes():
    rate = guide_table.WORDS_PER_MINUTE
    assert guide_table.present_minutes(1) == 5
    assert guide_table.present_minutes(10 * rate) == 10
    assert guide_table.present_minutes(10 * rate + 1) == 15


@pytest.mark.parametrize(("runs", "message"), [
    (made_up_runs(skip=NOTEBOOKS[3].name), "not a run of the whole series; missing"),
    (made_up_runs(failed=NOTEBOOKS[2].name), "did not run to the end"),
])
def test_a_partial_or_failed_run_is_refused(runs, message):
    with pytest.raises(guide_table.TableError, match=message):
        guide_table.render(guide_table.timings_from_runs(runs), "today")


def test_the_script_renders_the_guide_between_its_markers_only(tmp_path):
    guide = tmp_path / "guide.md"
    markers = f"{guide_table.START}\nOLD TABLE\n{guide_table.END}"
    guide.write_text(f"# Guide\n\nbefore\n\n{markers}\n\nafter\n")
    runs = tmp_path / "runs.json"
    runs.write_text(json.dumps(made_up_runs()))
    script = [sys.executable, "scripts/guide_table.py", "--guide", str(guide)]
    done = subprocess.run([*script, "--runs", str(runs)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    text = guide.read_text()
    assert text.startswith("# Guide\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert "OLD TABLE" not in text and guide_table.GENERATED in text
    checked = subprocess.run([*script, "--check"], cwd=PROJECT_ROOT, capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    # A notebook's prose changed since: its words no longer match.
    first = next(line for line in text.split("\n") if line.startswith("| 00 "))
    cells = first.split(" | ")
    cells[2] = "1"
    guide.write_text(text.replace(first, " | ".join(cells)))
    differs = subprocess.run([*script, "--check"], cwd=PROJECT_ROOT, capture_output=True,
                             text=True, timeout=60)
    assert differs.returncode == 1 and "differs from a rendering" in differs.stderr


def test_the_guide_table_is_a_rendering():
    """The words and presenting times are today's notebooks'; compute and memory parse back
    from the table itself (they come from a run, which CI does not repeat here)."""
    text = (PROJECT_ROOT / "docs" / "INSTRUCTOR_GUIDE.md").read_text()
    table = guide_table.between_markers(text)
    timings, measured = guide_table.parse(table)
    assert sorted(timings) == [p.name for p in NOTEBOOKS]
    assert guide_table.render(timings, measured) == table, (
        "a notebook's prose changed since the table was rendered: "
        "run scripts/guide_table.py --keep-timings (or make guide-table after make run)")
