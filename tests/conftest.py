"""Shared fixtures, the test tiers, and where the tests write.

Tiers: ``make test`` runs everything; ``make test-fast`` (``pytest -m "not slow"``) leaves
out what is marked ``slow`` here, in one place: whole modules (SLOW_MODULES) and every
test that executes a notebook (marked ``notebooks``).

Writing: nothing a test writes lands in a learner's ``build/``. What the notebooks record
goes to a session-wide temporary folder (``$STREAMLAB_RESULTS_DIR``, see
``streamlab.series.results``), and the tests that write files use pytest's ``tmp_path``.
The one exception is the reliability figures, a report of the test run itself (see
``support/reliability_plugin.py``).
"""

import os

import django
import pytest

from streamlab.measurement.workers import StreamEvents

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_app.settings")
django.setup()

# Modules left out of `make test-fast`, and why.
SLOW_MODULES = {
    "test_reliability.py": "thousands of hostile requests, aborted downloads and load, minutes",
    "test_hygiene.py": "kernels restarted and interrupted mid-notebook",
    "test_exposure.py": "every kind of server started and inspected, Jupyter and nginx included",
    "test_browser.py": "JupyterLab driven in headless Chromium",
}


@pytest.hookimpl(tryfirst=True)  # before `-m` selects on the markers
def pytest_collection_modifyitems(config, items):
    """Mark the slow tier: SLOW_MODULES, and every test that executes a notebook."""
    for item in items:
        if item.path.name in SLOW_MODULES or item.get_closest_marker("notebooks"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def results_elsewhere(tmp_path_factory):
    """Notebooks executed by the tests record into a temporary folder, not build/results/.

    Kernels, servers and Jupyter started by the tests inherit the variable. The benchmark
    results the wrap-up reads are pointed at a file that does not exist, so a learner's
    ``make bench`` run neither changes what the tests see nor is touched by them.
    """
    scratch = tmp_path_factory.mktemp("streamlab")
    values = {"STREAMLAB_RESULTS_DIR": str(scratch / "results"),
              "STREAMLAB_BENCH_RESULTS": str(scratch / "bench" / "results.json")}
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    yield scratch
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session", autouse=True)
def django_test_environment():
    """Let Django's test client talk to the app (it allows the 'testserver' host)."""
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()
    yield
    teardown_test_environment()


@pytest.fixture(scope="module")
def sync_server():
    """One sync-worker demo server shared by a module's tests, stopped afterwards."""
    from streamlab import DemoServer

    with DemoServer(name="tests-sync") as server:
        yield server


@pytest.fixture
def settings():
    from django.conf import settings as django_settings

    return django_settings


@pytest.fixture
def assert_bad_request():
    """Check a response is the demo app's 400: one line of plain text giving the reason."""

    def check(response, reason: str) -> None:
        assert response.status_code == 400
        text = response.content.decode()
        assert reason in text
        assert text.count("\n") == 1 and text.endswith("\n")
        assert response["Content-Type"].startswith("text/plain")

    return check


@pytest.fixture(scope="module")
def events():
    """A folder where the demo's generators record how they ended (``StreamEvents``), for
    the servers a test module starts (pass ``events.env`` to them); removed afterwards."""
    recorder = StreamEvents()
    yield recorder
    recorder.cleanup()
