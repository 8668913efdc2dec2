"""Recorded figures round-trip, replace earlier runs, and refuse to record nothing."""

import json
import re

import nbformat
import pytest

from streamlab.environment import package_versions
from streamlab.measurement import bench, bench_results
from streamlab.series import notebooks, results, wrap_up
from streamlab.series.results import Figure, load_all, record


def test_record_and_load(tmp_path):
    record("04_x", [Figure("TTFB", 0.0123, "s", "flat"), Figure("rows", 2_000_000)], tmp_path)
    record("01_y", [Figure("chunked", True)], tmp_path)
    loaded = load_all(tmp_path)
    assert list(loaded) == ["01_y", "04_x"]
    assert loaded["04_x"].figures[0] == Figure("TTFB", 0.0123, "s", "flat")
    assert loaded["04_x"].versions["django"].startswith(("5.", "6."))
    assert loaded["04_x"].path == str(tmp_path / "04_x.json")
    assert [f.formatted() for f in loaded["04_x"].figures] == ["0.0123 s", "2,000,000"]
    assert type(loaded["04_x"].figures[1].value) is int  # not read back as 2e6
    assert json.loads((tmp_path / "04_x.json").read_text())["schema_version"] == (
        results.SCHEMA_VERSION)


def test_a_rerun_replaces_the_figures(tmp_path):
    record("05_z", [Figure("wait", 1.5, "s")], tmp_path)
    record("05_z", [Figure("wait", 1.4, "s")], tmp_path)
    assert [f.value for f in load_all(tmp_path)["05_z"].figures] == [1.4]


def test_nothing_to_record_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="nothing to record"):
        record("06_w", [], tmp_path)
    assert load_all(tmp_path / "missing") == {}


# -- what record() refuses, and where it writes -------------------------------------------


def test_record_refuses_figures_the_wrap_up_could_not_use(tmp_path):
    with pytest.raises(TypeError, match="record Figure"):
        record("01_a", [Figure("", 1)], tmp_path)
    with pytest.raises(TypeError, match="NoneType value"):
        record("01_a", [Figure("ttfb", None, "s")], tmp_path)
    with pytest.raises(ValueError, match=r"repeated: \['ttfb'\]"):
        record("01_a", [Figure("ttfb", 0.1, "s"), Figure("ttfb", 0.2, "s")], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_record_and_load_follow_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMLAB_RESULTS_DIR", str(tmp_path / "scratch"))
    assert results.results_dir() == tmp_path / "scratch"
    path = record("02_b", [Figure("items", 10)])
    assert path == tmp_path / "scratch" / "02_b.json"
    assert [p.name for p in path.parent.iterdir()] == ["02_b.json"]  # no partial file left
    assert list(load_all()) == ["02_b"]


def test_format_figures_lists_each_figure_once():
    text = results.format_figures([Figure("first byte", 0.01234, "s", "5 MiB body"),
                                   Figure("chunked", True)])
    lines = text.splitlines()
    assert lines[0].split() == ["figure", "value", "shows"]
    assert "first byte" in lines[2] and "0.0123 s" in lines[2] and "5 MiB body" in lines[2]
    assert lines[3].split() == ["chunked", "True"]


# -- files from another version ------------------------------------------------------------


def test_a_file_from_another_version_counts_as_not_measured(tmp_path):
    record("01_a", [Figure("ttfb", 0.01, "s")], tmp_path)
    path = record("03_c", [Figure("chunked", True)], tmp_path)
    data = json.loads(path.read_text())
    del data["schema_version"]
    path.write_text(json.dumps(data))
    with pytest.warns(UserWarning, match=r"03_c.json has no schema version .* run "
                      r"notebooks/03_c.ipynb again .* counts as not measured"):
        loaded = load_all(tmp_path)
    assert list(loaded) == ["01_a"]
    assert results.missing(loaded, ["01_a", "03_c"]) == ["03_c"]
    data["schema_version"] = results.SCHEMA_VERSION
    data["figures"][0]["value"] = None
    path.write_text(json.dumps(data))
    with pytest.warns(UserWarning, match=r"03_c.json: figures\[0\].value: expected float or "
                      r"int or str or bool, got None"):
        assert list(load_all(tmp_path)) == ["01_a"]


# -- versions ------------------------------------------------------------------------------


def _with_versions(path, **versions):
    data = json.loads(path.read_text())
    data["versions"].update(versions)
    path.write_text(json.dumps(data))


def test_results_from_other_versions_are_flagged(tmp_path):
    record("01_a", [Figure("ttfb", 0.01, "s")], tmp_path)
    _with_versions(record("03_c", [Figure("chunked", True)], tmp_path), django="4.2.0")
    loaded = load_all(tmp_path)
    installed = package_versions()
    assert results.version_differences(loaded["01_a"].versions, installed) == {}
    assert results.version_differences(loaded["03_c"].versions, installed) == {
        "django": ("4.2.0", installed["django"])}
    rows = {row["source"]: row for row in results.provenance(loaded, installed)}
    assert rows["01_a"]["versions"] == "as installed"
    assert rows["03_c"]["versions"] == f"DIFFERENT: django 4.2.0 (now {installed['django']})"
    assert rows["03_c"]["django"] == "4.2.0"
    summary = results.summary_rows(loaded, installed, expected=["01_a", "03_c", "05_e"])
    assert [(r["from"], r["figure"], r["value"], r["other versions"]) for r in summary] == [
        ("01", "ttfb", "0.01 s", ""), ("03", "chunked", "True", "django 4.2.0"),
        ("05", "-", "not measured yet: run notebooks/05_e.ipynb", "")]


# -- which notebooks record, and which are missing -------------------------------------------


def _notebook(directory, name, code):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbformat.write(nb, directory / f"{name}.ipynb")


def test_recording_notebooks_are_found_by_their_record_call(tmp_path):
    _notebook(tmp_path, "01_records", 'record("01_records", figures)')
    _notebook(tmp_path, "02_quiet", "print('nothing recorded')")
    _notebook(tmp_path, "03_wrong_name", 'record("01_records", figures)')
    _notebook(tmp_path, "04_quoted", """print(f"saved to {record('04_quoted', figures)}")""")
    assert results.recording_notebooks(tmp_path) == ["01_records", "04_quoted"]
    assert results.missing({"04_quoted": object()}, results.recording_notebooks(tmp_path)) == [
        "01_records"]
    assert results.missing({"01_records": object()}, ["01_records"]) == []


def test_the_series_notebooks_that_record():
    recording = results.recording_notebooks()
    assert {"01_two_kinds_of_response", "02_wsgi_under_the_hood", "03_on_the_wire",
            "05_workers_slow_clients_and_timeouts", "06_async_streaming",
            "07_rows_and_files", "08_middleware_and_proxies"} <= set(recording)
    assert "13_wrap_up" not in recording  # it only reads


# -- claims checked against figures -----------------------------------------------------------


def test_evidence_checks_claims_and_says_what_is_not_measured(tmp_path):
    record("01_a", [Figure("streamed", 0.01, "s"), Figure("whole", 0.3, "s")], tmp_path)
    evidence = wrap_up.Evidence(load_all(tmp_path))
    assert evidence.has("01") and not evidence.has("05") and not evidence.has("bench")
    rows = evidence.check({
        "sooner": lambda v: v("01", "streamed") < v("01", "whole"),
        "later": lambda v: v("01", "streamed") > v("01", "whole"),
        "elsewhere": lambda v: v("05", "wait") > 0,
        "benched": lambda v: v("bench", "targets met") == "5 of 5",
    })
    assert [(r["claim"], r["from"], r["measured"], r["result"]) for r in rows] == [
        ("sooner", "01", "0.01 s vs 0.3 s", "holds"),
        ("later", "01", "0.01 s vs 0.3 s", "CONTRADICTED"),
        ("elsewhere", "05", "-", "not measured yet: run notebook 05"),
        ("benched", "bench", "-", "not measured yet: run make bench"),
    ]
    assert wrap_up.contradicted(rows) == ["later"]
    assert wrap_up.not_measured(rows) == ["elsewhere", "benched"]
    assert wrap_up.verdict(rows) == "4 claims: 1 hold, 1 contradicted, 2 not measured yet"


def test_a_claim_never_holds_on_a_figure_that_is_not_there(tmp_path):
    # Notebook 08 records its nginx figure only where nginx ran: here it did not.
    record("08_p", [Figure("streamed through jsp", False)], tmp_path)
    evidence = wrap_up.Evidence(load_all(tmp_path))
    rows = evidence.check({
        "jupyter-server-proxy buffers": lambda v: not v("08", "streamed through jsp"),
        "nginx buffers": lambda v: not v("08", "streamed through nginx"),
        "a typo": lambda v: v("08", "streamd") > 0,
    })
    assert [(r["from"], r["result"]) for r in rows] == [
        ("08", "holds"),
        ("08", "not measured yet: 08 recorded no 'streamed through nginx'"),
        ("08", "not measured yet: 08 recorded no 'streamd'"),
    ]
    assert wrap_up.contradicted(rows) == []
    with pytest.raises(wrap_up.AbsentFigure):
        evidence("08", "streamed through nginx")
    with pytest.raises(wrap_up.MissingResult):
        evidence("05", "wait")
    assert not hasattr(evidence, "get")  # no default value a claim could hold on


def test_nothing_recorded_holds_nothing():
    evidence = wrap_up.Evidence({})
    rows = [row for claims in wrap_up.GUIDE.values() for row in evidence.check(claims)]
    assert len(rows) >= 20
    assert all(row["result"].startswith("not measured yet: run notebook ") for row in rows)
    assert all(row["from"] != "-" for row in rows)  # each names the notebook to run
    headlines = wrap_up.headline_rows(evidence)
    assert [row["from"] for row in headlines] == [h.source for h in wrap_up.HEADLINES]
    assert all(row["value"].startswith("not measured yet (run notebook ") for row in headlines)


def test_headlines_compare_figures_of_one_source(tmp_path):
    record("04_m", [Figure("first byte, streamed, largest body", 0.004, "s"),
                    Figure("first byte, HttpResponse, largest body", 0.3, "s")], tmp_path)
    rows = wrap_up.headline_rows(wrap_up.Evidence(load_all(tmp_path)), wrap_up.HEADLINES[:2])
    assert rows[0] == {"measured": wrap_up.HEADLINES[0].what, "value": "0.004 s vs 0.3 s",
                       "from": "04"}
    assert rows[1]["value"] == (
        "not measured yet (04 recorded no 'worker memory rise, streamed, largest body')")


def test_details_are_folded_and_escaped(tmp_path):
    _with_versions(record("01_a", [Figure("a <b>", 1.5, "MiB")], tmp_path), django="4.2.0")
    loaded = load_all(tmp_path)
    checked = {"when": wrap_up.Evidence(loaded).check({"x < y": lambda v: v("01", "a <b>") > 1})}
    page = wrap_up.details(loaded, checked, package_versions(), expected=["01_a", "02_b"])
    blocks = re.findall(r"<details><summary>(.*?)</summary><pre>(.*?)</pre></details>", page,
                        re.S)
    assert [summary.split(":")[0].split(" (")[0] for summary, _ in blocks] == [
        "The claims", "Where the numbers come from", "Not run here yet",
        "Every recorded figure"]
    assert "x &lt; y" in blocks[0][1] and "holds" in blocks[0][1]
    assert "1 measured with other versions" in blocks[1][0] and "DIFFERENT" in blocks[1][1]
    assert "run notebooks/02_b.ipynb" in blocks[2][1] and "make bench" in blocks[2][1]
    assert "a &lt;b&gt;" in blocks[3][1] and "<b>" not in page


# -- make bench, read back ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench_run():
    """A real benchmark run at tiny sizes (a few seconds), in the format make bench writes."""
    kib = bench_results.KiB
    config = bench_results.BenchConfig(sizes=[64 * kib, 256 * kib], repeats=1,
                                       chunk_rows=[1, 256], chunk_body=64 * kib,
                                       client_body=256 * kib)
    with bench.bench_server(name="tests-results-bench", timeout=60) as server:
        return bench.run(config, server=server)


def test_gather_adds_the_benchmark_headline_figures(tmp_path, bench_run):
    bench_file = tmp_path / "bench" / "results.json"
    bench_file.parent.mkdir()
    bench_file.write_text(bench_run.to_json())
    record("01_a", [Figure("ttfb", 0.01, "s")], tmp_path / "results")
    gathered = results.gather(tmp_path / "results", bench_file)
    assert list(gathered) == ["01_a", results.BENCH]
    entry = gathered[results.BENCH]
    assert entry.versions["django"] == package_versions()["django"]
    assert entry.recorded == bench_run.created and entry.path == str(bench_file)
    figures = {f.name: f for f in entry.figures}
    largest = bench_run.sizes.streaming[-1]
    assert figures["first byte, streamed, largest body"].value == largest.ttfb_s
    assert figures["worker memory rise, streamed, largest body"].value == (
        largest.worker_rss_delta / results.MiB)
    assert figures["client memory peak, .content"].value == (
        bench_run.client_memory.content.peak / results.MiB)
    met = sum(t.met for t in bench_run.targets)
    assert figures["targets met"].value == f"{met} of {len(bench_run.targets)}"
    assert all(f.unit in ("s", "MiB", "MiB/s", "") for f in figures.values())
    assert wrap_up.Evidence(gathered)("bench", "throughput, best chunk size") > 0


def test_gather_without_a_benchmark_or_with_an_old_one(tmp_path):
    record("01_a", [Figure("ttfb", 0.01, "s")], tmp_path)
    assert list(results.gather(tmp_path, tmp_path / "absent.json")) == ["01_a"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"created": "2020-01-01", "sizes": {}}))
    with pytest.warns(UserWarning, match="has no schema version .*run `make bench` again"):
        assert list(results.gather(tmp_path, old)) == ["01_a"]
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({"schema_version": bench_results.SCHEMA_VERSION + 1}))
    with pytest.warns(UserWarning, match=f"schema version {bench_results.SCHEMA_VERSION + 1}, "):
        evidence = wrap_up.Evidence(results.gather(tmp_path, newer))
    rows = evidence.check({"benched": lambda v: v("bench", "targets met") == "5 of 5"})
    assert rows[0]["result"] == "not measured yet: run make bench"
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.warns(UserWarning, match="is not JSON"):
        assert list(results.gather(tmp_path, broken)) == ["01_a"]


# -- the wrap-up opened before anything else ------------------------------------------------------


@pytest.mark.notebooks
def test_the_wrap_up_runs_with_nothing_recorded(tmp_path):
    env = {"STREAMLAB_RESULTS_DIR": str(tmp_path / "results"),
           "STREAMLAB_BENCH_RESULTS": str(tmp_path / "no-bench.json")}
    run = notebooks.run(notebooks.NOTEBOOK_DIR / "13_wrap_up.ipynb", env=env)
    assert run.ok, run.error
    text = "\n".join(output.get("text", "") + output.get("data", {}).get("text/html", "")
                     for cell in run.notebook.cells for output in cell.get("outputs", []))
    claims = sum(len(section) for section in wrap_up.GUIDE.values())
    assert f"{claims} claims: 0 hold, 0 contradicted, {claims} not measured yet" in text
    assert "sources found: none" in text
    for stem in results.recording_notebooks():
        assert f"run notebooks/{stem}.ipynb" in text
    assert "run `make bench`" in text
    results_column = [line.rsplit("  ", 1)[-1] for line in text.splitlines()]
    assert "CONTRADICTED" not in results_column and "holds" not in results_column
    assert text.count("not measured yet") >= claims + len(wrap_up.HEADLINES)
    assert "<details><summary>" in text  # the details, folded
    assert not (tmp_path / "results").exists()  # reading never creates anything
