"""nginx in front of the demo app: it starts, proxies, buffers as configured, and stops.

Skipped where no nginx binary is installed; the availability check itself
runs everywhere.
"""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest
import requests

from demo_app import export_views
from streamlab import DemoServer, measure
from streamlab.measurement.files import range_request, resumed_download
from streamlab.paths import PROJECT_ROOT
from streamlab.servers.nginx import NginxProxy, NginxStartError, nginx_available, start_nginx
from streamlab.servers.process import still_running

needs_nginx = pytest.mark.skipif(
    not nginx_available(),
    reason="no nginx binary on PATH (or STREAMLAB_NO_NGINX=1): install nginx to run these",
)

MiB = 2**20
# A slow producer whose whole body (~1 KiB) fits in one nginx buffer.
SLOW = "/download_csv_streaming?rows=40&chunk_rows=4&delay_ms=100"


@pytest.fixture(scope="module")
def upstream():
    with DemoServer(name="tests-nginx-upstream") as server:
        yield server


def test_nginx_available_honours_the_opt_out(monkeypatch):
    monkeypatch.setenv("STREAMLAB_NO_NGINX", "1")
    assert nginx_available() is False
    with pytest.raises(NginxStartError, match="No nginx binary"):
        NginxProxy(DemoServer(name="tests-nginx-unused")).start()


@needs_nginx
def test_start_proxy_stop_leaves_nothing_behind(upstream):
    with NginxProxy(upstream, name="tests-nginx-basic") as proxy:
        prefix = proxy.prefix
        pids = [proxy.process.pid] + [c.pid for c in _children(proxy.process.pid)]
        response = requests.get(proxy.url("/hello"), timeout=5)
        assert response.text == "Hello, there!\n"
        assert response.headers["Server"].startswith("nginx")
        assert "proxy_buffering on;" in proxy.config
        assert str(prefix) in proxy.config  # pid, logs and temp files stay under the prefix
    assert not proxy.running
    assert still_running(pids) == []
    assert not prefix.exists()
    assert "start worker process" in proxy.log  # kept after stop


@needs_nginx
def test_buffering_holds_a_slow_stream_back_by_default(upstream):
    with (
        start_nginx(upstream, buffering=None, name="tests-nginx-default") as default,
        start_nginx(upstream, buffering=False, name="tests-nginx-off") as off,
    ):
        direct = measure(upstream.url(SLOW))
        buffered = measure(default.url(SLOW))
        unbuffered = measure(off.url(SLOW))
        assert "proxy_buffering" not in default.config  # nginx's own default
        assert "proxy_buffering off;" in off.config
    assert direct.nbytes == buffered.nbytes == unbuffered.nbytes
    assert direct.ttfb_s < 0.3 * direct.total_s
    assert buffered.ttfb_s > 0.7 * buffered.total_s
    assert unbuffered.ttfb_s < 0.3 * unbuffered.total_s


@needs_nginx
def test_x_accel_buffering_no_turns_buffering_off_for_one_response(tmp_path):
    env = {"DEMO_DB_PATH": str(tmp_path / "db.sqlite3")}
    for args in (["migrate", "--verbosity", "0"], ["seed_rows", "40"]):
        subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT_ROOT, check=True,
                       env={**os.environ, **env}, capture_output=True, timeout=120)
    slow = "/export/streaming?rows=40&chunk_size=4&delay_ms=100"
    with (
        DemoServer(name="tests-nginx-db", env=env) as server,
        start_nginx(server, buffering=True, name="tests-nginx-accel") as proxy,
    ):
        held = measure(proxy.url(slow))
        passed = measure(proxy.url(slow + "&unbuffered=1"))
        upstream_log = server.log
    assert held.ttfb_s > 0.7 * held.total_s
    assert passed.ttfb_s < 0.3 * passed.total_s
    assert "X-Accel-Buffering" not in passed.headers  # nginx keeps the header to itself
    assert "unbuffered=1 HTTP/1.0" in upstream_log  # nginx's default upstream protocol


def test_internal_locations_are_checked_before_they_reach_a_config(tmp_path):
    unused = DemoServer(name="tests-nginx-unused")
    for uri in ("files/", "/files", "/a b/", "/x;/", "/$x/"):
        with pytest.raises(ValueError, match="must look like '/name/'"):
            NginxProxy(unused, internal_locations={uri: tmp_path})
    with pytest.raises(ValueError, match="cannot be given a folder"):
        NginxProxy(unused, internal_locations={"/files/": tmp_path / 'a"b'})
    proxy = NginxProxy(unused, internal_locations={"/files/": tmp_path / "." / "sub" / ".."})
    assert proxy.internal_locations == {"/files/": tmp_path.resolve()}


@pytest.fixture(scope="module")
def accel(tmp_path_factory):
    """nginx with the demo's internal files location, in front of an ASGI demo server."""
    files = tmp_path_factory.mktemp("accel-files")
    with (
        DemoServer(name="tests-nginx-accel-up", worker_class="asgi",
                   env={"DEMO_FILES_DIR": str(files)}) as server,
        start_nginx(server, internal_locations={export_views.ACCEL_LOCATION: files},
                    name="tests-nginx-accel-files") as proxy,
    ):
        yield server, proxy, files


@needs_nginx
def test_x_accel_redirect_hands_the_file_to_nginx(accel):
    server, proxy, files = accel
    location = export_views.ACCEL_LOCATION
    assert f'location {location} {{\n            internal;\n            alias "{files}/";' in (
        proxy.config)
    m = measure(proxy.url("/files/accel?mib=24"), server=server, keep_body=True)
    name = "generated-24MiB.csv"
    assert m.status == 200 and m.body == (files / name).read_bytes()
    assert m.headers["Content-Length"] == str(24 * MiB)
    assert m.headers["Content-Disposition"] == f'attachment; filename="{name}"'
    assert "X-Accel-Redirect" not in m.headers  # nginx consumes it
    assert m.worker_rss_delta < 4 * MiB  # the worker sent an empty body
    internal = requests.get(proxy.url(export_views.ACCEL_LOCATION + name), timeout=10)
    assert internal.status_code == 404  # only a redirect from the app reaches it


@needs_nginx
def test_nginx_answers_range_requests_for_the_app_and_django_does_not(accel):
    server, proxy, files = accel
    answer = range_request(proxy.url("/files/accel?mib=2"), 100, 199)
    content = (files / "generated-2MiB.csv").read_bytes()
    assert answer.status == 206 and answer.nbytes == 100
    assert answer.content_range == f"bytes 100-199/{2 * MiB}"
    assert answer.head == content[100:164]
    direct = range_request(server.url("/files/file_response?mib=2"), 100, 199)
    assert direct.status == 200 and direct.nbytes == 2 * MiB and direct.content_range is None


@needs_nginx
def test_a_cut_download_resumes_where_it_stopped(accel):
    _, proxy, files = accel
    resumed = resumed_download(proxy.url("/files/accel?mib=3"), cut_at=MiB + 5)
    assert (resumed.first_status, resumed.resume_status) == (200, 206)
    assert resumed.content_range == f"bytes {MiB + 5}-{3 * MiB - 1}/{3 * MiB}"
    assert resumed.body == (files / "generated-3MiB.csv").read_bytes()


@needs_nginx
def test_a_bad_config_fails_with_nginx_error_log(upstream):
    proxy = NginxProxy(upstream, extra_directives=["no_such_directive on"], name="tests-nginx-bad")
    with pytest.raises(NginxStartError, match="no_such_directive"):
        proxy.start()
    assert not proxy.running and proxy.prefix is None


@needs_nginx
def test_upstream_must_be_running():
    stopped = DemoServer(name="tests-nginx-stopped")
    with pytest.raises(NginxStartError, match="not running"):
        NginxProxy(stopped, name="tests-nginx-nothing").start()


@needs_nginx
def test_restarting_a_name_stops_the_previous_proxy(upstream):
    first = start_nginx(upstream, name="tests-nginx-rerun")
    second = start_nginx(upstream, name="tests-nginx-rerun")
    try:
        assert not first.running and second.running
        assert requests.get(second.url("/hello"), timeout=5).ok
    finally:
        second.stop()


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
