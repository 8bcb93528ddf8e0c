# Quick start: `make demo` trains a network on data that needs no download;
# `make test` runs the test suite. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo app test test-slow bench lint format clean

# The package states lower bounds; constraints.txt pins the torch and torchvision tested here.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,demo,docs,app]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cnnzoo train --config configs/lenet5_mnist5k.yaml --force
	@$(BIN)/python -c "import json; m = json.load(open('runs/demo/metrics.json')); \
	print(f'LeNet-5, 1,000 held-out mnist5k digits: test top-1 {m[\"top1\"]:.1%}' \
	f' ({m[\"train_seconds\"]:.0f} s of training)')"

# `cnnzoo app` on the runs folder; after `make demo` the page opens on the demo's run.
app: $(STAMP)
	$(BIN)/cnnzoo app --runs runs --open $(if $(wildcard runs/demo),--run demo)

# The app's tests drive Debian's headless Chromium through Playwright. Installed once: the
# rule's target is the browser itself, so make skips it when the file is there.
BROWSER := /usr/bin/chromium
$(BROWSER):
	@if [ "$$(id -u)" != 0 ]; then \
	  echo "the browser tests need $(BROWSER): run 'sudo apt-get install -y chromium'"; exit 1; fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

# The import layers first (pyproject.toml [tool.importlinter]), then the suite: two workers,
# one thread each (tests/conftest.py); pytest exits non-zero when nothing is collected, so
# an empty suite never passes.
test: $(STAMP) $(BROWSER)
	$(BIN)/lint-imports
	$(BIN)/pytest -q -n 2

test-slow: $(STAMP)
	$(BIN)/pytest -q -n 2 -m slow

# The README's speed table: ours against torchvision, interleaved in one process, fp32 on
# every core; training and inference at batch 8, 224x224 and batch 64, 32x32.
BENCH_MODELS := resnet18 resnet50 vgg16 googlenet densenet121 mobilenet_v2 efficientnet_b0
# BENCH_FLAGS=--no-channels-last times both networks NCHW (the same-layout control)
BENCH_FLAGS ?=
BENCH_DIR ?= runs/benchmark
bench: $(STAMP)
	mkdir -p $(BENCH_DIR)
	for mode in train infer; do \
	  $(BIN)/cnnzoo benchmark $(BENCH_MODELS) --mode $$mode --batch-size 8 --input 3,224,224 \
	    --vs-torchvision --iters 20 $(BENCH_FLAGS) --format json > $(BENCH_DIR)/$$mode-224.json && \
	  $(BIN)/cnnzoo benchmark $(BENCH_MODELS) --mode $$mode --batch-size 64 --input 3,32,32 \
	    --vs-torchvision --iters 20 $(BENCH_FLAGS) --format json > $(BENCH_DIR)/$$mode-32.json \
	    || exit 1; \
	done
	$(BIN)/python -m cnnzoo.speed.report $(BENCH_DIR)/*.json

# The documentation site, offline, into site/; --strict fails on a broken link or a stale
# reference. The model pages are generated from the registry (docs/hooks/model_pages.py).
.PHONY: docs
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
