"""The reliability figures: collected by the tests, printed at the end of every run.

The reliability, hygiene and exposure tests load this plugin with
``pytest_plugins = ["reliability_plugin"]``. It provides:

* the ``figures`` fixture: tests add counts to it (requests tried, failures,
  leaks, leftover processes) before they assert on them, so the figures are
  printed whether the run passes or fails;
* one summary line per area in pytest's terminal summary (``make test`` does
  not pass ``-s``), and the same figures in ``build/reliability/figures.json``
  when every test that records a figure ran (a whole ``make test``), else in
  ``figures-partial.json`` beside it, so that a partial run (``-k``, one file)
  never replaces the whole run's report. That report is the test suite's, not
  a learner's result; the README's table is rendered from it
  (``scripts/reliability_table.py``);
* ``project_processes()``: the Gunicorn, nginx, Jupyter, kernel and watchdog
  processes this test session started and that are still running. Every
  process started during the session inherits ``STREAMLAB_TEST_SESSION`` from
  the environment, which tells them apart from those of other runs on the
  same machine;
* the ordering that makes ``test_hygiene.py::test_no_process_survives_the_suite``
  run last, after the notebooks and every other test.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from streamlab.paths import PROJECT_ROOT

SESSION_ENV = "STREAMLAB_TEST_SESSION"
SESSION = uuid.uuid4().hex
# Set when pytest imports this plugin, during collection: before any test starts a process.
os.environ[SESSION_ENV] = SESSION

FIGURES_PATH = PROJECT_ROOT / "build" / "reliability" / "figures.json"
PARTIAL_PATH = FIGURES_PATH.with_name("figures-partial.json")
# The modules whose tests record figures: all of their tests must run for a whole report.
FIGURE_MODULES = ("test_reliability.py", "test_hygiene.py", "test_exposure.py",
                  "test_notebooks.py")
LAST_TEST = "test_hygiene.py::test_no_process_survives_the_suite"
AREAS = ("bad input", "disconnects", "disconnects (event streams)", "load", "load (sync worker)",
         "process hygiene", "exposure")
# Labels that read first in their area's line, in this order; others follow as recorded.
FIRST = {
    "process hygiene": ("notebooks executed", "kernel restarts", "interrupted cells",
                        "checks after the whole suite"),
    "exposure": ("servers checked", "listening sockets", "beyond 127.0.0.1"),
}
LAST = ("leftover processes",)


class Figures:
    """Counts per area, summed over tests; worst values (leaks) kept as maxima."""

    def __init__(self) -> None:
        self.areas: dict[str, dict[str, Any]] = {}
        self.units: dict[tuple[str, str], str] = {}
        self.singular: dict[str, str] = {}
        self.notes: dict[str, list[str]] = {}

    def count(self, area: str, label: str, n: int = 1, *, one: str | None = None) -> None:
        """Add ``n`` to a count ("requests", "5xx"...); ``one`` is the label for a count of 1."""
        values = self.areas.setdefault(area, {})
        values[label] = values.get(label, 0) + int(n)
        if one is not None:
            self.singular[label] = one

    def worst(self, area: str, label: str, value: float, unit: str = "") -> None:
        """Keep the largest value seen (a memory or file-descriptor growth)."""
        values = self.areas.setdefault(area, {})
        values[label] = max(values.get(label, value), value)
        self.units[(area, label)] = unit

    def note(self, area: str, text: str) -> None:
        """A short phrase appended to the area's line."""
        self.areas.setdefault(area, {})
        self.notes.setdefault(area, []).append(text)

    def _labels(self, area: str) -> list[str]:
        recorded = list(self.areas.get(area, {}))
        first = [label for label in FIRST.get(area, ()) if label in recorded]
        last = [label for label in LAST if label in recorded]
        return first + [lb for lb in recorded if lb not in first and lb not in last] + last

    def line(self, area: str) -> str:
        parts = []
        for label in self._labels(area):
            value = self.areas[area][label]
            unit = self.units.get((area, label))
            if unit is None:
                name = self.singular.get(label, label) if value == 1 else label
                parts.append(f"{value:,} {name}")
            elif isinstance(value, int):
                parts.append(f"{label} {value:+d}{' ' + unit if unit else ''}")
            else:
                parts.append(f"{label} {value:+.1f}{' ' + unit if unit else ''}")
        notes = self.notes.get(area, [])
        return f"{area}: " + ", ".join(parts) + (f" ({'; '.join(notes)})" if notes else "")

    def lines(self) -> list[str]:
        ordered = [a for a in AREAS if a in self.areas] + sorted(set(self.areas) - set(AREAS))
        return [self.line(area) for area in ordered]

    def as_dict(self) -> dict[str, Any]:
        """What figures.json holds: per area, each label's value, then the area's "notes"
        and, under "singular", the name of a count of 1 where it is not the label."""
        data: dict[str, Any] = {}
        for area, values in self.areas.items():
            data[area] = dict(values)
            if area in self.notes:
                data[area]["notes"] = self.notes[area]
            singular = {label: self.singular[label] for label in values
                        if self.singular.get(label, label) != label}
            if singular:
                data[area]["singular"] = singular
        return data


_figures = Figures()


@pytest.fixture(scope="session")
def figures() -> Figures:
    """Where tests record the figures printed at the end of the run."""
    return _figures


class _Coverage:
    """Which of the tests that record figures were selected, left out, and run to the end."""

    def __init__(self) -> None:
        self.selected: set[str] = set()
        self.modules: set[str] = set()
        self.deselected = 0
        self.finished: set[str] = set()

    def whole(self) -> bool:
        return (set(FIGURE_MODULES) <= self.modules and not self.deselected
                and self.selected <= self.finished)


_coverage = _Coverage()


def _figure_module(nodeid: str) -> bool:
    return nodeid.split("::")[0].rsplit("/", 1)[-1] in FIGURE_MODULES


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    if not _figures.areas:
        return
    terminalreporter.write_sep("=", "reliability figures")
    for line in _figures.lines():
        terminalreporter.write_line(line)
    whole = _coverage.whole() and exitstatus != pytest.ExitCode.INTERRUPTED
    path = FIGURES_PATH if whole else PARTIAL_PATH
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_figures.as_dict(), indent=2) + "\n")
        what = "" if whole else f"; a partial run: {FIGURES_PATH.name} is left as it was"
        terminalreporter.write_line(f"(also in {path.relative_to(PROJECT_ROOT)}{what})")
    except OSError as error:
        terminalreporter.write_line(f"(could not write {path}: {error})")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    """Run the whole-suite process check after every other test (notebooks included)."""
    last = [item for item in items if item.nodeid.endswith(LAST_TEST)]
    for item in last:
        items.remove(item)
        items.append(item)
    _coverage.modules |= {item.path.name for item in items}
    _coverage.selected |= {item.nodeid for item in items if _figure_module(item.nodeid)}


def pytest_deselected(items: list[Any]) -> None:
    """A test that records figures left out (``-k``, ``-m``, ``--lf``): not a whole run."""
    _coverage.deselected += sum(_figure_module(item.nodeid) for item in items)


def pytest_runtest_logreport(report: Any) -> None:
    """Count the notebooks executed, for the whole-suite hygiene figure."""
    if report.when == "call" and report.passed and "test_notebook_executes" in report.nodeid:
        _figures.count("process hygiene", "notebooks executed", one="notebook executed")
    if report.when == "teardown":
        _coverage.finished.add(report.nodeid)


# -- The processes this session started ----------------------------------------------------


@dataclass(frozen=True)
class ProjectProcess:
    pid: int
    kind: str
    cmdline: str

    def __str__(self) -> str:
        return f"{self.kind} pid {self.pid}: {self.cmdline[:160]}"


def _kind(cmdline: list[str], name: str) -> str | None:
    joined = " ".join(cmdline)
    if "streamlab.servers.watchdog" in joined:  # first: its arguments name "gunicorn-..." logs
        return "watchdog"
    if "gunicorn" in joined and ("demo_app" in joined or str(PROJECT_ROOT) in joined):
        return "gunicorn"
    for server in ("uvicorn", "daphne", "hypercorn", "granian"):  # notebook 11's servers
        if f"-m {server}" in joined and "demo_app" in joined:
            return server
    if "multiprocessing.spawn" in joined or "multiprocessing.resource_tracker" in joined:
        return "spawned worker"  # Hypercorn's worker; ours only if it carries our marker
    if "jupyter_server" in joined or "jupyter-lab" in joined or "jupyter-server" in joined:
        return "jupyter server"
    if "ipykernel_launcher" in joined:
        return "kernel"
    if name == "nginx" or joined.startswith("nginx:"):
        return "nginx"
    return None


def _ours(process: psutil.Process, kind: str, cmdline: list[str]) -> bool:
    """Started by this session: it carries our marker, or (nginx) it is ours by ancestry.

    nginx overwrites its own environment to hold its process title, so its
    marker cannot be read. An nginx counts as ours when it serves from a
    streamlab temporary prefix (``streamlab-*``: on its command line or among
    its open files) and either descends from this pytest process or has been
    orphaned (adopted by PID 1: whoever started it is gone, which is a leak
    whoever it was).
    """
    if kind != "nginx":
        try:
            return process.environ().get(SESSION_ENV) == SESSION
        except (psutil.AccessDenied, psutil.ZombieProcess):
            return False
    prefix = str(Path(tempfile.gettempdir()) / "streamlab-")
    try:
        files = [f.path for f in process.open_files()]
    except psutil.Error:
        files = []
    if not any(prefix in text for text in [" ".join(cmdline), *files]):
        return False
    try:
        parents = process.parents()
    except psutil.Error:
        return False
    return process.ppid() == 1 or any(p.pid == os.getpid() for p in parents)


def project_processes() -> list[ProjectProcess]:
    """Servers and their helpers started during this session that are still running."""
    found = []
    for process in psutil.process_iter(["pid", "name", "cmdline", "status"]):
        info = process.info
        if info["status"] == psutil.STATUS_ZOMBIE or info["pid"] == os.getpid():
            continue
        cmdline = info["cmdline"] or []
        kind = _kind(cmdline, info["name"] or "")
        if kind is not None and _ours(process, kind, cmdline):
            found.append(ProjectProcess(info["pid"], kind, " ".join(cmdline)))
    return found


@pytest.fixture(scope="session")
def find_project_processes():
    """``project_processes`` for tests (a test module cannot import this plugin)."""
    return project_processes
