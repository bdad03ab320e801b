# Two entry points for a fresh machine; each installs what it needs into .venv.
#   make demo   the main job on a built-in synthetic study (installs the package)
#   make test   ruff + mypy + the full test suite (installs the test extras too)
#   make bench  the benchmark suite against dcm2niix (see benchmarks/README.md)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench clean chromium

$(VENV)/.base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test: $(VENV)/.base
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

demo: $(VENV)/.base
	$(BIN)/dicomvol demo

# The QC page's browser test (tests/qc/test_browser.py) drives Debian's Chromium through
# Playwright (which never downloads a browser of its own here). Installed when missing and
# possible (root with apt-get, as on CI); otherwise that test skips locally and fails on CI.
CHROMIUM ?= /usr/bin/chromium
chromium:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the QC browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "note: $(CHROMIUM) missing and not root: the QC browser test will skip (CI=true: fail)"; \
	  fi; \
	fi

test: $(VENV)/.test chromium
	$(BIN)/ruff check src tests
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(VENV)/.test
	$(BIN)/ruff check src tests
	$(BIN)/mypy

# Benchmarks measure two installs side by side: the full one (.venv-bench: every extra, as a
# user who wants the Parquet report, Dask and cloud inputs installs it) and the base one
# (.venv-bench-base). The Python peers get a venv of their own: dicom2nifti pulls in
# python-gdcm, which would change the JPEG 2000 decoder dicomvol uses.
.venv-bench/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install --quiet --upgrade pip
	.venv-bench/bin/pip install --quiet -e ".[all]" dcm2niix
	touch $@

.venv-bench-base/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-bench-base
	.venv-bench-base/bin/pip install --quiet --upgrade pip
	.venv-bench-base/bin/pip install --quiet -e .
	touch $@

.venv-bench-peers/.installed:
	$(PYTHON) -m venv .venv-bench-peers
	.venv-bench-peers/bin/pip install --quiet --upgrade pip
	.venv-bench-peers/bin/pip install --quiet dicom2nifti SimpleITK dcmqi plastimatch
	touch $@

bench: .venv-bench/.installed .venv-bench-base/.installed .venv-bench-peers/.installed
	.venv-bench/bin/python benchmarks/run.py

clean:
	rm -rf $(VENV) .venv-bench .venv-bench-base .venv-bench-peers
