"""The README's reliability table is rendered from the figures file, not written by hand."""

import importlib.util
import json
import sys

import pytest
from support.reliability_plugin import Figures

from streamlab.paths import PROJECT_ROOT

_spec = importlib.util.spec_from_file_location(
    "reliability_table", PROJECT_ROOT / "scripts" / "reliability_table.py")
table_script = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = table_script  # dataclasses look their module up there
_spec.loader.exec_module(table_script)
ROWS = {row.area: row for row in table_script.ROWS}


def recorded() -> dict:
    """A figures file's content, written through the plugin's own Figures as the tests do."""
    f = Figures()
    f.count("bad input", "requests", 11_391)
    f.count("bad input", "5xx", 0, one="5xx")
    f.count("bad input", "hangs", 1, one="hang")
    f.note("bad input", "sync worker peak RSS +0.1 MiB")
    f.count("disconnects", "aborted downloads", 340)
    f.count("disconnects", "generator cleanups seen", 300)
    f.count("disconnects", "cleanups missing", 0, one="cleanup missing")
    f.count("disconnects (event streams)", "aborted event streams", 300)
    f.count("disconnects (event streams)", "generator cleanups seen", 299)
    f.count("disconnects (event streams)", "cleanups missing", 1, one="cleanup missing")
    f.note("disconnects (event streams)", "sync: 100 x GeneratorExit")
    for area, note in (("load", "gthread: up to 32 streams at once"),
                       ("load (sync worker)", "2 workers served at most 2 streams at once; "
                                              "first byte after 0.01 s")):
        f.count(area, "downloads", 32)
        f.count(area, "verified", 32)
        f.count(area, "errors", 0, one="error")
        f.note(area, note)
    f.count("process hygiene", "kernel restarts", 2, one="kernel restart")
    f.count("process hygiene", "leftover processes", 0, one="leftover process")
    f.count("process hygiene", "interrupted cells", one="interrupted cell")
    f.count("process hygiene", "checks after the whole suite", one="check after the whole suite")
    f.count("process hygiene", "notebooks executed", 9, one="notebook executed")
    f.count("exposure", "servers checked", 7)
    f.count("exposure", "listening sockets", 20, one="listening socket")
    f.count("exposure", "beyond 127.0.0.1", 0)
    f.count("exposure", "tracked files scanned", 83)
    return json.loads(json.dumps(f.as_dict()))  # exactly what figures.json holds


def cells(table: str) -> dict[str, list[str]]:
    rows = table.split("\n")[2:]
    return {area: line.removeprefix("| ").removesuffix(" |").split(" | ")[1:]
            for area, line in zip(ROWS, rows, strict=True)}


def test_the_table_renders_each_area_from_the_figures_file():
    table = table_script.render(recorded())
    assert table.split("\n")[:2] == table_script.HEADER
    assert [line.split(" | ")[0] for line in table.split("\n")[2:]] == [
        f"| {row.what}" for row in table_script.ROWS]
    assert cells(table) == {
        # The notes of areas without notes=True stay out; a count of 1 is singular.
        "bad input": ["11,391 requests", "0 5xx, 1 hang"],
        "disconnects": ["340 aborted downloads, 300 generator cleanups seen",
                        "0 cleanups missing"],
        "disconnects (event streams)": ["300 aborted event streams, 299 generator cleanups seen",
                                        "1 cleanup missing"],
        "load": ["32 downloads, 32 verified", "0 errors; gthread: up to 32 streams at once"],
        "load (sync worker)": ["32 downloads, 32 verified", "0 errors; 2 workers served at "
                               "most 2 streams at once; first byte after 0.01 s"],
        # What was tried reads in the row's order, whatever order the tests recorded it in.
        "process hygiene": ["9 notebooks executed, 2 kernel restarts, 1 interrupted cell, "
                            "1 check after the whole suite", "0 leftover processes"],
        "exposure": ["7 servers checked, 20 listening sockets, 83 tracked files scanned",
                     "0 beyond 127.0.0.1"],
    }


def test_parse_is_the_inverse_of_render():
    table = table_script.render(recorded())
    assert table_script.render(table_script.parse(table)) == table


@pytest.mark.parametrize("area, label", [("process hygiene", "notebooks executed"),
                                         ("disconnects (event streams)", "aborted event streams"),
                                         ("exposure", None)])
def test_the_figures_of_a_partial_run_are_refused(area, label):
    figures = recorded()
    if label is None:
        del figures[area]
    else:
        del figures[area][label]
    with pytest.raises(table_script.FiguresError, match="not the figures of a whole run"):
        table_script.render(figures)


def test_only_the_text_between_the_markers_changes(tmp_path):
    start, end = table_script.START, table_script.END
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nBefore.\n\n{start}\n| old | table |\n{end}\n\nAfter.\n")
    figures = tmp_path / "figures.json"
    figures.write_text(json.dumps(recorded()))
    args = ["--figures", str(figures), "--readme", str(readme)]

    assert table_script.main([*args, "--check"]) == 1
    assert table_script.main(args) == 0
    text = readme.read_text()
    table = table_script.render(recorded())
    assert text == (f"# Title\n\nBefore.\n\n{start}\n{table_script.GENERATED}\n{table}\n{end}"
                    "\n\nAfter.\n")
    assert table_script.main(args) == 0 and readme.read_text() == text  # idempotent
    assert table_script.main([*args, "--check"]) == 0

    figures.write_text(json.dumps({"bad input": {"requests": 1}}))
    assert table_script.main(args) == 1 and readme.read_text() == text
    assert table_script.main(["--figures", str(tmp_path / "absent.json")]) == 1


def test_the_readme_table_is_a_rendering():
    readme = (PROJECT_ROOT / "README.md").read_text()
    testing = readme.split("\n## Testing\n", 1)[1].split("\n## ", 1)[0]
    assert testing.count(table_script.START) == 1 and testing.count(table_script.END) == 1
    content = table_script.between_markers(readme)
    if not content.startswith(table_script.GENERATED):
        pytest.skip("the README's reliability table predates scripts/reliability_table.py: "
                    "run the whole suite (make test), then make readme-figures")
    table = content.removeprefix(table_script.GENERATED).strip("\n")
    assert table_script.render(table_script.parse(table)) == table
