# The two commands of the README: `make demo` (main job) and `make test`.
# Each installs whatever is missing first (scripts/setup.sh is idempotent).
VENV    := .venv
PY      := $(VENV)/bin/python
TRIDENT := $(VENV)/bin/trident
RUNS    := runs

.PHONY: setup demo test test-slow bench clean

setup:
	bash scripts/setup.sh

# On-edge training as the device computes it: the hardware-exact FP16 kernels (golden device).
demo: setup
	$(TRIDENT) train --dataset digits --preset mlp --neuron lif --T 8 --epochs 40 --detach-reset \
	  --precision fp16-hw --device golden --report $(RUNS)/demo.json --plot $(RUNS)/demo.png

test: setup
	$(PY) -m pytest

test-slow: setup
	$(PY) -m pytest -m slow

clean:
	rm -rf $(RUNS) build sim_build .pytest_cache
