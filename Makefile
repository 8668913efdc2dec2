# Streaming HTTP responses in Django, explained and measured.
#   make run    install what is missing, execute every notebook, build the book (build/book/)
#   make book   the book again from the executed notebooks, without executing them
#   make test   install what is missing, run the tests
#   make test-fast  the quick tier (under 3 min): views, wire, helpers, project checks;
#               no notebook execution, reliability, hygiene, exposure or browser tests
#   make lab    open the series in JupyterLab
#   make serve  the demo app under Gunicorn on 127.0.0.1:$(PORT) (PORT=, WORKER_CLASS=, HTTP2=1;
#               SERVER=uvicorn, uvicorn-worker, daphne, hypercorn or granian for another server)
#   make bench  TTFB, memory, throughput, 200 event streams, 1,000 per ASGI server, 1,000
#               topic streams fanned out on 2 workers by PostgreSQL; in build/bench/
#   make slides reveal.js slides of every notebook in build/slides/ (offline)
#   make readme-figures  README's reliability table from build/reliability/figures.json
#   make guide-table  the instructor guide's table of the series from build/notebooks/runs.json
#   make clean  remove build artefacts (keeps the virtual environment)
#   make help   this list

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000
WORKER_CLASS ?= sync
SERVER ?= gunicorn
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: install lab-settings run book test test-fast lab serve bench slides lint readme-figures guide-table help clean distclean

install: $(STAMP) lab-settings

# JupyterLab's defaults for the series (see jupyterlab-settings/README.md). Binder's postBuild
# runs this target with LAB_PREFIX set to its conda environment.
LAB_PREFIX ?= $(VENV)
LAB_OVERRIDES := $(LAB_PREFIX)/share/jupyter/lab/settings/overrides.d/streaming-django.json
lab-settings: $(LAB_OVERRIDES)
$(LAB_OVERRIDES): jupyterlab-settings/overrides.json
	@mkdir -p $(dir $@)
	cp $< $@

# Re-installs only when pyproject.toml changes, so a second run is quick.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; set PYTHON=python3.x")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	@touch $(STAMP)

run: install
	$(PY) scripts/run_series.py

# The book from build/notebooks/, as `make run` left them: nothing is executed.
book: install
	$(PY) scripts/build_book.py

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# The tier is set in tests/conftest.py (the `slow` marker).
test-fast: install
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lab: install
	$(VENV)/bin/jupyter lab notebooks/

serve: $(STAMP)
# HTTP2=1 adds cleartext HTTP/2 on the same port; the sync worker has none, so unless
# WORKER_CLASS is given, gthread serves it. SERVER= other than gunicorn takes no Gunicorn options.
ifeq ($(SERVER),gunicorn)
	$(PY) scripts/serve.py --port $(PORT) --worker-class $(if $(and $(filter 1,$(HTTP2)),$(filter file,$(origin WORKER_CLASS))),gthread,$(WORKER_CLASS))$(if $(filter 1,$(HTTP2)), --http2)
else
	$(PY) scripts/serve.py --port $(PORT) --server $(SERVER)
endif

bench: $(STAMP)
	$(PY) scripts/bench.py $(BENCH_ARGS)

slides: $(STAMP)
	$(PY) scripts/build_slides.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# After a whole `make test` run: render the README's reliability table from its figures.
readme-figures: $(STAMP)
	$(PY) scripts/reliability_table.py

# After `make run`: render the instructor guide's table from that run and the notebooks' prose.
guide-table: $(STAMP)
	$(PY) scripts/guide_table.py

help:
	@sed -n 's/^#   //p' Makefile

clean:
	rm -rf build .pytest_cache .ruff_cache demo_app/*.sqlite3
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
