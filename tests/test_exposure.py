"""Nothing beyond the loopback: every server listens on 127.0.0.1, no secret is committed,
DEBUG is off wherever something is measured, and Django's checks are clean.

The listening sockets are read from the operating system (psutil), for every
process of each kind of server the project starts: the demo app under the
sync, gthread and ASGI workers, ``make serve``, the nginx proxy, the Jupyter
server and a notebook kernel.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests
from nbclient import NotebookClient

from streamlab import DemoServer
from streamlab.paths import NOTEBOOK_DIR, PROJECT_ROOT
from streamlab.servers.asgi_servers import OTHER_SERVERS, SERVER_CLASSES
from streamlab.servers.jupyter import JupyterServer
from streamlab.servers.nginx import nginx_available, start_nginx
from streamlab.servers.process import free_port, still_running

pytest_plugins = ["support.reliability_plugin"]

AREA = "exposure"
LOOPBACK = "127.0.0.1"
# What Django answers for an unknown page with DEBUG off; with DEBUG on, its technical
# 404 page lists the URLconf instead and says "you have DEBUG = True".
PLAIN_404 = "The requested resource was not found on this server."


def open_sockets(pids: list[int]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every listening TCP socket and bound UDP socket of ``pids``."""
    found = []
    for pid in pids:
        try:
            connections = psutil.Process(pid).net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        for c in connections:
            if c.status == psutil.CONN_LISTEN or (c.type == socket.SOCK_DGRAM and c.laddr):
                found.append((pid, c.laddr.ip, c.laddr.port))
    return found


def check_sockets(figures, what: str, sockets: list[tuple[int, str, int]]) -> None:
    exposed = [s for s in sockets if s[1] != LOOPBACK]
    figures.count(AREA, "servers checked")
    figures.count(AREA, "listening sockets", len(sockets), one="listening socket")
    figures.count(AREA, "beyond 127.0.0.1", len(exposed))
    assert sockets, f"{what}: no listening socket found"
    assert exposed == [], f"{what} listens beyond the loopback: {exposed}"


def check_debug_off(figures, url: str) -> None:
    """An unknown page gets Django's plain 404, not the DEBUG page that maps the whole app."""
    response = requests.get(url, timeout=30)
    debug_on = response.status_code != 404 or PLAIN_404 not in response.text or (
        "DEBUG" in response.text or "URLconf" in response.text)
    figures.count(AREA, "running configurations with DEBUG on", int(debug_on),
                  one="running configuration with DEBUG on")
    assert not debug_on, response.text[:500]


# -- Listening sockets ------------------------------------------------------------------------


@pytest.mark.parametrize("worker_class", ["sync", "gthread", "asgi"])
def test_demo_server_listens_on_loopback_only_with_debug_off(worker_class, figures):
    threads = 2 if worker_class == "gthread" else None
    with DemoServer(name=f"tests-exposure-{worker_class}", worker_class=worker_class,
                    workers=2, threads=threads) as server:
        sockets = open_sockets(server.pids())
        check_debug_off(figures, server.url("/no-such-page"))
    check_sockets(figures, f"Gunicorn ({worker_class})", sockets)
    assert {port for _, _, port in sockets} == {server.port}
    assert len({pid for pid, _, _ in sockets}) == 3  # the master and both workers hold it


@pytest.mark.parametrize("name", list(OTHER_SERVERS))
def test_other_asgi_servers_listen_on_loopback_only_with_debug_off(name, figures):
    with SERVER_CLASSES[name](name=f"tests-exposure-{name}") as server:
        sockets = open_sockets(server.pids())
        check_debug_off(figures, server.url("/no-such-page"))
    check_sockets(figures, name, sockets)
    assert {port for _, _, port in sockets} == {server.port}


def test_make_serve_listens_on_loopback_only(figures):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "scripts/serve.py", "--port", str(port)], cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://{LOOPBACK}:{port}/", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        tree = psutil.Process(process.pid)
        pids = [process.pid] + [p.pid for p in tree.children(recursive=True)]
        sockets = open_sockets(pids)
        check_debug_off(figures, f"http://{LOOPBACK}:{port}/no-such-page")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    check_sockets(figures, "make serve", sockets)
    assert still_running(pids) == []


@pytest.mark.skipif(not nginx_available(), reason="nginx is not installed")
def test_nginx_proxy_listens_on_loopback_only(figures):
    with (
        DemoServer(name="tests-exposure-upstream") as server,
        start_nginx(server, name="tests-exposure-nginx") as proxy,
    ):
        sockets = open_sockets(proxy.pids())
        check_debug_off(figures, proxy.url("/no-such-page"))
    check_sockets(figures, "nginx", sockets)
    assert {port for _, _, port in sockets} == {proxy.port}


def test_jupyter_server_listens_on_loopback_only_and_wants_its_token(figures):
    with JupyterServer(name="tests-exposure-jupyter") as jupyter:
        sockets = open_sockets(jupyter.pids())
        anonymous = requests.get(jupyter.url("/api/status"), timeout=30)
        with_token = requests.get(jupyter.url("/api/status"), headers=jupyter.auth_headers,
                                  timeout=30)
    check_sockets(figures, "the Jupyter server", sockets)
    assert anonymous.status_code == 403 and with_token.status_code == 200


def test_notebook_kernels_listen_on_loopback_only(figures):
    """The kernels ``make run`` and the notebook tests start (through nbclient)."""
    import nbformat

    client = NotebookClient(nbformat.v4.new_notebook(), kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    with client.setup_kernel():
        sockets = open_sockets([client.km.provisioner.pid])
    check_sockets(figures, "a notebook kernel", sockets)
    assert len(sockets) >= 5  # shell, iopub, stdin, control and heartbeat


# -- Secrets ----------------------------------------------------------------------------------

# Each pattern is written so that this file's own text does not match it.
SECRET_PATTERNS = {
    "Django secret key set to a value": re.compile(
        r"SECRET_KEY['\"]?\s*[:=]\s*\\?['\"]?[A-Za-z0-9!@#$%^&*()_+=\-]{20,}"),
    "Django's insecure generated key": re.compile("django" "-insecure-"),
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY" "-----"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}|\bgithub_pat_[A-Za-z0-9_]{22,}"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    "API key of the sk- kind": re.compile(r"\bsk-[A-Za-z0-9]{32,}\b"),
    "Jupyter token in a URL": re.compile(r"[?&]token=[0-9a-f]{32,}"),
    "password set to a value": re.compile(
        r"(?i)\bpassword['\"]?\s*[:=]\s*\\?['\"][^'\"\s\\]{6,}\\?['\"]"),
}
SECRET_FILE_NAMES = re.compile(
    r"(^|/)(\.env(\..*)?|.*\.pem|.*\.key|id_rsa.*|id_ed25519.*|\.netrc|\.pypirc|.*\.p12)$")


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True,
                             timeout=60)
    except FileNotFoundError:
        pytest.skip("git is not installed")
    if out.returncode != 0:
        pytest.skip("not a git checkout: no list of tracked files")
    return [PROJECT_ROOT / name for name in out.stdout.decode().split("\0") if name]


def test_the_secret_patterns_catch_secrets():
    """Each pattern finds a made-up secret of its kind (assembled here, so never committed)."""
    key = "k3y" * 10
    samples = {
        "Django secret key set to a value": ["SECRET_" + f"KEY = '{key}'",
                                             '"SECRET_' + f'KEY = \\"{key}\\"\\n"',
                                             "DJANGO_SECRET_" + f"KEY={key}"],
        "Django's insecure generated key": ["django" + "-insecure-" + key],
        "private key": ["-----BEGIN RSA " + "PRIVATE KEY-----"],
        "AWS access key": ["AKIA" + "Q" * 16],
        "GitHub token": ["ghp" + "_" + "a" * 36],
        "Slack token": ["xoxb" + "-" + "1" * 12],
        "Google API key": ["AIza" + "b" * 35],
        "API key of the sk- kind": ["sk" + "-" + "c" * 40],
        "Jupyter token in a URL": ["http://127.0.0.1:8888/lab?" + "token=" + "d" * 48],
        "password set to a value": ["pass" + "word = 'hunter22'"],
    }
    assert set(samples) == set(SECRET_PATTERNS)
    for what, texts in samples.items():
        for text in texts:
            assert SECRET_PATTERNS[what].search(text), (what, text)
    # The settings module reads its key from the environment: not a secret in the file.
    settings_py = (PROJECT_ROOT / "demo_app" / "settings.py").read_text()
    assert "SECRET_KEY" in settings_py
    assert not SECRET_PATTERNS["Django secret key set to a value"].search(settings_py)


def test_no_secret_in_the_repository(settings, figures):
    files = tracked_files()
    findings = []
    texts = {}
    for path in files:
        if SECRET_FILE_NAMES.search(path.relative_to(PROJECT_ROOT).as_posix()):
            findings.append(f"{path.name}: a file of secrets")
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # deleted in the working tree, not yet committed
            continue
        if b"\0" in data[:8192]:
            continue  # binary
        texts[path] = text = data.decode("utf-8", errors="replace")
        for what, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(text):
                findings.append(f"{path.relative_to(PROJECT_ROOT)}: {what}: {match[0][:40]}")
    # The key the settings generate for this process is not written anywhere either.
    findings += [f"{p.name}: the running SECRET_KEY" for p, text in texts.items()
                 if settings.SECRET_KEY in text]
    figures.count(AREA, "tracked files scanned", len(files))
    figures.count(AREA, "secrets found", len(findings), one="secret found")
    assert len(texts) > 20
    assert findings == []


# -- DEBUG and Django's checks ----------------------------------------------------------------


def test_debug_is_off_unless_asked_for(settings):
    assert settings.DEBUG is False
    code = "import demo_app.settings as s; print(s.DEBUG)"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_DEBUG"}
    for value, expected in ((None, "False"), ("", "False"), ("0", "False"), ("true", "False"),
                            ("1", "True")):
        run_env = env if value is None else {**env, "DJANGO_DEBUG": value}
        out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=run_env,
                             capture_output=True, text=True, timeout=60)
        assert out.stdout.strip() == expected, (value, out.stderr)


def test_only_the_debug_lesson_turns_debug_on():
    """The library, app, scripts and tests never set DJANGO_DEBUG, so no measured
    configuration runs with DEBUG on; notebook 07 does, on purpose, to show its cost."""
    allowed = {"demo_app/settings.py", "README.md", "notebooks/07_rows_and_files.ipynb",
               "tests/test_exposure.py"}
    mentions = sorted(p.relative_to(PROJECT_ROOT).as_posix() for p in tracked_files()
                      if p.suffix in (".py", ".ipynb", ".md", ".yml", ".toml", ".cfg", ".sh", "")
                      and p.exists() and "DJANGO_DEBUG" in p.read_text(errors="replace"))
    assert set(mentions) <= allowed, mentions


# Warnings of `check --deploy` that do not apply to a demo served over plain HTTP on
# 127.0.0.1 with only GET and HEAD views: HSTS and the HTTPS redirect (W004, W008), and
# CSRF protection, which guards forms and unsafe methods (W003).
EXPECTED_DEPLOY_WARNINGS = {"security.W003", "security.W004", "security.W008"}


def test_manage_py_check_is_clean(figures):
    def check(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_DEBUG"}
        return subprocess.run([sys.executable, "manage.py", "check", *args], cwd=PROJECT_ROOT,
                              env=env, capture_output=True, text=True, timeout=120)

    plain = check("--fail-level", "WARNING")
    deploy = check("--deploy")
    warnings = set(re.findall(r"\((security\.\w+)\)", deploy.stdout + deploy.stderr))
    issues = re.search(r"identified (\d+) issue", plain.stdout + plain.stderr)
    figures.count(AREA, "manage.py check issues",
                  int(issues[1]) if issues else int(plain.returncode != 0),
                  one="manage.py check issue")
    figures.count(AREA, "unexpected deploy warnings", len(warnings - EXPECTED_DEPLOY_WARNINGS),
                  one="unexpected deploy warning")
    assert plain.returncode == 0 and "no issues" in plain.stdout, plain.stdout + plain.stderr
    assert warnings <= EXPECTED_DEPLOY_WARNINGS, deploy.stdout + deploy.stderr
