# attest — the two commands of the README are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-unit lint typecheck check completions man docs bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	# an editable install writes no bytecode; compile it once so that start-up does not
	# recompile every module where PYTHONDONTWRITEBYTECODE is set (as on CI machines)
	$(BIN)/python -m compileall -q attest_cli >/dev/null
	touch $(STAMP)

## run: install into .venv and run the bundled example pipeline
run: $(STAMP)
	cd examples && ../$(BIN)/attest run

## test: install into .venv and run the whole test suite, TEST_WORKERS processes at a time
# (the tests mostly wait on subprocesses and servers, so more workers than cores pay off;
# every test uses its own temporary directory and free loopback ports)
TEST_WORKERS ?= 4
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

## test-unit: only the in-process layer (engine, cache, verifier, tracer, history; seconds)
test-unit: $(STAMP)
	$(BIN)/python -m pytest -q -m unit

lint: $(STAMP)
	$(BIN)/ruff check attest_cli tests benchmarks
	$(BIN)/mypy

check: lint test

## completions / man: regenerate from the CLI itself (a test fails when they are stale)
docs: $(STAMP)
	$(BIN)/python -m attest_cli.docgen completions man

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	# start-up is measured: modules changed since install would be recompiled on every start
	$(BIN)/python -m compileall -q attest_cli >/dev/null
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/step_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache examples/.attest examples/dist
