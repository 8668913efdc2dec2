"""What jupyter-server-proxy (the path a Binder learner's browser takes) does to a stream."""

import pytest

from streamlab import measure, start_server
from streamlab.servers.jupyter import JupyterServer, proxy_link

SLOW = "/download_csv_streaming?rows=5&chunk_rows=1&delay_ms=200"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture(scope="module")
def servers():
    with start_server(name="t-proxied") as app, JupyterServer(name="t-jupyter") as jupyter:
        yield app, jupyter


@pytest.mark.parametrize("accept", [BROWSER_ACCEPT, "*/*"])
def test_the_proxy_buffers_an_ordinary_request(servers, accept):
    app, jupyter = servers
    headers = {**jupyter.auth_headers, "Accept": accept}
    m = measure(jupyter.proxied_url(app.port, SLOW), headers=headers)
    assert m.status == 200 and not m.chunked and "Content-Length" in m.headers
    assert m.ttfb_s > 0.8 * m.total_s, "the first byte waited for the last"


def test_the_proxy_streams_an_event_stream_request(servers):
    app, jupyter = servers
    direct = measure(app.url(SLOW))
    headers = {**jupyter.auth_headers, "Accept": "text/event-stream"}
    proxied = measure(jupyter.proxied_url(app.port, SLOW), headers=headers, keep_body=True)
    assert proxied.chunked and proxied.nbytes == direct.nbytes
    assert proxied.ttfb_s < proxied.total_s / 3


def test_proxy_link_works_locally_and_under_a_hub(monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    assert proxy_link(8000, "/download_csv") == "/proxy/8000/download_csv"
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada")
    assert proxy_link(8000, "hello") == "/user/ada/proxy/8000/hello"
