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
OUT ?= data
WORKERS ?= 2
SIZE ?= small
ONLY ?=
PYTEST_ARGS ?=

.PHONY: install test test-slow demo ingest bench clean help

help:
	@echo "make demo            install, make the synthetic dataset, ingest, pretrain, evaluate (SIZE=small|full)"
	@echo "make test            install and run the test suite (slow checks: make test-slow)"
	@echo "make ingest DATASET=ntu60|ntu120|pku2|synthetic [RAW=dir] [OUT=data]"
	@echo "make bench [ONLY=ingest|pipeline|model|train|eval]"

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=77" wheel
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_CPU)"
	$(PY) -m pip install -q -e ".[test,plot]"
	@touch $@

install: $(VENV)/.installed

test: install
	$(BIN)/pytest -q $(PYTEST_ARGS)

test-slow: install
	$(BIN)/pytest -q -m slow $(PYTEST_ARGS)

# ingest: RAW may be given more than once for NTU-120's two archives: RAW="dir1 dir2".
ingest: install
	@if [ "$(DATASET)" = "synthetic" ] && [ -z "$(RAW)" ]; then \
	  $(BIN)/slim-ingest synth --out raw/synthetic && \
	  $(BIN)/slim-ingest synthetic --raw raw/synthetic --out $(OUT) --workers $(WORKERS); \
	else \
	  test -n "$(RAW)" || { echo "RAW=<folder with the raw files> is required for DATASET=$(DATASET)"; exit 2; }; \
	  $(BIN)/slim-ingest $(DATASET) $(foreach r,$(RAW),--raw $(r)) --out $(OUT) --workers $(WORKERS); \
	fi

demo: install
	$(BIN)/slim-eval demo --size $(SIZE)

bench: install
	$(PY) -m benchmarks.run $(if $(ONLY),--only $(ONLY),)

clean:
	rm -rf build dist *.egg-info
