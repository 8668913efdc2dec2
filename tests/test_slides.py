"""The slides: built from the notebooks' slide metadata, presentable with no network."""

import re
from urllib.parse import urlsplit

import nbformat
import pytest
from support.browser import refuse_the_network

from streamlab.measurement.browser import CHROMIUM_ARGS, chromium_path, unavailable
from streamlab.series.notebooks import CELL_TIMEOUT, run, series
from streamlab.series.slides import (
    REVEAL_PREFIX,
    REVEAL_VERSION,
    VENDOR_DIR,
    copy_reveal,
    render_slides,
)

# What a deck asks the browser to load: scripts, style sheets and the sheets they import.
# (A font is loaded in one format of several a sheet names: the browser test sees which.)
LOADED = re.compile(r"<script[^>]*\ssrc=\"([^\"]+)\"|<link[^>]*\shref=\"([^\"]+)\""
                    r"|@import url\(['\"]?([^'\")]+)")
# TeX as MathJax would find it in Markdown (code left out): $...$, $$, \( \[ and \begin{.
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
TEX = re.compile(r"\$\$|\\\(|\\\[|\\begin\{|(?<![\\\w])\$[^\s$][^$\n]*?(?<![\s\\])\$")


def test_slides_follow_the_slide_metadata(tmp_path):
    nb = nbformat.read(series()[0], as_version=4)
    deck = render_slides(nb, tmp_path / "deck.html").read_text()
    kinds = [c.metadata["slideshow"]["slide_type"] for c in nb.cells]
    # A slide is a <section> holding its sub-slides' <section>s (the first one included).
    assert deck.count("<section>") == 2 * kinds.count("slide") + kinds.count("subslide")
    assert deck.count('class="fragment"') == kinds.count("fragment")
    # The exercises' solutions ("skip") stay out: an audience should try first.
    skipped = [c for c in nb.cells if c.metadata["slideshow"]["slide_type"] == "skip"]
    assert skipped and not any(f'id="cell-id={c.id}"' in deck for c in skipped)
    assert f'src="{REVEAL_PREFIX}/dist/reveal.js"' in deck


def test_a_deck_loads_only_files_copied_next_to_it(tmp_path):
    nb = nbformat.read(series()[0], as_version=4)
    deck = render_slides(nb, tmp_path / "deck.html")
    copied = copy_reveal(tmp_path)
    wanted, pending = set(), [deck]
    while pending:  # the deck, then each style sheet it loads, and theirs
        page = pending.pop()
        for match in LOADED.finditer(page.read_text()):
            url = next(group for group in match.groups() if group)
            if url.startswith("data:"):
                continue
            assert not urlsplit(url).scheme and not url.startswith("/"), f"{page.name}: {url}"
            target = (page.parent / urlsplit(url).path).resolve()
            assert target.is_file(), f"{page.name} loads {url}, which is not in {copied}"
            if target.suffix == ".css" and target not in wanted:
                pending.append(target)
            wanted.add(target)
    assert copied / "dist" / "reveal.js" in wanted and copied / "dist" / "reveal.css" in wanted
    assert any(path.name == "source-sans-pro.css" for path in wanted)  # the theme's font


def test_the_vendored_reveal_is_the_one_nbconvert_expects():
    from nbconvert import SlidesExporter

    # nbconvert's template is written for the reveal.js its default CDN address names.
    assert SlidesExporter().reveal_url_prefix.endswith(f"reveal.js@{REVEAL_VERSION}")
    header = (VENDOR_DIR / "reveal.js" / "dist" / "reveal.js").read_text()[:200]
    assert f"reveal.js {REVEAL_VERSION}" in header


def test_no_notebook_needs_what_the_decks_leave_out():
    """The decks carry no MathJax and no mermaid (see streamlab.series.slides)."""
    assert TEX.search("the cost is $O(n^2)$ here") and not TEX.search("$5 and $10")
    for path in series():
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "markdown":
                continue
            tex = TEX.search(CODE.sub("", cell.source))
            assert tex is None, f"{path.name}: TeX math {tex.group()!r} needs MathJax in the decks"
            assert "```mermaid" not in cell.source, f"{path.name}: a mermaid diagram"


def test_a_notebook_showing_widgets_is_refused(tmp_path):
    nb = nbformat.v4.new_notebook(metadata={"widgets": {}})
    with pytest.raises(ValueError, match="widget manager"):
        render_slides(nb, tmp_path / "deck.html")


@pytest.mark.notebooks  # executes notebook 00, so it is in the slow tier (conftest.py)
def test_a_deck_presents_with_the_network_blocked(tmp_path):
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    result = run(series()[0], tmp_path / "executed", timeout=CELL_TIMEOUT)
    assert result.ok, result.error
    copy_reveal(tmp_path / "slides")
    deck = render_slides(result.notebook, tmp_path / "slides" / "00.slides.html")
    kinds = [c.metadata["slideshow"]["slide_type"] for c in result.notebook.cells]

    blocked, failed, errors, loaded = [], [], [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))
        page.on("requestfinished", lambda r: loaded.append(r.url))
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route("**/*", lambda route: refuse_the_network(route, blocked))
        page.goto(deck.as_uri())
        # reveal.js marks itself .ready once its "ready" listeners (the scrolling) have run.
        page.wait_for_function("document.querySelector('.reveal.ready') !== null",
                               timeout=15_000)
        total = page.evaluate("Reveal.getTotalSlides()")
        # Every sub-slide taller than the deck scrolls instead of being cut off.
        heights = page.evaluate("""() => {
            const seen = [];
            for (const slide of Reveal.getSlides()) {
                const at = Reveal.getIndices(slide);
                Reveal.slide(at.h, at.v);
                const s = document.querySelector('section.present > section.present');
                seen.push([s.scrollHeight > Reveal.getConfig().height * 0.95,
                           getComputedStyle(s).overflowY === 'auto']);
            }
            Reveal.slide(0, 0);
            return seen;
        }""")
        steps = 0
        while page.evaluate("Reveal.getIndices().h") == 0 and steps < len(kinds):
            page.keyboard.press("ArrowRight")  # through the fragments, then to slide 2
            steps += 1
        page.wait_for_timeout(1000)  # the slide transition
        page.screenshot(path=tmp_path / "slide-2.png")
        present = page.inner_text("section.present > section.present")
        browser.close()

    assert blocked == [] and failed == [], blocked + failed
    assert errors == [], errors
    assert any(url.endswith(f"{REVEAL_PREFIX}/dist/reveal.js") for url in loaded)
    assert any(url.endswith(".woff") for url in loaded)  # the theme's font, from the copy
    assert total == kinds.count("slide") + kinds.count("subslide") > 5
    assert any(tall for tall, _ in heights), "00 has a slide taller than the deck"
    assert all(scrolls for tall, scrolls in heights if tall)
    second = [c for c, kind in zip(result.notebook.cells, kinds, strict=True) if kind == "slide"][1]
    heading = second.source.splitlines()[0].lstrip("# ").strip()
    assert heading in present, f"slide 2 should show {heading!r}; see {tmp_path / 'slide-2.png'}"
