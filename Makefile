# Two commands for a new user: `make run` and `make test`. Both create .venv if
# it is missing, install the project into it (only when pyproject.toml changed),
# and are quiet on the second run.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOG    := $(VENV)/install.log

.PHONY: run test test-all lint screenshots bench clean

$(BIN)/python:
	@echo "Creating $(VENV) ..."
	@$(PYTHON) -m venv $(VENV)

# pip's chatter goes to a log; it is printed only if the install fails. The install
# also compiles compute/_fused.c (setup.py), so a change there reinstalls too.
$(STAMP): pyproject.toml setup.py compute/_fused.c | $(BIN)/python
	@echo "Installing softmax-lab and its dependencies into $(VENV) (log: $(LOG)) ..."
	@$(BIN)/python -m pip install -q -e ".[test,lint]" >$(LOG) 2>&1 || { cat $(LOG); exit 1; }
	@touch $(STAMP)

run: $(STAMP)
	@$(BIN)/softmax-lab $(ARGS)

lint: $(STAMP)
	@$(BIN)/ruff check --quiet .

# lint (incl. the import contracts per package) + the whole fast suite
# (tests/test_architecture.py checks the contracts at run time too).
test: lint
	@$(BIN)/python -m pytest -q

test-all: lint
	@$(BIN)/python -m pytest -q --run-slow

# The README pictures, rendered from the real window (offscreen).
screenshots: $(STAMP)
	@$(BIN)/python docs/make_screenshots.py docs

# The benchmark suite (not part of `make test`): one table, and bench-results.json.
bench: $(STAMP)
	@$(BIN)/python -m tests.benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis compute/*.so
