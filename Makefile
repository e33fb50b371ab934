# EfficientNet, explained and runnable. Two commands do everything on a fresh machine:
#   make book   set up .venv and build the book into _build/html
#   make test   set up .venv with the test tools and run every test (what CI runs)
# `make` alone (or `make help`) lists all targets.
#
# Everything is installed into a virtual environment: the active one when VIRTUAL_ENV is
# set, otherwise .venv in this folder (created with SYSTEM_PYTHON, python3 by default).
.DEFAULT_GOAL := help
SHELL := bash
SYSTEM_PYTHON ?= python3
VENV := $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV),$(CURDIR)/.venv)
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.effnet-tutorial
SANITIZE := --nbval-sanitize-with nbval_sanitize.cfg
BOOK_SOURCES := _config.yml _toc.yml $(wildcard chapters/*.ipynb book/* effnet_tutorial/*.py effnet_tutorial/*/*.py)
# Chapter 9's in-page demo: its code, and onnxruntime-web as pinned in web/package-lock.json.
DEMO_SOURCES := $(wildcard book/_ext/*.py book/demo/*) tools/export_browser_demo.py web/node_modules/.package-lock.json

.PHONY: help setup setup-dev book build pdf lab test test-package test-notebooks lint benchmark screenshots assignments grade clean

help:  ## list the targets
	@echo "Targets (the packages go into $(VENV)):"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  make \1\t/' | expand -t 24

$(PYTHON):
	@tools/venv.sh $(SYSTEM_PYTHON) $(VENV)

$(STAMP)-book: pyproject.toml requirements.txt | $(PYTHON)
	$(PYTHON) -m pip install -r requirements.txt
	@touch $@

$(STAMP)-dev: pyproject.toml requirements-dev.txt | $(PYTHON)
	$(PYTHON) -m pip install -r requirements-dev.txt
	@touch $@ $(STAMP)-book

setup: $(STAMP)-book  ## install the package and what the book needs

setup-dev: $(STAMP)-dev  ## install that plus the test tools and reference implementations

# Rebuilt, all pages, whenever a source changed: an incremental Sphinx build would not
# report the warnings of pages it did not re-read.
_build/html/.built: $(BOOK_SOURCES) $(DEMO_SOURCES) | $(STAMP)-book
	$(VENV)/bin/jupyter-book build . -W --keep-going --all
	@touch $@

build: _build/html/.built  ## build the book (warnings are errors)

# onnxruntime-web for the demo, exactly as web/package-lock.json pins it (npm ci checks each
# package's hash). Node.js and npm come from Debian (tools/install_browser.sh --node).
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	@tools/install_browser.sh --node
	@command -v npm >/dev/null || { echo "make book needs npm for the demo of chapter 9: sudo apt install nodejs npm" >&2; exit 1; }
	cd web && npm ci --ignore-scripts --no-audit --no-fund && touch node_modules/.package-lock.json

book: setup build  ## set up and build the book into _build/html
	@echo "The book is in _build/html/index.html"

# The whole book in one PDF: a single-page HTML build printed by Debian's chromium (no LaTeX).
pdf: setup-dev build  ## the whole book as one PDF, _build/pdf/effnet-tutorial.pdf
	@tools/install_browser.sh
	$(PYTHON) tools/make_pdf.py

lab: setup  ## open the chapters in JupyterLab
	cd chapters && $(VENV)/bin/jupyter lab

lint: setup-dev  ## ruff; the set-up cell of every chapter; first mentions linked to the API reference
	$(VENV)/bin/ruff check .
	$(PYTHON) tools/sync_setup_cell.py --check
	$(PYTHON) tools/link_api.py --check

# The package's tests (oracles included) and doctests, the notebooks re-run by nbval
# against their stored outputs, and the tests of the built book. MPLBACKEND is unset for
# the notebooks: a non-inline backend (e.g. Agg) would keep the kernel from emitting the
# figures that the stored outputs hold.
test: setup-dev lint build pdf  ## set up, build the book and its PDF, and run every test (what CI runs)
	env -u MPLBACKEND $(PYTHON) -m pytest tests effnet_tutorial chapters --doctest-modules \
		--nbval $(SANITIZE) -p no:cacheprovider

test-package: setup-dev  ## the package's tests and doctests only
	$(PYTHON) -m pytest tests effnet_tutorial --doctest-modules -p no:cacheprovider \
		--ignore=tests/test_book_html.py

test-notebooks: setup-dev  ## re-run every chapter with nbval against its stored outputs
	env -u MPLBACKEND $(PYTHON) -m pytest chapters --nbval $(SANITIZE) -p no:cacheprovider

screenshots: setup-dev build  ## a full-page PNG of every page at 1280 px, in _build/screenshots
	@tools/install_browser.sh
	$(PYTHON) tools/book_browser.py --screenshots _build/screenshots

assignments: setup-dev  ## nbgrader: build the classroom assignments into classroom/release
	$(PYTHON) tools/classroom.py generate

grade: setup-dev  ## nbgrader: autograde classroom/submitted, feedback and classroom/grades.csv
	$(PYTHON) tools/classroom.py grade

benchmark: setup-dev  ## every benchmark, results into benchmarks/results/ (about 25 min; see the README)
	$(PYTHON) benchmarks/bench_inference.py --profile --fused
	$(PYTHON) benchmarks/bench_deploy.py --sections fused onnx train compile
	$(PYTHON) benchmarks/bench_explorer.py --memory
	$(PYTHON) benchmarks/bench_lite.py
	$(PYTHON) benchmarks/bench_lite.py --sections speed --threads 1
	$(PYTHON) benchmarks/bench_roofline.py --rounds 3 --repeats 3
	$(PYTHON) benchmarks/bench_deploy.py --sections fused onnx latency --batch-sizes 8 --threads 1
	$(PYTHON) benchmarks/bench_deploy.py --sections train --batch 4 --size 112 --threads 1
	$(PYTHON) benchmarks/bench_ddp.py
	$(PYTHON) benchmarks/bench_blocks.py
	$(PYTHON) benchmarks/bench_inference.py --eager-latency --threads 1

clean:  ## remove the built book (keeps .venv)
	rm -rf _build
