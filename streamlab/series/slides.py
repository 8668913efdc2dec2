"""reveal.js slides of the executed notebooks, presentable with no network.

``make slides`` writes a deck per notebook into ``build/slides/`` and copies
reveal.js next to them (``build/slides/vendor/reveal.js/``), so the folder can be
zipped and presented from a laptop offline.

nbconvert's reveal template loads five things from CDNs: reveal.js itself,
jQuery and require.js (its closing script uses both), MathJax and mermaid.
Here its closing script is rewritten without jQuery and require.js, and
MathJax, mermaid and the Jupyter widget manager are left out: no notebook of
the series writes TeX math, draws a mermaid diagram or shows a widget
(``tests/test_slides.py`` checks the first two; ``render_slides`` refuses the
third). So a deck loads only reveal.js, vendored in ``vendor/reveal.js/`` (see
the README there), with the theme "white": nbconvert's default "simple"
imports its fonts from Google Fonts, while "white"'s font ships with reveal.js.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

VENDOR_DIR = Path(__file__).resolve().parent / "vendor"
REVEAL_VERSION = "4.0.2"  # the version nbconvert's reveal template is written for
REVEAL_PREFIX = "vendor/reveal.js"  # where a deck finds reveal.js, relative to the deck

# nbconvert's reveal template, loading nothing but the vendored reveal.js.
SLIDES_TEMPLATE = "streamlab_slides.html.j2"
_SLIDES = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_css -%}
<style>
/* "white" sets headings in capitals; a heading holding code must read as written. */
.reveal .slides h1, .reveal .slides h2, .reveal .slides h3,
.reveal .slides h4, .reveal .slides h5, .reveal .slides h6 { text-transform: none; }
/* Code and printed tables keep their lines (a wrapped table cannot be read): type small
   enough for 100 columns (nbconvert's deck sets 19px: about 80), and a sideways scroll bar
   when a line is longer still. */
.reveal { --jp-code-font-size: 15px; }
.reveal .jp-Cell pre { white-space: pre; overflow-x: auto; }
</style>
{%- endblock html_head_css -%}
{%- block footer_js -%}
<script src="{{ resources.reveal.url_prefix }}/dist/reveal.js"></script>
<script src="{{ resources.reveal.url_prefix }}/plugin/notes/notes.js"></script>
<script>
Reveal.initialize({
  controls: true,
  progress: true,
  history: true,
  transition: "{{ resources.reveal.transition }}",
  slideNumber: "{{ resources.reveal.number }}",
  plugins: [RevealNotes],
  width: {{ resources.reveal.width | default('960', true) }},
  height: {{ resources.reveal.height | default('700', true) }},
});
// nbconvert's scrolling, without jQuery: a sub-slide taller than the deck scrolls.
// Heights are in the slide's own pixels (reveal.js zooms the slides to the window).
function setScrollingSlide() {
  if ({{ resources.reveal.scroll | json_dumps }} !== true) { return; }
  var tallest = Reveal.getConfig().height * 0.95;
  document.querySelectorAll("section.present section").forEach(function (section) {
    if (section.offsetHeight > tallest) {
      section.style.height = tallest + "px";
      section.style.overflowY = "auto";
      section.style.top = "0px";
    }
  });
}
Reveal.on("ready", setScrollingSlide);
Reveal.on("slidechanged", setScrollingSlide);
</script>
{%- endblock footer_js -%}
"""


def copy_reveal(slides_dir: Path) -> Path:
    """Copy the vendored reveal.js next to the decks in ``slides_dir``; return its folder.

    Whatever an earlier build left there is replaced, so the folder holds exactly
    what the decks load.
    """
    target = slides_dir / REVEAL_PREFIX
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(VENDOR_DIR / "reveal.js", target)
    return target


def render_slides(nb: nbformat.NotebookNode, destination: Path) -> Path:
    """Write ``nb`` as a reveal.js deck, using the cells' slide metadata.

    nbconvert's reveal template leaves out the cells marked "skip" (the exercises'
    solutions). The deck finds reveal.js at ``REVEAL_PREFIX``: call ``copy_reveal``
    on the deck's folder.
    """
    from jinja2 import DictLoader
    from nbconvert import SlidesExporter

    if "widgets" in nb.metadata:
        raise ValueError(
            f"{destination.stem}: the notebook shows Jupyter widgets, which the offline "
            "slides cannot draw (they carry no widget manager); display text or a figure instead."
        )
    exporter = SlidesExporter(extra_loaders=[DictLoader({SLIDES_TEMPLATE: _SLIDES})],
                              template_file=SLIDES_TEMPLATE)
    exporter.reveal_url_prefix = REVEAL_PREFIX
    exporter.reveal_theme = "white"  # its font ships with reveal.js (see the module's docstring)
    exporter.reveal_scroll = True  # a tall output can be scrolled rather than cut off
    body, _ = exporter.from_notebook_node(nb)
    destination.write_text(body, encoding="utf-8")
    return destination
