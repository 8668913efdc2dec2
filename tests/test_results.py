"""Recorded figures round-trip, replace earlier runs, and refuse to record nothing."""

import pytest

from streamlab.results import Figure, load_all, record


def test_record_and_load(tmp_path):
    record("04_x", [Figure("TTFB", 0.0123, "s", "flat"), Figure("rows", 2_000_000)], tmp_path)
    record("01_y", [Figure("chunked", True)], tmp_path)
    loaded = load_all(tmp_path)
    assert list(loaded) == ["01_y", "04_x"]
    assert loaded["04_x"]["figures"][0] == Figure("TTFB", 0.0123, "s", "flat")
    assert loaded["04_x"]["versions"]["django"].startswith(("5.", "6."))
    assert [f.formatted() for f in loaded["04_x"]["figures"]] == ["0.0123 s", "2,000,000"]


def test_a_rerun_replaces_the_figures(tmp_path):
    record("05_z", [Figure("wait", 1.5, "s")], tmp_path)
    record("05_z", [Figure("wait", 1.4, "s")], tmp_path)
    assert [f.value for f in load_all(tmp_path)["05_z"]["figures"]] == [1.4]


def test_nothing_to_record_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="nothing to record"):
        record("06_w", [], tmp_path)
    assert load_all(tmp_path / "missing") == {}
