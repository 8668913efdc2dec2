"""Every notebook of the series runs top to bottom, and reads as the conventions ask."""

import json
import re

import nbformat
import pytest
from support.postgres import UNDER_CI, need_postgres

from streamlab.series.notebooks import CELL_TIMEOUT, needs, run, series
from streamlab.series.results import recording_notebooks
from streamlab.servers.postgres import pgbouncer_available, postgres_available

NOTEBOOKS = series()
BINDER_BUDGET = 1536 * 2**20  # bytes; Binder's limit is about 2 GB
SLIDE_TYPES = {"slide", "subslide", "fragment", "-", "skip", "notes"}


def test_the_series_exists():
    names = [p.name for p in NOTEBOOKS]
    assert names and names[0].startswith("00_")
    numbers = [int(n[:2]) for n in names]
    assert numbers == sorted(set(numbers)), "one notebook per number, in order"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, results_elsewhere):
    # No out_dir: the executed copy stays in memory. What the notebook records goes to the
    # tests' temporary folder (conftest.py sets $STREAMLAB_RESULTS_DIR), not build/results/.
    if "postgresql" in needs(nbformat.read(path, as_version=4)):
        need_postgres()
    result = run(path, timeout=CELL_TIMEOUT)
    assert result.ok, f"{path.name} failed: {result.error}"
    assert result.skipped is None
    code = [cell for cell in result.notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code)
    assert any(cell.get("outputs") for cell in code)
    # Binder gives about 2 GB: the kernel and every server it starts stay well below.
    assert result.peak_memory < BINDER_BUDGET, f"peak {result.peak_memory / 2**20:.0f} MiB"
    if path.stem in recording_notebooks():
        assert (results_elsewhere / "results" / f"{path.stem}.json").exists()
    if path.stem == "07_rows_and_files":
        _check_postgres_cells(result.notebook, ran=postgres_available())


def _outputs(notebook) -> str:
    return "\n".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for out in cell.get("outputs", []))


def _check_postgres_cells(notebook, *, ran: bool) -> None:
    """Notebook 07's PostgreSQL cells ran where PostgreSQL is installed (CI installs it, so
    there they must have), and said they were skipped where it is not."""
    if UNDER_CI:
        assert postgres_available() and pgbouncer_available(), "CI installs PostgreSQL"
    text = _outputs(notebook)
    if ran:
        assert "FETCH FORWARD" in text and "rows in postgresql" in text
        assert "PostgreSQL is not installed here" not in text
    else:
        assert "PostgreSQL is not installed here" in text and "rows in sqlite" in text


@pytest.mark.slow  # not `notebooks`: the newer Pythons of CI, running every notebook, skip it
def test_notebook_07_runs_without_postgres():
    path = next(p for p in NOTEBOOKS if p.stem == "07_rows_and_files")
    result = run(path, timeout=CELL_TIMEOUT, env={"STREAMLAB_NO_POSTGRES": "1"})
    assert result.ok, f"{path.name} without PostgreSQL failed: {result.error}"
    assert result.peak_memory < BINDER_BUDGET, f"peak {result.peak_memory / 2**20:.0f} MiB"
    _check_postgres_cells(result.notebook, ran=False)


def test_a_notebook_that_needs_postgres_is_skipped_without_it(monkeypatch):
    monkeypatch.setenv("STREAMLAB_NO_POSTGRES", "1")
    needing = [p for p in NOTEBOOKS if "postgresql" in needs(nbformat.read(p, as_version=4))]
    assert [p.stem for p in needing] == ["12_one_event_every_worker"]
    result = run(needing[0])
    assert result.ok and result.skipped and "apt-get install postgresql" in result.skipped
    assert result.summary()["skipped"] == result.skipped


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_follows_the_conventions(path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    first = "".join(cells[0]["source"])
    assert re.match(rf"# {path.name[:2]} — ", first), "title: '# NN — ...'"
    for word in ("objectives", "prerequisites", "minutes"):
        assert word in first.lower(), f"the opening cell should mention {word}"
    markdown = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    assert any(m.lstrip().startswith("## Key points") for m in markdown)
    solutions = [c for c in cells if "solution" in c["metadata"].get("tags", [])]
    assert solutions, "at least one exercise with a solution"
    assert all(c["metadata"].get("jupyter", {}).get("source_hidden") for c in solutions)
    # Solutions stay out of slide decks and RISE: an audience should try first.
    assert all(c["metadata"]["slideshow"]["slide_type"] == "skip" for c in solutions)
    for cell in cells:
        assert cell["metadata"].get("slideshow", {}).get("slide_type") in SLIDE_TYPES


@pytest.mark.notebooks
def test_a_failing_notebook_names_the_check_that_failed(tmp_path):
    # A bare assert says only "AssertionError:"; a CI log must say which one failed.
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("y = 2\nassert x == y\nprint('never')"),
    ])
    path = tmp_path / "failing.ipynb"
    nbformat.write(nb, path)
    result = run(path)
    assert not result.ok
    assert result.error.startswith("AssertionError")
    assert "line 2" in result.error and "assert x == y" in result.error
    # From line 10 on, IPython's arrow is a dash shorter ("--->" instead of "---->").
    nb.cells[1].source = "z = 0\n" * 11 + "assert x == 3"
    nbformat.write(nb, path)
    result = run(path)
    assert "line 12" in result.error and "assert x == 3" in result.error
