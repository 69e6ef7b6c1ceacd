# The two commands of a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The demo trains on the MNIST files a checkout has beside it, else downloads
# them, else generates digits.
DEMO_ARGS ?= $(if $(wildcard ../shared/data/mnist),--root ../shared/data/mnist,)

.PHONY: demo demo-ddp test test-fast lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,compare]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/graphc demo $(DEMO_ARGS)

# The demo CNN trained data-parallel on 2 processes (MPI; docs/distributed.md).
demo-ddp: $(STAMP)
	$(VENV)/bin/graphc run -n 2 examples/ddp_mnist_cnn.py $(DEMO_ARGS)

test: $(STAMP)
	$(PY) -m pytest -q -x -p no:cacheprovider tests

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

# Style gate (docs: STYLE.md point 15). LINT_PATHS narrows the ruff checks,
# e.g. `make lint LINT_PATHS="graphc/ir passes"`; mypy checks the paths
# listed under [tool.mypy] in pyproject.toml (graphc/ir, passes).
LINT_PATHS ?= .
lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(VENV)/bin/graphc bench

clean:
	rm -rf $(VENV) build *.egg-info
