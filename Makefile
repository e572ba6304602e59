# Two entry points for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
# Exact versions the suite was last run with (`make lock` rewrites it); pyproject.toml keeps the ranges.
CONSTRAINTS ?= constraints.txt
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench docs notebooks setup lock clean

setup: $(STAMP)

# The pinned CPU torch goes in first: a bare `torch` requirement would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e ".[dev]"
	touch $(STAMP)

# Re-resolve the newest versions pyproject.toml allows in a scratch venv and record them in $(CONSTRAINTS);
# then run `make test` (a fresh clone: .ci/run) before committing the new file.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip
	.lock-venv/bin/python -m pip install -q "$(TORCH_SPEC)"
	.lock-venv/bin/python -m pip install -q -e ".[dev,docs]"
	{ echo "# Exact versions of the last tested environment; written by 'make lock' ($$(date -u +%Y-%m-%d))."; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable --exclude mflow-sbi | sed 's/^\(torch==[^+]*\)+.*/\1/'; } \
	  > $(CONSTRAINTS).tmp
	mv $(CONSTRAINTS).tmp $(CONSTRAINTS)
	rm -rf .lock-venv
	@echo "$(CONSTRAINTS) updated; run 'make test' and commit it"

run: $(STAMP)
	$(BIN)/mflow-sbi run $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# The documentation site in site/ (strict: a warning fails the build); the CLI and configuration references are
# generated from the parser and the schema by docs/hooks.py.
docs: $(STAMP)
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	@echo "documentation in site/index.html"

# Re-execute the notebooks and store them with their outputs (they render on GitHub and in the docs site).
notebooks: $(STAMP)
	$(BIN)/python notebooks/execute.py $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(ARGS)

clean:
	rm -rf $(VENV) .lock-venv *.egg-info .pytest_cache mflow_sbi_output build dist site
