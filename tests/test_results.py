"""Recorded figures round-trip, replace earlier runs, and refuse to record nothing."""

import json

import nbformat
import pytest

from streamlab.environment import package_versions
from streamlab.measurement import bench, bench_results
from streamlab.series import notebooks, results
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
    summary = results.summary_rows(loaded, installed)
    assert [(r["from"], r["figure"], r["value"], r["other versions"]) for r in summary] == [
        ("01", "ttfb", "0.01 s", ""), ("03", "chunked", "True", "django 4.2.0")]


# -- which notebooks record, and which are missing -------------------------------------------


def _notebook(directory, name, code):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbformat.write(nb, directory / f"{name}.ipynb")


def test_recording_notebooks_are_found_by_their_record_call(tmp_path):
    _notebook(tmp_path, "01_records", 'record("01_records", figures)')
    _notebook(tmp_path, "02_quiet", "print('nothing recorded')")
    _notebook(tmp_path, "03_wrong_name", 'record("01_records", figures)')
    assert results.recording_notebooks(tmp_path) == ["01_records"]
    assert results.missing({}, results.recording_notebooks(tmp_path)) == ["01_records"]
    assert results.missing({"01_records": object()}, ["01_records"]) == []


def test_the_series_notebooks_that_record():
    recording = results.recording_notebooks()
    assert {"01_two_kinds_of_response", "02_wsgi_under_the_hood", "03_on_the_wire",
            "05_workers_slow_clients_and_timeouts", "06_async_streaming",
            "07_rows_and_files", "08_middleware_and_proxies"} <= set(recording)
    assert "11_wrap_up" not in recording  # it only reads


# -- claims checked against figures -----------------------------------------------------------


def test_evidence_checks_claims_and_says_what_is_not_measured(tmp_path):
    record("01_a", [Figure("streamed", 0.01, "s"), Figure("whole", 0.3, "s")], tmp_path)
    evidence = results.Evidence(load_all(tmp_path))
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
        ("elsewhere", "-", "-", "not measured yet: run notebook 05"),
        ("benched", "-", "-", "not measured yet: run make bench"),
    ]
    assert results.contradicted(rows) == ["later"]


def test_evidence_fails_loudly_on_a_name_nobody_recorded(tmp_path):
    record("01_a", [Figure("streamed", 0.01, "s")], tmp_path)
    evidence = results.Evidence(load_all(tmp_path))
    with pytest.raises(results.UnknownFigure, match="no figure named 'streamd'"):
        evidence.check({"typo": lambda v: v("01", "streamd") > 0})
    assert evidence.get("01", "nginx", default=False) is False
    assert evidence.get("01", "streamed") == 0.01
    with pytest.raises(results.MissingResult):
        evidence.get("08", "nginx")


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
    assert results.Evidence(gathered)("bench", "throughput, best chunk size") > 0


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
        evidence = results.Evidence(results.gather(tmp_path, newer))
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
    run = notebooks.run(notebooks.NOTEBOOK_DIR / "11_wrap_up.ipynb", env=env)
    assert run.ok, run.error
    text = "\n".join(output.get("text", "") for cell in run.notebook.cells
                     for output in cell.get("outputs", []))
    assert "sources found: none" in text
    for stem in results.recording_notebooks():
        assert f"run notebooks/{stem}.ipynb" in text
    assert "run `make bench`" in text
    results_column = [line.rsplit("  ", 1)[-1] for line in text.splitlines()]
    assert "CONTRADICTED" not in results_column and "holds" not in results_column
    assert text.count("not measured yet") >= 20
    assert not (tmp_path / "results").exists()  # reading never creates anything
