# Two entry points for a fresh machine; each installs what it needs into .venv.
#   make demo   the main job on a built-in synthetic study (installs the package)
#   make test   ruff + mypy + the full test suite (installs the test extras too)
#   make bench  the benchmark suite against dcm2niix (see benchmarks/README.md)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench clean

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

test: $(VENV)/.test
	$(BIN)/ruff check src tests
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(VENV)/.test
	$(BIN)/ruff check src tests
	$(BIN)/mypy

bench: $(VENV)/.test
	$(BIN)/pip install --quiet dicom2nifti SimpleITK
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV)
