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
	$(BIN)/cnnzoo train --config configs/lenet5_mnist5k.yaml --force
	@$(BIN)/python -c "import json; m = json.load(open('runs/demo/metrics.json')); \
	print(f'LeNet-5, 1,000 held-out mnist5k digits: test top-1 {m[\"top1\"]:.1%}' \
	f' ({m[\"train_seconds\"]:.0f} s of training)')"

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
