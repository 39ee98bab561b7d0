"""cocotb entry point of the floating-point adder: per format and simulator, the special
cross product plus random pairs (default 200,000) bit-exact against
sim_models.fparith.add_bits, and the latency. One build per (format, stages, simulator):
every format at the default depth, fp32 also at the deepest pipeline.

Environment: T3_SEED (default 2024) picks the random vectors; T3_FP_RANDOM overrides the
number of random pairs per format."""

import os

import pytest

from hw.fp import FloatAdder
from contract.spec import DEFAULT_CONFIG, FORMATS, FP_ADDER_STAGES_MAX
from verif.runner import run_cocotb, verilog_for

SEED = int(os.environ.get("T3_SEED", "2024"))
N_RANDOM = int(os.environ.get("T3_FP_RANDOM", "200000"))


#: (format, stages): every format at the default depth, fp32 also at the deepest pipeline
#: (with a tenth of the random pairs)
CASES = [(f, DEFAULT_CONFIG.fp_adder_stages) for f in FORMATS] + [("fp32", FP_ADDER_STAGES_MAX)]


@pytest.mark.cocotb
@pytest.mark.xdist_group("fp")
@pytest.mark.parametrize("fmt,stages", CASES)
def test_float_adder(sim, fmt, stages):
    n_random = N_RANDOM if stages == DEFAULT_CONFIG.fp_adder_stages else N_RANDOM // 10
    top = f"t3_float_adder_{fmt}"
    hw_params = {"fmt": fmt, "stages": stages}
    src = verilog_for(top, hw_params, lambda: FloatAdder(fmt, stages=stages))
    print(f"{fmt}, {stages} stages, on {sim}: seed={SEED} (T3_SEED reproduces), "
          f"{n_random} random pairs")
    run_cocotb(sim=sim, top=top, verilog=src, test_module="verif.tb_fp",
               build_key=f"{top}-s{stages}",
               params={**hw_params, "latency": stages, "seed": SEED, "n_random": n_random})
