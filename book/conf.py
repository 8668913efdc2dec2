"""Sphinx configuration of the book: the executed notebooks of the series, as they ran.

Only what never changes between runs lives here. ``streamlab.series.book`` writes the
rest (the executed copies, and a front page whose table of contents is the series in
order) into ``build/book-src/`` and runs Sphinx on it with this folder as ``-c``:
``make run`` after executing the series, ``make book`` on its own.
"""

import os

from streamlab.series.book import BOOK_TITLE

project = BOOK_TITLE
html_title = "Streaming HTTP responses in Django"
language = "en"

extensions = ["myst_nb"]

# `make run` has just executed every notebook; the book shows those outputs and never runs
# a cell itself.
nb_execution_mode = "off"
# The executed notebooks are read through the series' own reader, which folds each
# exercise's solution until clicked (see streamlab.series.book.read_notebook). The copy
# the download button serves is the executed notebook itself, untouched.
nb_custom_formats = {".ipynb": ["streamlab.series.book.read_notebook", {}, False]}
# A cell whose source is hidden (not a solution) is folded under this, as in JupyterLab.
nb_code_prompt_show = "Show code"
nb_code_prompt_hide = "Hide code"

html_theme = "sphinx_book_theme"
html_copy_source = True  # the download button's .ipynb is the copy under _sources/
html_show_sourcelink = False

# Launch buttons (Binder, JupyterHub) need the repository's public address, which the
# project does not know. Set STREAMLAB_REPOSITORY_URL (https://github.com/<owner>/<name>)
# when building, and the pages get a repository link and a Binder button that opens the
# same notebook (notebooks/<name>.ipynb, the committed one) in JupyterLab on mybinder.org.
repository_url = os.environ.get("STREAMLAB_REPOSITORY_URL", "").rstrip("/")
# Light or dark as the reader's system prefers. Left unset, the theme's script logs an error
# in the browser's console on every page ("Got invalid theme mode").
html_context = {"default_mode": "auto"}
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "use_repository_button": bool(repository_url),
    "repository_url": repository_url,
    # HEAD: the default branch, whatever its name (GitHub and Binder both take it).
    "repository_branch": os.environ.get("STREAMLAB_REPOSITORY_BRANCH", "HEAD"),
    "path_to_docs": "notebooks",
    "launch_buttons": {
        "binderhub_url": "https://mybinder.org",
        "notebook_interface": "jupyterlab",
    } if repository_url else {},
}
