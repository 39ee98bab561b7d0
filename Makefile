# Front door. Every target wraps the `t3` command line or pytest inside .venv.
VENV   := .venv
PY     := $(VENV)/bin/python
T3     := $(VENV)/bin/t3
PYTEST := $(VENV)/bin/pytest

.PHONY: setup test test-slow test-quick verilog report bench formal coverage soak clean help

help:
	@echo "make setup    - install simulators, Python venv (pinned), warm up EDA tools"
	@echo "make test     - the suite: unit tests + cocotb under Icarus and Verilator (< 20 min on 2 cores)"
	@echo "make test-slow - the heavy cases kept out of 'make test' (marked slow; also run by 'make soak')"
	@echo "make report   - the main job: Verilog, area, RTL throughput, sublayer model -> reports/"
	@echo "make verilog  - generate + lint/compile/synthesise Verilog into build/verilog"
	@echo "make bench    - simulator speed benchmarks (not tests)"
	@echo "make soak     - 200 random ring scenarios on the RTL (SOAK_SIM, SOAK_SEEDS, SOAK_START)"
	@echo "make coverage - cocotb regression under Verilator with coverage -> build/coverage"
	@echo "make mutants  - mutation campaign: every broken RTL variant must be caught (MUTANT_JOBS, MUTANT_SCHEDULER)"

setup:
	@bash scripts/setup.sh

$(PY):
	@echo "error: $(VENV) missing: run 'make setup' first" >&2; exit 2

test: $(PY)
	$(PYTEST) -n 2 --dist loadgroup -q -m "not slow"

# The tests marked slow (pytest -m slow): heavy single-simulator cases and report parts
# whose checks `make test` keeps on a cheaper path (the deep proofs, also marked slow, skip here: `make formal` runs them).
test-slow: $(PY)
	$(PYTEST) -n 2 --dist loadgroup -q -m slow

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

# Mutation campaign (verif/mutation.py): every mutant's killing checks must FAIL; the
# mutants run on a Dask local cluster of MUTANT_JOBS workers (1: no cluster), or on the
# Dask scheduler at MUTANT_SCHEDULER.
MUTANT_JOBS ?= 2
MUTANT_SCHEDULER ?=
.PHONY: mutants
mutants: $(PY)
	$(PY) -m verif.mutation --jobs $(MUTANT_JOBS) $(if $(MUTANT_SCHEDULER),--scheduler $(MUTANT_SCHEDULER)) --json build/mutants.json

# Soak: many seeds of random ring scenarios, bit-exact against the golden model.
SOAK_SIM   ?= verilator
SOAK_SEEDS ?= 200
SOAK_START ?= 0
soak: test-slow
	$(PY) -m verif.soak --sim $(SOAK_SIM) --seeds $(SOAK_SEEDS) --start $(SOAK_START)

# Functional coverage (verif/coverage.py points, recorded by the testbenches) and
# Verilator line/toggle coverage data (.dat, see verif/runner.py) of the cocotb regression.
# build/coverage/summary.txt: hits per point, then line/toggle coverage per module;
# fails (exit 1) if a point has no hit.
COV := build/coverage
coverage: $(PY)
	rm -rf $(COV)
	T3_COVERAGE_DIR=$(abspath $(COV)/functional) $(PYTEST) -n 2 --dist loadgroup -q -m cocotb -k verilator verif
	$(PY) -m verif.coverage $(COV)/functional > $(COV)/summary.txt; s=$$?; cat $(COV)/summary.txt; exit $$s

# Every figure of the system model (docs/system_model.md): PNG + CSV each, into figures/
.PHONY: figures
figures: $(PY)
	$(T3) model --figure all --plot figures
