# Set-up and checks. `make demo` and `make test` each create .venv when it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PYTEST_WORKERS ?= 2

.PHONY: demo test test-fast lint format schema bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/cnnspec validate specs/*.yaml
	$(BIN)/cnnspec inspect specs/digits_cnn.yaml
	$(BIN)/cnnspec train specs/digits_cnn.yaml

test: $(VENV)/.installed-dev lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup

test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m "not slow" -n $(PYTEST_WORKERS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schema: $(VENV)/.installed
	$(BIN)/cnnspec schema -o schemas/cnnspec.schema.json
	$(BIN)/cnnspec schema --library -o schemas/cnnspec-blocks.schema.json

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache

# Benchmarks against hand-written Keras (benchmarks/README.md). `bench` takes tens of minutes and
# rewrites benchmarks/README.md; `bench-quick` takes a few minutes and only prints the tables.
bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/run_all.py

bench-quick: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/run_all.py --quick

# Long fuzzing campaign (issue 7): ~100,000 generated, mutated and byte-level specs through the
# front end and the CLI with fresh random seeds, then the hostile corpus; prints the totals.
# `make test` runs the same properties with about 2,700 derandomized cases.
.PHONY: fuzz
FUZZ_EXAMPLES ?= 7500
FUZZ_REPORT := .pytest_cache/fuzz-report.jsonl
fuzz: $(VENV)/.installed-dev
	mkdir -p .pytest_cache && rm -f $(FUZZ_REPORT)
	CNNSPEC_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) CNNSPEC_FUZZ_RANDOM=1 CNNSPEC_FUZZ_REPORT=$(CURDIR)/$(FUZZ_REPORT) \
		$(BIN)/python -m pytest tests/test_fuzz.py tests/test_hostile.py -n $(PYTEST_WORKERS) -q
	$(BIN)/python -m tests.test_fuzz $(FUZZ_REPORT)
	CNNSPEC_KILL_LOOPS=100 $(BIN)/python -m pytest tests/test_kill_loop.py -q
