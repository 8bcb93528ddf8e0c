# Quick start: `make demo` trains a network on data that needs no download;
# `make test` runs the test suite. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cnnzoo list

# Two workers, one thread each (tests/conftest.py); pytest exits non-zero when
# nothing is collected, so an empty suite never passes.
test: $(STAMP)
	$(BIN)/pytest -q -n 2

test-slow: $(STAMP)
	$(BIN)/pytest -q -n 2 -m slow

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
