# Set-up and checks. `make demo` and `make test` each create .venv from requirements.lock.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=
# The tool that writes the lock, itself pinned so `make lock` gives the same file everywhere.
UV_VERSION := 0.13.9
LOCK_FLAGS := --extra dev --extra export --generate-hashes \
	--python-version 3.11 --python-platform x86_64-manylinux_2_28

.PHONY: demo bytecode test-bytecode test test-fast test-full faults-all test-latest lock lint format schema docs bench bench-quick bench-search clean

# uv, which writes the lock and installs it, is itself installed from a hash-locked file
# (tools/uv.lock.txt, every wheel of the UV_VERSION release; `make lock` rewrites it).
UV := .venv-tools/bin/uv
UV_LOCK := tools/uv.lock.txt

$(UV): $(UV_LOCK)
	rm -rf .venv-tools
	$(PYTHON) -m venv .venv-tools
	.venv-tools/bin/python -m pip install --quiet --require-hashes --no-deps -r $(UV_LOCK)
	touch $@

# One install for every target: exactly the locked versions (hash-checked), then cnnspec itself
# without dependencies or build isolation, so nothing unlocked comes from the registry. uv
# fetches the locked files in parallel (on a clean machine about 25 s where pip takes 80 s);
# where uv cannot be installed or cannot reach the registry, pip installs the same lock. A
# changed lock rebuilds the venv from nothing, so no stale package survives; lockcheck proves
# the result.
$(VENV)/.installed: $(LOCK) pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	{ $(MAKE) --no-print-directory $(UV) && $(UV) pip install --quiet --python $(BIN)/python \
		--require-hashes --no-deps --compile-bytecode -r $(LOCK); } || \
		$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python tools/lockcheck.py verify
	touch $@

# cnnspec's own modules compiled to bytecode, as uv compiles the locked packages
# (--compile-bytecode): the editable install leaves them as source, and where
# PYTHONDONTWRITEBYTECODE is set (as on the CI machines) every process that imports cnnspec
# compiled them again, each CLI command and script the tests start among them (measured: a cold
# `cnnspec validate` 0.5-0.7 s with them as source, 0.2 s compiled). Half a second when up to date.
bytecode: $(VENV)/.installed
	$(BIN)/python -m compileall -q -j 0 cnnspec

# pytest's assertion-rewritten test modules, cached before the run (tools/rewrite_tests.py): with
# PYTHONDONTWRITEBYTECODE set, each xdist worker rewrote all of them at collection (measured:
# a collection 21 s of CPU against 8 s with them cached). Half a second when up to date.
test-bytecode: $(VENV)/.installed bytecode
	$(BIN)/python tools/rewrite_tests.py tests

demo: $(VENV)/.installed bytecode
	$(BIN)/cnnspec validate specs/*.yaml
	$(BIN)/cnnspec inspect specs/digits_cnn.yaml
	$(BIN)/cnnspec train specs/digits_cnn.yaml

test: $(VENV)/.installed lint test-bytecode
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

test-fast: $(VENV)/.installed test-bytecode
	$(BIN)/python -m pytest -m "not slow" -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# Everything `make test` runs, then the proofs too long for its 10 minutes, one after another:
# the second, longer proofs it skips (`test-long`), the long fuzzing campaign with the 100-kill
# loop (`fuzz`), every write of a run failed with every fault (`faults-all`), a two-worker
# training losing a worker (`test-multiworker`), the import round trip of every zoo family,
# ImageNet-weight loading for every zoo family (`zoo-weights`), the task training scripts,
# keras.applications' fingerprints rebuilt and compared, the smoke tests that run each benchmark
# script (`bench-smoke`), and the quick benchmarks (which print their tables and assert no
# timings). Its last line says that everything passed.
test-full: test test-long fuzz faults-all import-roundtrip zoo-weights test-script-tasks test-multiworker zoo-golden-check bench-smoke bench-quick
	@echo "make test-full: every check passed"

# The newest releases that pyproject.toml's ranges allow, in a venv of their own: how the next
# upstream drift is found before users meet it. Prints what differs from the lock, then runs the
# suite; not part of `make test`.
test-latest:
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install --quiet --upgrade pip
	.venv-latest/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e ".[dev,export]"
	.venv-latest/bin/python tools/lockcheck.py drift
	.venv-latest/bin/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# Rewrite requirements.lock from pyproject.toml (dependencies, `dev` and `export` extras) and
# requirements.in, for Python 3.11 on Linux x86-64, with the hash of every file of every release.
# tools/uv.lock.txt: every wheel of uv UV_VERSION, hashed, for any platform.
lock: $(UV)
	$(UV) pip compile pyproject.toml requirements.in $(LOCK_FLAGS) --quiet -o $(LOCK)
	echo "uv==$(UV_VERSION)" | $(UV) pip compile - --generate-hashes --universal \
		--python-version 3.11 --quiet --no-header -o $(UV_LOCK)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schema: $(VENV)/.installed
	$(BIN)/cnnspec schema -o schemas/cnnspec.schema.json
	$(BIN)/cnnspec schema --library -o schemas/cnnspec-blocks.schema.json

# docs/reference.md (every layer kind), docs/sections.md (every setting of a spec's sections),
# docs/zoo.md (every zoo variant) and docs/cli.md (every command and option); tests/test_docs.py
# and tests/test_cli_reference.py fail when the committed files are stale.
docs: $(VENV)/.installed
	$(BIN)/python -m cnnspec.analysis.docs docs
	$(BIN)/python -m cnnspec.cli.reference docs

# keras.applications' side of tests/test_zoo_parity.py, recorded once (tests/fixtures/zoo/):
# `zoo-golden` rewrites it (after a Keras upgrade or for a new family, ~2 min of CPU);
# `zoo-golden-check` rebuilds every keras.applications model and fails when the fixture differs.
.PHONY: zoo-golden zoo-golden-check
zoo-golden: $(VENV)/.installed
	$(BIN)/python -m tests.zoo_golden write

zoo-golden-check: $(VENV)/.installed
	$(BIN)/python -m tests.zoo_golden check

clean:
	rm -rf $(VENV) .venv-latest .venv-tools build dist *.egg-info .pytest_cache .ruff_cache

# Benchmarks against hand-written Keras (benchmarks/README.md). `bench` takes tens of minutes and
# rewrites benchmarks/README.md; `bench-quick` takes a few minutes and only prints the tables.
bench: $(VENV)/.installed
	$(BIN)/python benchmarks/run_all.py

bench-quick: $(VENV)/.installed
	$(BIN)/python benchmarks/run_all.py --quick

# The smoke tests that run each benchmark script in a child process (tests/test_benchmarks.py),
# left out of `make test` for time.
.PHONY: bench-smoke
bench-smoke: $(VENV)/.installed
	CNNSPEC_BENCH_SMOKE=1 $(BIN)/python -m pytest tests/test_benchmarks.py -q -p no:cacheprovider

# The search evidence of benchmarks/README.md's notes (20-40 min): a 20-trial TPE search of
# examples/search/digits_search.yaml, the shipped digits_cnn, and 1 vs 2 workers.
bench-search: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_search.py runs/bench-search

# Import round trip (issue 19): one variant of every zoo family, both ways:
# import(build(zoo spec)) and build(import(keras.applications model)) (minutes; too slow for
# `make test`). `benchmarks/bench_import.py` covers every variant.
.PHONY: import-roundtrip
faults-all: $(VENV)/.installed
	CNNSPEC_FAULT_ROTATIONS=3 $(BIN)/python -m pytest tests/test_faults.py -k every_write -q -p no:cacheprovider

import-roundtrip: $(VENV)/.installed
	CNNSPEC_IMPORT_FAMILIES=1 $(BIN)/python -m pytest tests/test_import.py -k zoo_family -q -p no:cacheprovider

# ImageNet-weight loading for every zoo family of tests/test_zoo_weights.py (keras.applications'
# file layout, written offline; ~45 s): `make test` loads EfficientNetB0's.
.PHONY: zoo-weights
zoo-weights: $(VENV)/.installed
	CNNSPEC_ZOO_WEIGHTS=1 $(BIN)/python -m pytest tests/test_zoo_weights.py -q -p no:cacheprovider

# Long fuzzing campaign (issue 7): ~100,000 generated, mutated and byte-level specs through the
# front end and the CLI with fresh random seeds, then the hostile corpus; prints the totals.
# `make test` runs the same properties with about 400 derandomized cases.
.PHONY: fuzz
FUZZ_EXAMPLES ?= 7500
FUZZ_REPORT := .pytest_cache/fuzz-report.jsonl
fuzz: $(VENV)/.installed
	mkdir -p .pytest_cache && rm -f $(FUZZ_REPORT)
	CNNSPEC_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) CNNSPEC_FUZZ_RANDOM=1 CNNSPEC_FUZZ_REPORT=$(CURDIR)/$(FUZZ_REPORT) \
		$(BIN)/python -m pytest tests/test_fuzz.py tests/test_hostile.py -n $(PYTEST_WORKERS) -q
	$(BIN)/python -m tests.test_fuzz $(FUZZ_REPORT)
	CNNSPEC_KILL_LOOPS=100 $(BIN)/python -m pytest tests/test_kill_loop.py -q

# The multi-process proofs left out of `make test` for time: two TensorFlow workers on 127.0.0.1
# stream an image folder (issue 20), a two-worker training loses a worker to SIGKILL and resumes,
# and `cnnspec search --workers 2` completes a journal study in two worker processes, and loses a
# worker to SIGKILL (its trial retried) before Ctrl-C stops it.
.PHONY: test-multiworker
test-multiworker: $(VENV)/.installed
	CNNSPEC_MULTIWORKER=1 $(BIN)/python -m pytest tests/test_stream.py tests/test_distribute.py \
		tests/test_search.py -k "two_worker or killed_worker" -q -p no:cacheprovider

# The second, longer proofs of behaviours `make test` proves otherwise (tests marked `full`):
# the generated scripts of single features (mixing, learning-rate factors, cached streams, bad
# or non-UTF-8 image files, a batch larger than the data…) trained against `cnnspec train`, a
# phased run resumed exactly, the model-size estimate measured against Keras' files, and
# EfficientNet's ImageNet numerics. `make test` skips them, saying where they run.
.PHONY: test-long
test-long: $(VENV)/.installed
	CNNSPEC_LONG_PROOFS=1 $(BIN)/python -m pytest -m full -n $(PYTEST_WORKERS) --dist loadgroup -q -p no:cacheprovider

# The task training scripts `make test` leaves out for time, each run and compared with
# `cnnspec train`: the plain three-output and the one-output segmentation scripts, and those that
# read image files with masks, a labels table or a values table (make test runs the three-output
# script with phases, starting weights and an adapted normalisation).
.PHONY: test-script-tasks
test-script-tasks: $(VENV)/.installed
	CNNSPEC_SCRIPT_TASKS=1 $(BIN)/python -m pytest tests/test_codegen_tasks.py -q -p no:cacheprovider
