"""Drive JupyterLab in a real, headless Chromium (Debian's package) with Playwright.

Used by the browser test: open a notebook in JupyterLab, run every cell
through the UI as a learner would, save it, and take a screenshot.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import nbformat

# Where Chromium is and how it starts (offline, as root) is the library's, which notebook 09
# uses too; the test imports both names from here with the JupyterLab driver.
from streamlab.measurement.browser import CHROMIUM_ARGS, chromium_path

__all__ = ["CHROMIUM_ARGS", "chromium_path", "close_notebook_tab", "refuse_the_network",
           "run_notebook_in_lab"]


def run_notebook_in_lab(
    page, lab_url: str, saved_copy: Path, *, timeout: float = 180.0,
    screenshot: Path | None = None, show_text: str | None = None,
) -> nbformat.NotebookNode:
    """Open ``lab_url`` (a notebook in JupyterLab), click Run > Run All Cells, save,
    and return the saved notebook once every code cell has run. The screenshot
    shows the output containing ``show_text`` when given, else the top.

    JupyterLab renders only the cells in view, so the saved file, not the page,
    tells whether every cell ran.
    """
    page.goto(lab_url)
    _wait_for_kernel(page)
    _run_all(page)
    deadline = time.monotonic() + timeout
    while True:
        time.sleep(2)
        if _answer_kernel_dialog(page):  # it can come late: then run everything again
            _wait_for_kernel(page)
            _run_all(page)
            continue
        dialog = page.query_selector(".jp-Dialog")
        if dialog is not None:
            if screenshot is not None:
                page.screenshot(path=str(screenshot.with_suffix(".dialog.png")))
            raise RuntimeError(f"JupyterLab showed a dialog: {dialog.inner_text()[:500]!r}")
        _menu(page, "File", "^Save( Notebook)?$")
        time.sleep(0.5)
        nb = nbformat.read(saved_copy, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        idle = page.get_attribute(".jp-Notebook-ExecutionIndicator", "data-status") == "idle"
        if (idle and all(c.execution_count for c in code)) or time.monotonic() > deadline:
            break
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        _scroll_to(page, show_text)
        for dismiss in page.query_selector_all(".jp-toast-button:text-is('No')"):
            dismiss.click()  # the "get notified about Jupyter news?" pop-up
        page.screenshot(path=str(screenshot))
    return nb


def refuse_the_network(route, refused: list[str]) -> None:
    """A Playwright route handler for a page that must work offline: local files, data
    URLs and 127.0.0.1 go through; anything else is refused and its URL noted in ``refused``."""
    url = route.request.url
    if url.startswith(("file:", "data:", "blob:")) or urlsplit(url).hostname == "127.0.0.1":
        route.continue_()
    else:
        refused.append(f"refused, not local: {url}")
        route.abort()


def close_notebook_tab(page) -> None:
    """Close the active notebook's tab, as a learner does between notebooks (File > Close Tab)."""
    page.click(".jp-NotebookPanel .jp-Cell >> nth=0")
    _menu(page, "File", "^Close Tab$")


def _scroll_to(page, text: str | None) -> None:
    """Scroll the notebook to its top, then down until an output shows ``text``."""
    panel = ".jp-NotebookPanel-notebook"
    page.eval_on_selector(panel, "el => { el.scrollTop = 0; }")
    if text is None:
        return
    for _ in range(60):
        found = page.query_selector(f".jp-OutputArea-output:has-text({text!r})")
        if found is not None:
            found.scroll_into_view_if_needed()
            return
        page.eval_on_selector(panel, "el => { el.scrollTop += el.clientHeight / 2; }")
        time.sleep(0.2)


def _menu(page, menu: str, item: str, attempts: int = 5) -> None:
    """Click ``menu`` in the menu bar, then the entry matching the regular expression
    ``item``. On a busy machine the menu can miss the first click, so close it
    and try again."""
    entry = page.locator(f".lm-Menu-itemLabel:text-matches('{item}')")
    for _ in range(attempts):
        page.click(f".lm-MenuBar-itemLabel:text-is('{menu}')")
        try:
            entry.wait_for(state="visible", timeout=5_000)
        except Exception:  # Playwright's TimeoutError: the menu did not open
            page.keyboard.press("Escape")
            continue
        entry.click()
        return
    raise TimeoutError(f"JupyterLab's {menu} menu did not offer {item!r}.")


def _run_all(page) -> None:
    # The Run menu acts on the active widget: make it the notebook (a click on its
    # first cell), or the menu offers a generic "Run All" that runs nothing here.
    page.click(".jp-NotebookPanel .jp-Cell >> nth=0")
    _menu(page, "Run", "^Run All Cells$")


def _answer_kernel_dialog(page) -> bool:
    """Accept JupyterLab's "Select Kernel" dialog, as a learner would; True if there was one.

    JupyterLab asks which kernel to use when it opens a notebook before it
    has listed the kernels; the default it offers (Python 3) is the right one.
    """
    dialog = page.query_selector(".jp-Dialog")
    if dialog is None or "Select Kernel" not in dialog.inner_text():
        return False
    page.click(".jp-Dialog .jp-mod-accept")
    return True


def _wait_for_kernel(page, timeout: float = 90.0) -> None:
    """Wait until the notebook's kernel has been idle for two checks in a row."""
    deadline = time.monotonic() + timeout
    idle_checks = 0
    while time.monotonic() < deadline:
        if _answer_kernel_dialog(page):
            idle_checks = 0
        elif page.query_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']"):
            idle_checks += 1
            if idle_checks >= 2:
                return
        time.sleep(1)
    raise TimeoutError(f"The notebook's kernel was not idle within {timeout:g} s.")
