"""Binder, checked here without Docker: the build repo2docker plans for this repository, the
pip list against Binder's frozen base, JupyterLab's settings, and the link a learner follows
through a hub (a Jupyter server set up as JupyterHub sets up a user's server).

The browser half of the hub check (JupyterLab on a hub, the notebook's links followed in
Chromium) is in test_browser.py.
"""

import json
import re
import subprocess
import sys
from importlib import resources

import psutil
import pytest
import requests
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from support.hub import HUB_HOST, HUB_PREFIX
from support.project import pip_requirements

from streamlab import start_server
from streamlab.paths import PROJECT_ROOT
from streamlab.servers.jupyter import JupyterServer, proxy_link

pytest.importorskip("repo2docker", reason="jupyter-repo2docker (the test extra) is not installed")



def binder_python() -> str:
    """The ``X.Y`` environment.yml pins (repo2docker reads only ``python=X.Y``)."""
    pins = re.findall(r"^\s*-\s*python\s*=\s*(\d+\.\d+)\s*$",
                      (PROJECT_ROOT / "environment.yml").read_text(), re.MULTILINE)
    assert len(pins) == 1, "environment.yml should pin one python=X.Y"
    return pins[0]


@pytest.fixture(scope="module")
def plan() -> str:
    """What repo2docker would build (its Dockerfile), printed without building anything."""
    done = subprocess.run(
        [sys.executable, "-m", "repo2docker", "--no-build", "--no-run", "--debug",
         str(PROJECT_ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = done.stdout + done.stderr
    # Files copied into the image are named by their escaped path ("-2e" is "."): unescape.
    return re.sub(r"-([0-9a-f]{2})", lambda m: chr(int(m[1], 16)), text)


def test_the_python_pin_is_one_the_suite_runs_on():
    assert binder_python() in {"3.11", "3.12", "3.13"}  # .ci/run tests these


def test_repo2docker_plans_the_conda_build_with_the_pinned_python(plan):
    python = binder_python()
    print(plan)
    assert f"Building conda environment for python={python}" in plan  # the conda buildpack
    # Its frozen base for that Python, then our environment on top, then postBuild.
    base = plan.index(f"environment.py-{python}-linux-64.lock")
    apt = re.search(r"apt-get install --yes --no-install-recommends nginx pgbouncer "
                    r"postgresql\b", plan)
    env = plan.index('env update -p ${NB_PYTHON_PREFIX} --file "environment.yml"')
    post = plan.index("RUN ./postBuild")
    assert apt is not None, "apt.txt's nginx, postgresql and pgbouncer are installed"
    assert base < apt.start() < env < post


def test_postbuild_installs_the_project_and_the_lab_settings():
    script = (PROJECT_ROOT / "postBuild").read_text()
    assert "pip install --no-deps -e ." in script
    assert "make lab-settings LAB_PREFIX=" in script
    made = subprocess.run(["make", "-n", "lab-settings", "LAB_PREFIX=/srv/conda/envs/notebook"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout
    assert ("/srv/conda/envs/notebook/share/jupyter/lab/settings/overrides.d/"
            "streaming-django.json") in made


def _base_versions(python: str) -> dict[str, str]:
    """Package name -> version in repo2docker's frozen base for ``python`` (its lock file)."""
    conda = resources.files("repo2docker.buildpacks.conda")
    lock = conda / f"environment.py-{python}-linux-64.lock"
    versions = {}
    for url in re.findall(r"^https?://\S+", lock.read_text(), re.MULTILINE):
        file = re.sub(r"\.(conda|tar\.bz2)$", "", url.split("#")[0].rsplit("/", 1)[1])
        name, version, _build = file.rsplit("-", 2)
        versions[canonicalize_name(name)] = version
    return versions


def _pip_can_pin(name: str, version: str) -> bool:
    """Whether ``name==version`` is a valid pip constraint. Conda-only packages can have names
    (``_libgcc_mutex``) or versions (``9e``) that no PyPI package has: those are left out."""
    try:
        Version(version)
    except InvalidVersion:
        return False
    return re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", name) is not None


def _pip_dry_run(requirements, constraints, python, tmp_path) -> subprocess.CompletedProcess:
    """pip's resolution of ``requirements`` for Linux and ``python``, installing nothing."""
    (tmp_path / "requirements.txt").write_text("\n".join(requirements) + "\n")
    (tmp_path / "constraints.txt").write_text("".join(f"{c}\n" for c in constraints))
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--disable-pip-version-check", "--report", "-", "--target", str(tmp_path / "target"),
         "--python-version", python, "--only-binary=:all:",
         "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64",
         "--platform", "linux_x86_64",
         "-r", str(tmp_path / "requirements.txt"), "-c", str(tmp_path / "constraints.txt")],
        capture_output=True, text=True, timeout=600,
    )


@pytest.mark.slow
def test_the_pip_list_resolves_on_binders_frozen_base(tmp_path):
    """postBuild's environment.yml pip step lands on repo2docker's base. Resolved with every
    base package pinned to the base's version, it may move only what our own list asks to
    be newer (named below): everything else in Binder's Jupyter stays as repo2docker froze it."""
    python = binder_python()
    base = _base_versions(python)
    requirements = [Requirement(line) for line in pip_requirements()]
    raised = {canonicalize_name(r.name) for r in requirements
              if canonicalize_name(r.name) in base and base[canonicalize_name(r.name)]
              not in r.specifier}
    free = _pip_dry_run([str(r) for r in requirements], [], python, tmp_path)
    assert free.returncode == 0, free.stderr[-3000:]
    resolved = {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
                for item in json.loads(free.stdout)["install"]}
    pins = [f"{name}=={version}" for name, version in sorted(base.items())
            if name not in raised and _pip_can_pin(name, version)]
    pinned = _pip_dry_run([str(r) for r in requirements], pins, python, tmp_path)
    held = sum(name in base for name in resolved)
    print(f"Binder base for Python {python}: {len(base)} packages; pip resolves "
          f"{len(resolved)}, {held} of them from the base, held at its versions except "
          f"those raised on purpose: {sorted(raised) or 'none'}")
    assert pinned.returncode == 0, (
        "the pip list needs a base package newer than repo2docker's frozen one; pip's "
        f"answer:\n{pinned.stderr[-3000:]}")
    moved = {name for name, version in ((canonicalize_name(i["metadata"]["name"]),
                                         i["metadata"]["version"])
                                        for i in json.loads(pinned.stdout)["install"])
             if name in base and version != base[name]}
    assert moved == raised


# -- the hub-proxied link -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub():
    """A Jupyter server as JupyterHub (and so Binder) starts a user's: under /user/<name>/,
    any Host allowed, JUPYTERHUB_SERVICE_PREFIX set for its kernels."""
    with JupyterServer(name="t-hub", hub_prefix=HUB_PREFIX) as jupyter:
        yield jupyter


def _through_the_hub(jupyter: JupyterServer, link: str) -> requests.Response:
    """GET ``link`` (an absolute path, as the notebook prints it) as the hub's proxy would
    pass it on: to the user's server, with the browser's Host."""
    return requests.get(f"http://127.0.0.1:{jupyter.port}{link}", timeout=30,
                        headers={**jupyter.auth_headers, "Host": HUB_HOST})


def test_under_a_hub_the_link_reaches_the_app_with_the_hubs_host(hub, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", HUB_PREFIX)  # as in a kernel on the hub
    with start_server(name="t-hub-app") as app:
        link = proxy_link(app.port, "/hello")
        assert link == f"{HUB_PREFIX}proxy/{app.port}/hello"
        reply = _through_the_hub(hub, link)
        assert reply.status_code == 200 and reply.text.startswith("Hello"), reply.text[:300]
        # Still on the loopback only: the one way in from outside is the hub's proxy.
        listening = {c.laddr.ip for p in [app.main_process(), *app.worker_processes()]
                     for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
        assert listening == {"127.0.0.1"}


def test_without_the_hub_setting_the_same_link_is_refused(hub, monkeypatch):
    """The failure a learner met before: Django's DisallowedHost, a 400."""
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", HUB_PREFIX)
    with start_server(name="t-hub-app-before", env={"DJANGO_ALLOWED_HOSTS": ""}) as app:
        reply = _through_the_hub(hub, proxy_link(app.port, "/hello"))
    assert reply.status_code == 400


def test_off_a_hub_the_app_keeps_its_loopback_hosts(monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    with start_server(name="t-no-hub") as app:
        assert "DJANGO_ALLOWED_HOSTS" not in app.environment()
        refused = requests.get(app.url("/hello"), headers={"Host": HUB_HOST}, timeout=10)
    assert refused.status_code == 400


def test_the_lab_settings_shut_a_kernel_down_with_its_tab(hub):
    """JupyterLab reads the shipped overrides (make install puts them in the environment)."""
    reply = requests.get(hub.url("/lab/api/settings/@jupyterlab/notebook-extension:tracker"),
                         headers=hub.auth_headers, timeout=30)
    assert reply.status_code == 200, reply.text[:300]
    shipped = json.loads((PROJECT_ROOT / "jupyterlab-settings" / "overrides.json").read_text())
    assert shipped["@jupyterlab/notebook-extension:tracker"]["kernelShutdown"] is True
    # JupyterLab's server applies overrides to the schema's defaults, which the page uses.
    default = reply.json()["schema"]["properties"]["kernelShutdown"]["default"]
    assert default is True, "run `make install` to install the lab settings"
