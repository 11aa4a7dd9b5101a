# make demo: set up .venv and run the quickstart; make test: set up .venv and run every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PLUGINS := $(sort $(wildcard plugins/*))
EXAMPLE_PLUGIN := docs/examples/nascore-lhs
STAMP := $(VENV)/.installed
NASCORE_DATA ?= $(abspath ../shared/data)
export NASCORE_DATA

.PHONY: demo test bench bench-check install clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml) $(EXAMPLE_PLUGIN)/pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e ".[test]" $(foreach p,$(PLUGINS),-e $(p)) -e $(EXAMPLE_PLUGIN)
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/nascore run examples/quickstart.toml --out runs/quickstart-$$(date +%Y%m%d-%H%M%S)
	@echo "report: $$(ls -dt runs/quickstart-*/report.html | head -n 1)"

# each package's tests run in their own pytest process, as they would in its own CI
TEST_DIRS := tests $(foreach p,$(PLUGINS),$(p)/tests) $(EXAMPLE_PLUGIN)/tests

test: $(STAMP)
	$(VENV)/bin/lint-imports
	@set -e; for d in $(TEST_DIRS); do echo "== pytest $$d"; $(PY) -m pytest -q -p no:cacheprovider $$d; done

bench: $(STAMP)
	$(PY) -m pip install -q -e ".[bench]"  # peer libraries for benchmarks/peers_nb201.py
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

# rerun every benchmark's --quick mode into a temporary folder and compare it with the
# committed benchmarks/results/*_quick.json (tolerances: each script's CHECK)
bench-check: $(STAMP)
	$(PY) -m pip install -q -e ".[bench]"  # peers_nb201's quick mode compares against Optuna
	$(PY) benchmarks/bench_check.py $(BENCH_CHECK_ARGS)

clean:
	rm -rf runs .pytest_cache
