# The two commands a fresh clone needs: `make run` and `make test`. Both set up .venv first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed

# Tools run from the project's venv; telemetry of kedro, mlflow, dvc and GE is off.
export PATH := $(BIN):$(PATH)
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export GX_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1

.PHONY: setup run retrain test lint format bench ui lock paper-check

setup: $(STAMP)  ## create .venv and install the pinned dependencies (fast when nothing changed)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" setuptools wheel
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $@

run: setup  ## the whole pipeline on the default config, reproduced by DVC (reruns only what changed)
	dvc repro

paper-check: setup  ## every stage at the paper's shapes, counts cut (50 min on 2 cores; not part of `make test`)
	mobilei2v paper-check

retrain: setup  ## what a scheduler calls: rerun what changed, gate the new model against the champion (exit 0 promoted, 3 kept)
	mobilei2v retrain

test: setup  ## the test suite
	pytest

lint: setup
	ruff check . && ruff format --check .

format: setup
	ruff check --fix . && ruff format .

bench: setup  ## benchmarks: print tables, write JSON to benchmarks/results/ (about 1.5 hours on 2 cores)
	python benchmarks/curation.py
	python benchmarks/curation_memory.py
	python benchmarks/attention.py
	python benchmarks/denoiser.py
	python benchmarks/mobile_attention.py
	python benchmarks/quantization.py
	python benchmarks/quantized_cpu.py
	python benchmarks/per_frame.py
	python benchmarks/threads.py
	python benchmarks/training_step.py

ui: setup  ## the MLflow UI (http://127.0.0.1:5000) and kedro-viz (http://127.0.0.1:4141) on localhost; Ctrl-C stops both
	mobilei2v ui

lock: setup  ## re-pin constraints.txt from the current .venv
	{ echo "# Pinned versions of every package in .venv, used by 'make setup' (pip install -c constraints.txt)."; \
	  echo "# Regenerate after changing pyproject.toml: make lock"; \
	  $(BIN)/pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu/torch==\1/' | grep -v '^mobilei2v'; } > constraints.txt
