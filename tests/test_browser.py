"""A learner's path, in a real browser: JupyterLab in headless Chromium runs notebook 00."""

import shutil

import pytest
from support.browser import CHROMIUM_ARGS, chromium_path, run_notebook_in_lab

from streamlab.paths import NOTEBOOK_DIR
from streamlab.servers.jupyter import JupyterServer
from streamlab.servers.process import still_running

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = chromium_path()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium: install Debian's 'chromium' package (CI does) or set STREAMLAB_CHROMIUM",
)


def test_notebook_00_runs_in_jupyterlab(tmp_path):
    name = "00_start_here.ipynb"
    shutil.copy(NOTEBOOK_DIR / name, tmp_path / name)  # the committed notebook stays clean
    # Next to the copy, in pytest's temporary folder (kept for the last three runs).
    screenshot = tmp_path / "screenshots" / "00_start_here.png"
    with JupyterServer(name="t-lab", root_dir=tmp_path) as lab:
        with playwright.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            url = lab.url(f"/lab/tree/{name}?token={lab.token}")
            nb = run_notebook_in_lab(
                page, url, tmp_path / name, screenshot=screenshot,
                show_text="Transfer-Encoding: chunked",
            )
            browser.close()
        descendants = lab.pids()
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert errors == [], [f"{o.ename}: {o.evalue}" for o in errors]
    not_run = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and not c.execution_count]
    assert not_run == [], f"cells that did not run: {not_run}"
    text = "".join(o.get("text", "") for c in code for o in c.outputs)
    assert "Transfer-Encoding: chunked" in text
    assert screenshot.stat().st_size > 10_000, f"see {screenshot}"
    # The kernel, and any server the notebook started, went with JupyterLab.
    assert still_running(descendants) == []
