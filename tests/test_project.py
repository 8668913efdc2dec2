"""The project's own consistency: one dependency list for pip and conda, every
import declared, Django's checks clean, the code lint-free."""

import ast
import json
import re
import shutil
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from support.project import pip_requirements, pyproject

from streamlab.paths import PROJECT_ROOT
from streamlab.series.notebooks import series

LOCAL_PACKAGES = {"streamlab", "demo_app", "conftest", "support"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _environment_yml_pip() -> list[str]:
    """The entries of environment.yml's ``pip:`` list (plain text: no YAML library needed)."""
    entries, in_pip = [], False
    for line in (PROJECT_ROOT / "environment.yml").read_text().splitlines():
        stripped = line.strip()
        if stripped == "- pip:":
            in_pip = True
        elif in_pip and stripped.startswith("- "):
            entries.append(stripped[2:].strip())
        elif in_pip and stripped and not stripped.startswith("#"):
            in_pip = False
    return entries


def test_pip_and_conda_lists_agree():
    assert sorted(_environment_yml_pip()) == sorted(pip_requirements())


def test_django_range_supports_both_lts_and_6():
    deps = {_name(r): r for r in pyproject()["project"]["dependencies"]}
    assert deps["django"].replace(" ", "") == "django>=5.2,<7"


def _imports_of(source: str) -> set[str]:
    tree = ast.parse(source)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _notebook_code(path: Path) -> str:
    nb = json.loads(path.read_text())
    lines = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            # IPython magics and shell escapes are not Python.
            lines += [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def _third_party(names: set[str]) -> set[str]:
    return {n for n in names if n not in sys.stdlib_module_names and n not in LOCAL_PACKAGES}


def _declared(requirements: list[str]) -> set[str]:
    return {_name(r) for r in requirements}


def _distribution(module: str) -> str:
    dists = packages_distributions().get(module, [module])
    return dists[0].lower().replace("_", "-")


@pytest.mark.parametrize("area", ["runtime", "tests"])
def test_every_import_is_declared(area):
    project = pyproject()["project"]
    if area == "runtime":
        folders = [PROJECT_ROOT / d for d in ("streamlab", "demo_app", "scripts")]
        files = [p for folder in folders for p in folder.rglob("*.py")]
        sources = [p.read_text() for p in files] + [_notebook_code(p) for p in series()]
        declared = _declared(project["dependencies"])
    else:
        sources = [p.read_text() for p in (PROJECT_ROOT / "tests").rglob("*.py")]
        declared = _declared(project["dependencies"] + project["optional-dependencies"]["test"])
    modules = set().union(*(_imports_of(s) for s in sources))
    missing = {m: _distribution(m) for m in _third_party(modules)}
    # Jupyter's kernel provides IPython to every notebook (ipykernel depends on it).
    undeclared = {m: d for m, d in missing.items() if d not in declared and m != "IPython"}
    assert undeclared == {}, f"imported but not declared in pyproject.toml: {undeclared}"


def test_django_system_checks_are_clean():
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    out = subprocess.run([ruff, "check", "."], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


MAX_MODULE_LINES = 500  # a module longer than this does more than one job: split it by job


def test_no_module_of_the_project_is_over_500_lines():
    lengths = {str(path.relative_to(PROJECT_ROOT)): len(path.read_text().splitlines())
               for folder in ("streamlab", "demo_app", "scripts")
               for path in (PROJECT_ROOT / folder).rglob("*.py")}
    assert len(lengths) > 50  # the library, the app and the scripts were all read
    assert {name: n for name, n in lengths.items() if n > MAX_MODULE_LINES} == {}


def test_no_secret_key_is_committed():
    settings = (PROJECT_ROOT / "demo_app" / "settings.py").read_text()
    assignments = re.findall(r"^SECRET_KEY\s*=\s*(.+)$", settings, flags=re.M)
    assert assignments == ['os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)']


def test_licence_and_citation_agree_withpyproject():
    project = pyproject()["project"]
    assert (PROJECT_ROOT / "LICENSE").read_text().startswith("MIT License")
    assert "LICENSE" in project["license-files"]
    cff = (PROJECT_ROOT / "CITATION.cff").read_text()
    fields = dict(re.findall(r'^([a-z-]+): "?([^"\n]*)"?$', cff, re.MULTILINE))
    assert fields["cff-version"] == "1.2.0"
    assert fields["version"] == project["version"]
    assert fields["license"] in project["license"].split(" AND ")
    assert fields["title"].lower().startswith("streaming http responses in django")
    assert re.search(r"^authors:\n  - name: \S", cff, re.MULTILINE)
