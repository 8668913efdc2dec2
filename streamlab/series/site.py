"""The rendered series: an index page for the executed notebooks, and reveal.js slides.

``make run`` writes every executed notebook as HTML into ``build/site/`` with
an ``index.html`` that links them in order, ready to publish as static pages.
``make slides`` writes a reveal.js deck per notebook into ``build/slides/``.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

import nbformat

from .notebooks import title

# Versions that nbconvert's reveal template is written for.
REVEAL_PACKAGE = "reveal.js@4.0.2"
REQUIREJS_PACKAGE = "requirejs@2.3.7"


def question(path: Path) -> str:
    """The question a notebook answers: the bold-labelled line of its first cell, if any."""
    nb = nbformat.read(path, as_version=4)
    text = nb.cells[0].source if nb.cells else ""
    for paragraph in text.split("\n\n"):
        if "question" in paragraph.lower() and "**" in paragraph:
            sentence = " ".join(paragraph.split()).split(":**", 1)[-1]
            return sentence.replace("**", "").strip()
    return ""


def write_index(
    notebooks: Sequence[Path], site_dir: Path, *, failed: Sequence[Path] = (),
    slides_dir: Path | None = None,
) -> Path:
    """Write ``index.html`` linking each notebook's page (``NN_name.html``) in order."""
    rows = []
    for path in notebooks:
        page = path.with_suffix(".html").name
        status = " <em>(failed: see the page for the error)</em>" if path in failed else ""
        deck = ""
        if slides_dir is not None and (slides_dir / f"{path.stem}.slides.html").exists():
            relative = Path("..") / slides_dir.name / f"{path.stem}.slides.html"
            deck = f' · <a href="{relative.as_posix()}">slides</a>'
        rows.append(
            f'<li><a href="{page}">{html.escape(title(path))}</a>{deck}{status}'
            f"<br><span>{_inline_code(question(path))}</span></li>"
        )
    index = site_dir / "index.html"
    index.write_text(_INDEX.format(items="\n".join(rows)), encoding="utf-8")
    return index


def _inline_code(text: str) -> str:
    """Escape ``text`` for HTML, Markdown's `code` and *emphasis* kept, first letter upper."""
    text = html.escape(text[:1].upper() + text[1:])
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", text)


_INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Streaming HTTP responses in Django, explained and measured</title>
<style>
body {{ font: 17px/1.5 system-ui, sans-serif; max-width: 46em; margin: 3em auto; padding: 0 1em; }}
li {{ margin: 0 0 1em 0; }} li span {{ color: #555; }} a {{ font-weight: 600; }}
</style></head>
<body>
<h1>Streaming HTTP responses in Django, explained and measured</h1>
<p>Each page is a notebook of the series, executed top to bottom against the
versions named in it, with its outputs and figures. Read them in order.
Each exercise's solution is folded under <em>Solution</em>: try first, then click.</p>
<ol start="0">
{items}
</ol>
</body></html>
"""


def vendor_reveal(slides_dir: Path) -> tuple[str, str] | None:
    """Fetch reveal.js and require.js from the npm registry into ``slides_dir/vendor``.

    Returns (reveal_url_prefix, require_js_url) relative to the slides, or None
    when npm is not installed or the fetch fails (the slides then load both
    from a CDN, which needs a network connection when they are shown).
    """
    vendor = slides_dir / "vendor"
    reveal, requirejs = vendor / "reveal.js", vendor / "requirejs"
    if not (reveal / "dist" / "reveal.js").exists() or not (requirejs / "require.js").exists():
        npm = shutil.which("npm")
        if npm is None:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            for package, target in ((REVEAL_PACKAGE, reveal), (REQUIREJS_PACKAGE, requirejs)):
                done = subprocess.run(
                    [npm, "pack", package, "--silent"], cwd=tmp,
                    capture_output=True, text=True, timeout=300,
                )
                if done.returncode != 0:
                    return None
                tarball = Path(tmp) / done.stdout.strip().splitlines()[-1]
                shutil.rmtree(target, ignore_errors=True)
                target.mkdir(parents=True)
                with tarfile.open(tarball) as archive:
                    archive.extractall(target, filter="data")
                # npm tarballs keep everything under "package/".
                for item in (target / "package").iterdir():
                    item.rename(target / item.name)
                (target / "package").rmdir()
    return "vendor/reveal.js", "vendor/requirejs/require.js"


def render_slides(
    nb: nbformat.NotebookNode, destination: Path, *, vendored: tuple[str, str] | None
) -> Path:
    """Write ``nb`` as a reveal.js deck, using the cells' slide metadata."""
    from nbconvert import SlidesExporter

    exporter = SlidesExporter()
    if vendored is not None:
        exporter.reveal_url_prefix, exporter.require_js_url = vendored
    exporter.reveal_scroll = True  # a tall output can be scrolled rather than cut off
    body, _ = exporter.from_notebook_node(nb)
    destination.write_text(body, encoding="utf-8")
    return destination
