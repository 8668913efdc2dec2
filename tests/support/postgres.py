"""The tests that need PostgreSQL: skipped where it is not installed, failed under CI,
which installs it (.ci/run)."""

import os

import pytest

from streamlab.servers.postgres import postgres_available

UNDER_CI = os.environ.get("CI") == "true"


def need_postgres() -> None:
    """Skip the calling test (or module) without PostgreSQL; under CI, fail instead."""
    if postgres_available():
        return
    if UNDER_CI:
        pytest.fail("CI installs PostgreSQL (.ci/run), but it is not available", pytrace=False)
    pytest.skip("PostgreSQL is not installed (or STREAMLAB_NO_POSTGRES=1): "
                "apt-get install postgresql pgbouncer", allow_module_level=True)
