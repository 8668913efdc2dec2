"""The book: the executed notebooks rendered by Sphinx, in series order, solutions folded.

The quick tests read the committed notebooks. The rest build a book from notebooks 00 and
12 executed for real (the two shortest), in pytest's temporary folder, never from a
learner's ``build/``. The browser test reads that book in headless Chromium, served over
HTTP on 127.0.0.1 as it is once published, with every request beyond the loopback
refused: HTTP gives every request a status to check, and from file:// Chromium refuses
the search page's reading of the other pages for its excerpts (an error in the console).
"""

import base64
import functools
import html
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
from support.browser import refuse_the_network

from streamlab.measurement.browser import CHROMIUM_ARGS, chromium_path, unavailable
from streamlab.paths import NOTEBOOK_DIR
from streamlab.series.book import BookError, build_book, read_notebook, write_source
from streamlab.series.notebooks import CELL_TIMEOUT, question, run, save_summaries, series, title

SHORT = ["00_start_here.ipynb", "13_wrap_up.ipynb"]  # a few seconds each


def test_every_notebook_states_its_question():
    for path in series():
        assert question(path).endswith("?"), f"{path.name}: no question in its first cell"


def test_the_front_page_lists_the_series_in_order(tmp_path):
    notebooks = series()
    deck = tmp_path / "slides" / f"{notebooks[0].stem}.slides.html"
    deck.parent.mkdir()
    deck.touch()
    index = write_source(notebooks, tmp_path / "src", failed={notebooks[1].name},
                         slides=deck.parent, book_dir=tmp_path / "book").read_text()
    toctree = index.split("```{toctree}", 1)[1].split("```", 1)[0]  # options, then entries
    entries = [line for line in toctree.splitlines() if line and not line.startswith(":")]
    assert entries == [p.stem for p in notebooks]
    links = [index.index(f"]({p.name})") for p in notebooks]
    assert links == sorted(links)
    for path in notebooks:
        assert f"[{title(path)}]({path.name})" in index
        assert question(path)[1:] in index  # its first letter is made a capital
        assert (tmp_path / "src" / path.name).read_bytes() == path.read_bytes()
    assert index.count("(failed: see the page for the error)") == 1
    assert index.count('<a href="../slides/') == 1


def test_the_book_reads_solutions_folded_and_leaves_the_notebook_alone():
    path = next(p for p in series() if p.stem.startswith("04_"))
    text = path.read_text()
    nb = read_notebook(text)
    solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    assert len(solutions) >= 1
    for cell in nb.cells:
        folded = "hide-cell" in cell.metadata.get("tags", [])
        assert folded == (cell in solutions)
    assert all(c.metadata["mystnb"]["code_prompt_show"] == "Solution" for c in solutions)
    assert path.read_text() == text
    assert not any("hide-cell" in c.metadata.get("tags", [])
                   for c in nbformat.reads(text, as_version=4).cells)


def test_no_executed_notebooks_is_a_clear_error(tmp_path):
    with pytest.raises(BookError, match="No executed notebooks in .*make run"):
        build_book(tmp_path / "notebooks", tmp_path / "book")


def test_a_build_never_removes_what_is_not_a_book(tmp_path):
    (tmp_path / "notebooks").mkdir()
    shutil.copy(series()[-1], tmp_path / "notebooks")
    mine = tmp_path / "book-src" / "mine.txt"  # where Sphinx would work
    mine.parent.mkdir()
    mine.write_text("keep")
    with pytest.raises(BookError, match="not an earlier build of the book"):
        build_book(tmp_path / "notebooks", tmp_path / "book")
    assert mine.read_text() == "keep"


def test_an_unreadable_notebook_leaves_the_next_build_free(tmp_path):
    (tmp_path / "notebooks").mkdir()
    shutil.copy(series()[-1], tmp_path / "notebooks")
    bad = tmp_path / "notebooks" / "00_start_here.ipynb"
    bad.write_text("{ not a notebook")
    with pytest.raises(BookError, match="cannot be read as a notebook"):
        build_book(tmp_path / "notebooks", tmp_path / "book")
    bad.unlink()
    (tmp_path / "notebooks" / "runs.json").write_text("[]")  # not what save_summaries writes
    with pytest.raises(BookError, match="runs.json is not a record of a run"):
        build_book(tmp_path / "notebooks", tmp_path / "book")


def test_only_the_series_notebooks_go_in(tmp_path):
    (tmp_path / "notebooks").mkdir()
    shutil.copy(series()[-1], tmp_path / "notebooks" / "12_since_renamed.ipynb")
    with pytest.raises(BookError, match="No executed notebooks"):
        build_book(tmp_path / "notebooks", tmp_path / "book")


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> Path:
    """Notebooks 00 and 12, executed as `make run` does, with their record of the run."""
    folder = tmp_path_factory.mktemp("executed")
    results = [run(NOTEBOOK_DIR / name, folder, timeout=CELL_TIMEOUT) for name in SHORT]
    assert [r.error for r in results] == [None, None]
    save_summaries(results, folder / "runs.json")
    return folder


@pytest.fixture(scope="module")
def book(executed, tmp_path_factory):
    return build_book(executed, tmp_path_factory.mktemp("built") / "book")


@pytest.mark.notebooks  # executes notebooks 00 and 12, so it is in the slow tier
def test_the_book_holds_the_executed_notebooks_in_order(book, executed):
    # Sphinx's only complaint: 00 links to notebooks that this two-notebook book leaves out.
    missing = [re.search(r"target not found: '(\d\d_\w+\.ipynb)'", w) for w in book.warnings]
    assert all(missing), book.warnings
    assert {m[1] for m in missing} <= {p.name for p in series()} - set(SHORT)
    assert [p.name for p in book.pages] == [Path(name).with_suffix(".html").name for name in SHORT]
    first = book.pages[0].read_text()
    assert re.search(r'class="right-next"\s+href="13_wrap_up.html"', first)  # next in this book
    assert re.search(r'class="left-prev"\s+href="index.html"', first)  # previous
    # The download button serves the executed notebook, byte for byte.
    assert 'href="_sources/00_start_here.ipynb"' in first
    assert (book.index.parent / "_sources" / SHORT[0]).read_bytes() == (
        executed / SHORT[0]).read_bytes()
    assert "mybinder.org/v2/" not in first  # no launch button without the repository's address
    assert (book.index.parent / "search.html").exists()


@pytest.mark.notebooks
def test_each_solution_is_folded_until_clicked(book, executed):
    nb = nbformat.read(executed / SHORT[0], as_version=4)
    solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    page = book.pages[0].read_text()
    folds = [(attributes, inside) for attributes, inside
             in re.findall(r"<details([^>]*)>(.*?)</details>", page, re.S)
             if re.search(r"<summary[^>]*>\s*<[^>]+>Solution<", inside)]
    assert len(folds) == len(solutions) >= 1
    for (attributes, inside), cell in zip(folds, solutions, strict=True):
        assert "open" not in attributes  # closed until clicked
        text = html.unescape(re.sub(r"<[^>]+>", "", inside))
        assert cell.source.splitlines()[0] in text  # the solution's code inside
        assert cell.outputs[0].text.splitlines()[0] in text  # and its output
    unfolded = re.sub(r"<details[^>]*>.*?</details>", "", page, flags=re.S)
    assert not any(c.source.splitlines()[0] in unfolded for c in solutions)


@pytest.mark.notebooks
def test_launch_buttons_once_the_repository_is_known(executed, tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMLAB_REPOSITORY_URL", "https://github.com/someone/streaming")
    page = build_book(executed, tmp_path / "book").pages[0].read_text()
    # Binder opens the committed notebook, at the same path, in JupyterLab.
    assert ("https://mybinder.org/v2/gh/someone/streaming/HEAD?"
            "urlpath=lab/tree/notebooks/00_start_here.ipynb") in page


@pytest.mark.slow  # starts a kernel and Sphinx
def test_the_figures_are_those_the_run_drew(tmp_path):
    notebook = tmp_path / "00_a_figure.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 00 — A figure"),
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\n\n"
                                  "plt.plot([0, 1], [1, 0])\nplt.title('A line')\nplt.show()"),
    ]), notebook)
    result = run(notebook, tmp_path / "executed", timeout=CELL_TIMEOUT)
    assert result.ok, result.error
    drawn = [base64.b64decode(o.data["image/png"]) for c in result.notebook.cells
             if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    book = build_book(tmp_path / "executed", tmp_path / "book", names=None)  # not the series'
    shown = re.findall(r'<img[^>]*src="(_images/[^"]+\.png)"', book.pages[0].read_text())
    assert len(drawn) == 1
    assert [(book.index.parent / src).read_bytes() for src in shown] == drawn


@contextmanager
def _served(directory: Path) -> Iterator[str]:
    """``directory`` over HTTP on 127.0.0.1 from a thread; its base URL."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # pytest shows failures; no log per request
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.slow  # Chromium, and notebooks 00 and 12 executed
def test_the_book_in_a_browser_offline(book, tmp_path):
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    report = browse(book.index.parent, tmp_path / "00_start_here.png")
    assert report.problems == [], report.problems
    # The navigation, from the front page: the table of contents and "next" reach every
    # notebook, in series order.
    pages = [p.name for p in book.pages]
    assert report.toc == pages
    assert report.next_chain == pages
    assert set(report.loaded) == {p.name for p in book.index.parent.glob("*.html")}
    assert report.solution == (False, False, True, True)  # closed, hidden; open, shown
    assert any(SHORT[1].replace(".ipynb", ".html") in hit for hit in report.search_hits)
    assert report.screenshot.stat().st_size > 20_000, f"see {report.screenshot}"


class BrowseReport:
    """What reading the book in Chromium found."""

    def __init__(self, screenshot: Path) -> None:
        self.screenshot = screenshot
        self.problems: list[str] = []  # console errors, failed or refused requests, errors
        self.loaded: list[str] = []  # the pages visited, by file name
        self.toc: list[str] = []  # the pages the table of contents links, in its order
        self.next_chain: list[str] = []  # the pages "next" leads to, from the front page
        self.search_hits: list[str] = []
        self.solution: tuple[bool, ...] = ()  # (open, code visible) before, then after a click


def browse(book_dir: Path, screenshot: Path) -> BrowseReport:
    """Visit every page of the book in ``book_dir``, follow its navigation, open a solution."""
    from playwright.sync_api import sync_playwright

    report = BrowseReport(screenshot)
    with _served(book_dir) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route("**/*", lambda route: refuse_the_network(route, report.problems))
        page.on("console", lambda m: m.type == "error" and report.problems.append(m.text))
        page.on("pageerror", lambda e: report.problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: report.problems.append(f"failed: {r.url}"))
        page.on("response", lambda r: r.status >= 400 and report.problems.append(
            f"HTTP {r.status}: {r.url}"))

        for file in sorted(book_dir.glob("*.html")):
            page.goto(base + file.name, wait_until="networkidle")
            report.loaded.append(file.name)

        page.goto(base + "index.html", wait_until="networkidle")
        report.toc = [_name(href) for href in page.eval_on_selector_all(
            "nav.bd-docs-nav ul.bd-sidenav:not(.bd-sidenav__home-link) a",
            "links => links.map(a => a.href)")]
        while page.locator("a.right-next").count():
            page.locator("a.right-next").first.click()
            page.wait_for_load_state("networkidle")
            report.next_chain.append(_name(page.url))
            assert len(report.next_chain) <= len(report.loaded), "next goes round in a circle"

        page.goto(base + "00_start_here.html", wait_until="networkidle")
        folds = page.locator("details:has(summary:has-text('Solution'))")
        if folds.count():  # else report.solution stays empty
            fold = folds.first
            code = fold.locator(".cell_input").first
            before = (fold.evaluate("d => d.open"), code.is_visible())
            fold.locator("summary").click()
            code.wait_for(state="visible")
            report.solution = before + (fold.evaluate("d => d.open"), code.is_visible())
            fold.scroll_into_view_if_needed()
        page.screenshot(path=screenshot, animations="disabled")  # the fold's fade-in, done

        page.goto(base + "search.html?q=wrap", wait_until="networkidle")
        page.wait_for_selector("#search-results ul.search li a", timeout=15_000)
        report.search_hits = page.eval_on_selector_all(
            "#search-results ul.search li a", "links => links.map(a => a.href)")
        browser.close()
    return report


def _name(url: str) -> str:
    return Path(urlsplit(url).path).name
