# Two entry points on a fresh machine: `make demo` and `make test` (see README).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench peers peers-bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	OMP_NUM_THREADS=1 $(VENV)/bin/causalpert demo --seed 0

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

test: $(STAMP) lint
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(PY) bench/run.py --out bench-results.json

# The field's own tools, each in its own venv under $$CAUSALPERT_PEERS_HOME (~/.cache/causalpert/peers):
# minutes and GBs each, so never part of `make test`.
PEERS ?= cellflow stadion state
peers: $(STAMP)
	for p in $(PEERS); do $(VENV)/bin/causalpert peers install $$p || exit 1; done

# Every peer next to GIM and the baselines on every protocol it can serve (about 3 hours here).
peers-bench: peers
	OMP_NUM_THREADS=1 $(PY) bench/peers.py --out runs/peers

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
