# SLiM-skeleton. The two commands: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# The CPU build of PyTorch; a GPU user installs their own torch into the venv first
# (make install keeps a torch that is already there).
TORCH_CPU ?= torch==2.13.0

DATASET ?= synthetic
RAW ?=
LAYOUT ?=
OUT ?= data
WORKERS ?= 2
SIZE ?= small
ONLY ?=
PUBLISH ?=
NWUCLA ?=
BENCH_ARGS ?=
PYTEST_ARGS ?=

.PHONY: install test test-slow demo ingest bench bench-gpu clean help

help:
	@echo "make install         create .venv and install; then 'source .venv/bin/activate' (or use .venv/bin/slim-...)"
	@echo "make demo            install, make the synthetic dataset, ingest, pretrain, evaluate (SIZE=small|full)"
	@echo "make test            install and run the test suite (slow checks: make test-slow)"
	@echo "make ingest DATASET=ntu60|ntu120|pku2|nwucla|synthetic [RAW=dir|zip] [OUT=data] [LAYOUT=ntu25]"
	@echo "make ingest DATASET=ntu60|ntu120 FROM=pyskl|ctrgcn|stgcn RAW=file [NAMES=skes_available_name.txt]"
	@echo "make bench [ONLY=ingest|pipeline|model|train|eval|deploy|ablations|nwucla|realcurve|loader|shards|mfm_chunk] [NWUCLA=path] [BENCH_ARGS='--steps 30'] [PUBLISH=1]"
	@echo "                     (figures -> untracked bench/local.json; PUBLISH=1: the README's bench/results.json)"
	@echo "make bench-gpu       the paper recipe on one GPU: eager, compiled, DDP, projected wall time [BENCH_ARGS=...]"

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=77" wheel
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_CPU)"
	$(PY) -m pip install -q -e ".[test,plot,onnx]"
	@touch $@

install: $(VENV)/.installed
	@echo "installed in $(VENV): run 'source $(VENV)/bin/activate' once per shell, or call $(BIN)/slim-ingest, $(BIN)/slim-train, $(BIN)/slim-eval"

test: install
	$(BIN)/pytest -q $(PYTEST_ARGS)

test-slow: install
	$(BIN)/pytest -q -m slow $(PYTEST_ARGS)

# ingest: RAW may be given more than once for NTU-120's two archives: RAW="dir1 dir2".
# FROM=pyskl|ctrgcn|stgcn imports a preprocessed file instead: RAW is that file (or two
# npz files, or the ST-GCN folder); NAMES=skes_available_name.txt for ctrgcn.
ingest: install
	@if [ -n "$(FROM)" ]; then \
	  test -n "$(RAW)" || { echo "RAW=<the $(FROM) file or folder> is required with FROM=$(FROM)"; exit 2; }; \
	  $(BIN)/slim-ingest $(DATASET) --from $(FROM) $(RAW) --out $(OUT) $(if $(NAMES),--names $(NAMES),); \
	elif [ "$(DATASET)" = "synthetic" ] && [ -z "$(RAW)" ]; then \
	  $(BIN)/slim-ingest synth --out raw/synthetic && \
	  $(BIN)/slim-ingest synthetic --raw raw/synthetic --out $(OUT) --workers $(WORKERS); \
	else \
	  test -n "$(RAW)" || { echo "RAW=<folder with the raw files> is required for DATASET=$(DATASET)"; exit 2; }; \
	  $(BIN)/slim-ingest $(DATASET) $(foreach r,$(RAW),--raw $(r)) --out $(OUT) --workers $(WORKERS) $(if $(LAYOUT),--layout $(LAYOUT),); \
	fi

demo: install
	$(BIN)/slim-eval demo --size $(SIZE)

bench: install
	$(PY) -m benchmarks.run $(if $(ONLY),--only $(ONLY),) $(if $(NWUCLA),--nwucla $(NWUCLA),) $(if $(PUBLISH),--publish,) $(BENCH_ARGS)

# One GPU, under 8 minutes: bf16 eager and compiled steps, MFU, features, 1-process NCCL
# DDP, projected wall time of the full recipe (benchmarks/gpu.py; BENCH_ARGS="--steps 20").
bench-gpu: install
	$(PY) -m benchmarks.gpu $(BENCH_ARGS)

clean:
	rm -rf build dist *.egg-info
