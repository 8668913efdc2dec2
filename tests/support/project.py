"""The project's own declarations, as the tests read them."""

import tomllib

from streamlab.paths import PROJECT_ROOT


def pyproject() -> dict:
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())


def pip_requirements() -> list[str]:
    """Everything pip installs for the project and its tests: the dependencies and the test
    extra (environment.yml's pip list mirrors it)."""
    project = pyproject()["project"]
    return project["dependencies"] + project["optional-dependencies"]["test"]
