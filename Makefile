# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.relcomm-installed
TORCH   := torch==2.13.0
FMNIST  := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: demo test test-quick setup data bench clean

setup: $(STAMP) data

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first: the pinned CPU build; an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

data:
	@if [ -f $(FMNIST) ] || [ -n "$$RELCOMM_DATA" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian package dataset-fashion-mnist"; \
		(apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
		 (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null)) || \
		{ echo "error: could not install dataset-fashion-mnist with apt-get"; exit 1; }; \
	else \
		echo "note: Fashion-MNIST is not installed and this is not root; run"; \
		echo "      'sudo apt-get install dataset-fashion-mnist' or set RELCOMM_DATA to a folder"; \
		echo "      holding the four IDX .gz files. The tests use sklearn digits and still run."; \
	fi

demo: setup
	$(BIN)/relcomm run scenarios/quickstart.yaml --out results/quickstart
	$(BIN)/relcomm stitch scenarios/mismatch.yaml --out results/mismatch

# Everything: tests/ and the doctests of simulator/ (pyproject's testpaths).
test: setup
	$(BIN)/python -m pytest -n 2

# The same without the tests marked slow (the README, notebooks, sweeps and Dask).
test-quick: setup
	$(BIN)/python -m pytest -n 2 -m "not slow"

bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf results .pytest_cache
