# Front door. Every target wraps the `t3` command line or pytest inside .venv.
VENV   := .venv
PY     := $(VENV)/bin/python
T3     := $(VENV)/bin/t3
PYTEST := $(VENV)/bin/pytest

.PHONY: setup test test-quick verilog report bench formal coverage soak clean help

help:
	@echo "make setup    - install simulators, Python venv (pinned), warm up EDA tools"
	@echo "make test     - whole suite: unit tests + cocotb under Icarus and Verilator"
	@echo "make report   - the main job: Verilog, area, RTL throughput, sublayer model -> reports/"
	@echo "make verilog  - generate + lint/compile/synthesise Verilog into build/verilog"
	@echo "make bench    - simulator speed benchmarks (not tests)"

setup:
	@bash scripts/setup.sh

$(PY):
	@echo "error: $(VENV) missing: run 'make setup' first" >&2; exit 2

test: $(PY)
	$(PYTEST) -n 2 --dist loadgroup -q

test-quick: $(PY)
	$(PYTEST) -q -m "not cocotb"

verilog: $(PY)
	$(T3) verilog --check --out build/verilog

report: $(PY)
	$(T3) report --out reports

bench: $(PY)
	$(T3) bench

clean:
	rm -rf build reports .pytest_cache

formal: $(PY)
	$(PY) -m verif.formal
