# `make demo` and `make test` set everything up on a fresh machine (a virtual environment in .venv).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/ptgm demo

# A worker per core (pytest-xdist), each taking whole test files: a file's fixtures, such as its Ray cluster, are built once.
test: $(VENV)/.installed
	$(PY) -m pytest -n auto --dist loadfile

bench: $(VENV)/.installed
	$(PY) benchmarks/throughput.py

clean:
	rm -rf $(VENV) runs
