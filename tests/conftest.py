import os

import django
import pytest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_app.settings")
django.setup()


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
