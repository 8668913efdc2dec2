"""The rendered site and the slides: built from the notebooks, linked in order."""

import re

import nbformat

from streamlab.series.notebooks import render_html, series, title
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


def test_pages_fold_each_solution_until_clicked(tmp_path):
    """A learner meets the exercise first: on the page its solution is a closed <details>."""
    path = next(p for p in series() if p.stem.startswith("04_"))
    nb = nbformat.read(path, as_version=4)
    solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    page = render_html(nb, tmp_path / "page.html").read_text()
    folds = re.findall(r"<details([^>]*)><summary>Solution</summary>(.*?)</details>", page, re.S)
    assert len(folds) == len(solutions) >= 1
    for (attributes, inside), cell in zip(folds, solutions, strict=True):
        assert "open" not in attributes  # closed until clicked
        assert f'id="cell-id={cell.id}"' in inside  # the solution cell itself, input included
        first_line = cell.source.splitlines()[0].split("=")[0].strip()
        assert first_line in re.sub(r"<[^>]+>", "", inside)
    # Outside the folds, no solution cell is left on the page.
    unfolded = re.sub(r"<details[^>]*><summary>Solution</summary>.*?</details>", "", page,
                      flags=re.S)
    assert not any(f'id="cell-id={c.id}"' in unfolded for c in solutions)
    assert "celltag_solution" not in unfolded
