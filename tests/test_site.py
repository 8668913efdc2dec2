"""The rendered site and the slides: built from the notebooks, linked in order."""

import nbformat

from streamlab.series.notebooks import series, title
from streamlab.series.site import _inline_code, question, render_slides, write_index


def test_index_links_every_notebook_in_order(tmp_path):
    notebooks = series()
    failed = notebooks[1:2]
    index = write_index(notebooks, tmp_path, failed=failed).read_text()
    positions = [index.index(f'href="{p.stem}.html"') for p in notebooks]
    assert positions == sorted(positions)
    for path in notebooks:
        assert title(path).split(" — ")[1] in index
    assert index.count("(failed: see the page for the error)") == 1


def test_every_notebook_states_its_question():
    for path in series():
        assert question(path).endswith("?"), f"{path.name}: no question in its first cell"


def test_slides_follow_the_slide_metadata(tmp_path):
    nb = nbformat.read(series()[0], as_version=4)
    vendored = ("vendor/reveal.js", "r.js")
    deck = render_slides(nb, tmp_path / "deck.html", vendored=vendored).read_text()
    kinds = [c.metadata["slideshow"]["slide_type"] for c in nb.cells]
    # A slide is a <section> holding its sub-slides' <section>s (the first one included).
    assert deck.count("<section>") == 2 * kinds.count("slide") + kinds.count("subslide")
    assert deck.count('class="fragment"') == kinds.count("fragment")
    assert "vendor/reveal.js/dist/reveal.js" in deck and 'src="r.js"' in deck


def test_questions_keep_their_code_and_emphasis():
    assert _inline_code("when is `x < 1` *chunked*?") == (
        "When is <code>x &lt; 1</code> <em>chunked</em>?"
    )
