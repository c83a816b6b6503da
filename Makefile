# The two commands of the README: `make demo` (main job) and `make test`.
# Each installs whatever is missing first (scripts/setup.sh is idempotent).
VENV    := .venv
PY      := $(VENV)/bin/python
TRIDENT := $(VENV)/bin/trident
RUNS    := runs

.PHONY: setup demo test test-slow bench clean

setup:
	bash scripts/setup.sh

# On-edge training on the simulated accelerator: the SoC RTL (Verilator) trains digits through
# the driver; the same settings on the golden device (must give the same weights bit for bit)
# and in float32 (the accuracy the FP16 contract is compared with).  ~4 min on 2 cores.
DEMO := --dataset digits --model mlp-small --neuron lif --T 4 --epochs 2 --lr 0.2 --momentum 0.9 --detach-reset --threads 1
demo: setup
	$(TRIDENT) train $(DEMO) --precision fp16-hw --device sim --report $(RUNS)/demo.json --plot $(RUNS)/demo.png
	$(TRIDENT) train $(DEMO) --precision fp16-hw --device golden --report $(RUNS)/demo-golden.json
	$(TRIDENT) train $(DEMO) --precision fp32 --report $(RUNS)/demo-fp32.json
	$(PY) scripts/compare_reports.py $(RUNS)/demo.json $(RUNS)/demo-golden.json $(RUNS)/demo-fp32.json

test: setup
	$(PY) -m pytest

test-slow: setup
	$(PY) -m pytest -m slow

clean:
	rm -rf $(RUNS) build sim_build .pytest_cache
