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

# A venv of its own: dicom2nifti pulls in python-gdcm, which would change the
# JPEG 2000 decoder that the test venv uses.
.venv-bench/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install --quiet --upgrade pip
	.venv-bench/bin/pip install --quiet -e ".[test]" dicom2nifti SimpleITK dcmqi
	touch $@

bench: .venv-bench/.installed
	.venv-bench/bin/python benchmarks/run.py

clean:
	rm -rf $(VENV)
