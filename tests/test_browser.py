"""A learner's path, in a real browser: JupyterLab in headless Chromium runs notebooks 00,
09, 11 and 12 cell by cell; and on a hub (as on Binder) a notebook's links, followed in
Chromium, behave as the notebooks say, and closing the notebook's tab stops its kernel and
servers."""

import re
import shutil
import time

import nbformat
import pytest
import requests
from support.browser import CHROMIUM_ARGS, chromium_path, close_notebook_tab, run_notebook_in_lab
from support.hub import HUB_HOST, HUB_PREFIX
from support.postgres import need_postgres
from support.wait import wait_until

from streamlab import measure
from streamlab.measurement.browser import DONE
from streamlab.measurement.sse_clients import page_timeline
from streamlab.paths import NOTEBOOK_DIR
from streamlab.series import notebooks
from streamlab.servers.jupyter import JupyterServer
from streamlab.servers.process import still_running

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = chromium_path()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium: install Debian's 'chromium' package (CI does) or set STREAMLAB_CHROMIUM",
)


@pytest.mark.parametrize(("name", "shows", "timeout"), [
    ("00_start_here.ipynb", "Transfer-Encoding: chunked", 180),
    # 09 starts a Chromium of its own beside JupyterLab's: the heaviest notebook, run as a
    # learner runs it.
    ("09_streaming_to_a_browser.ipynb", "EventSource: first token", 420),
    # 11 holds eight servers at once in one kernel.
    ("11_asgi_servers.ipynb", "gunicorn asgi, --backlog 2048", 300),
    # 12 holds a PostgreSQL, two workers and a hundred streams, and a Chromium of its own.
    ("12_one_event_every_worker.ipynb", "LISTEN per worker: p50", 300),
], ids=lambda v: v.split("_")[0] if isinstance(v, str) and v.endswith(".ipynb") else None)
def test_a_notebook_runs_in_jupyterlab(tmp_path, name, shows, timeout):
    if "postgresql" in notebooks.needs(nbformat.read(NOTEBOOK_DIR / name, as_version=4)):
        need_postgres()  # skipped without it, but never under CI
    shutil.copy(NOTEBOOK_DIR / name, tmp_path / name)  # the committed notebook stays clean
    # Next to the copy, in pytest's temporary folder (kept for the last three runs).
    screenshot = tmp_path / "screenshots" / f"{name[:-6]}.png"
    with JupyterServer(name="t-lab", root_dir=tmp_path) as lab:
        with playwright.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            url = lab.url(f"/lab/tree/{name}?token={lab.token}")
            nb = run_notebook_in_lab(page, url, tmp_path / name, screenshot=screenshot,
                                     show_text=shows, timeout=timeout)
            browser.close()
        descendants = lab.pids()
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert errors == [], [f"{o.ename}: {o.evalue}" for o in errors]
    not_run = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and not c.execution_count]
    assert not_run == [], f"cells that did not run: {not_run}"
    assert shows in "".join(o.get("text", "") for c in code for o in c.outputs)
    assert screenshot.stat().st_size > 10_000, f"see {screenshot}"
    # The kernel, and any server the notebook started, went with JupyterLab.
    assert still_running(descendants) == []


# -- on a hub ----------------------------------------------------------------------------------

EXPORT_ROWS, EXPORT_DELAY_MS = 6, 300
EXPORT = f"/download_csv_streaming?rows={EXPORT_ROWS}&chunk_rows=1&delay_ms={EXPORT_DELAY_MS}"
LINKS = f'''\
from IPython.display import HTML, display

from streamlab import proxy_link, start_server

server = start_server(name="hub-links", worker_class="gthread", threads=4)
links = [proxy_link(server.port, "/chat?think_ms=1500&token_ms=60"),
         proxy_link(server.port, "{EXPORT}")]
display(HTML(" ".join(f'<a href="{{link}}" target="_blank">{{link}}</a>' for link in links)))
print(*links, sep="\\n")
'''


def test_on_a_hub_the_notebooks_links_stream_or_arrive_whole_as_they_say(tmp_path):
    """The links notebooks 08 and 09 print (proxy_link), on a hub: the chat page's EventSource
    streams and its fetch() arrives whole (09), a download arrives whole (08): both
    jupyter-server-proxy's doing. Then the learner closes the tab: the kernel shuts down
    (the shipped JupyterLab settings) and the demo server with it."""
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(LINKS)]),
                   tmp_path / "links.ipynb")
    with JupyterServer(name="t-hub-lab", root_dir=tmp_path, hub_prefix=HUB_PREFIX) as lab:
        public = f"http://{HUB_HOST}:{lab.port}"
        with playwright.sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {HUB_HOST} 127.0.0.1"])
            context = browser.new_context(viewport={"width": 1400, "height": 900},
                                          accept_downloads=True)
            lab_page = context.new_page()
            nb = run_notebook_in_lab(
                lab_page, f"{public}{HUB_PREFIX}lab/tree/links.ipynb?token={lab.token}",
                tmp_path / "links.ipynb", screenshot=tmp_path / "screenshots" / "links.png")
            cell = nb.cells[0]
            assert cell.execution_count and cell.outputs, "the links cell did not run"
            chat, export = cell.outputs[-1]["text"].split()
            port = int(re.search(r"/proxy/(\d+)/", chat)[1])

            tab = context.new_page()  # the learner opens the link in a new tab
            tab.goto(public + chat)
            tab.wait_for_function(DONE, timeout=60_000)
            pane = {name: page_timeline(name, m)
                    for name, m in tab.evaluate("window.marks").items()}
            direct = measure(f"http://127.0.0.1:{port}{EXPORT}", keep_body=True)
            started = time.monotonic()
            with tab.expect_download(timeout=60_000) as download:
                tab.evaluate("url => { window.location.href = url; }", public + export)
            waited = time.monotonic() - started
            body = download.value.path().read_bytes()
            tab.close()

            close_notebook_tab(lab_page)
            kernels = wait_until(lambda: not requests.get(
                lab.url("/api/kernels"), headers=lab.auth_headers, timeout=10).json(), 30)
            app_gone = wait_until(lambda: not _answers(f"http://127.0.0.1:{port}/hello"), 30)
            browser.close()
    live, held = pane["eventsource"], pane["fetch"]
    print(f"on the hub: EventSource first token {live.first_token_s:.2f} s of {live.total_s:.2f} s;"
          f" fetch() {held.first_token_s:.2f} s of {held.total_s:.2f} s; download started after "
          f"{waited:.2f} s (direct: first byte {direct.ttfb_s:.2f} s of {direct.total_s:.2f} s)")
    assert chat.startswith(f"{HUB_PREFIX}proxy/{port}/") and export.endswith(EXPORT)
    assert live.text == held.text and live.text
    assert live.first_token_s < 0.6 * live.total_s  # EventSource asks for text/event-stream
    assert held.first_token_s > 0.9 * held.total_s  # fetch() does not: buffered whole
    assert direct.ttfb_s < 0.3 * direct.total_s  # the export itself streams...
    # ...but through the proxy it starts only once done: after the view's own pauses at least.
    assert waited > 0.9 * EXPORT_ROWS * EXPORT_DELAY_MS / 1000
    assert body == direct.body
    assert kernels, ("closing the notebook's tab did not shut its kernel down: are the lab "
                     "settings installed (make install)?")
    assert app_gone, "the kernel's demo server outlived it"


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
    except requests.RequestException:  # refused, or a half-stopped server that never answers
        return False
    return True


