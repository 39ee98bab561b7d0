"""cocotb entry point of the compute-enhanced memory (hw.nmc.ComputeMemory): per dtype
and simulator, a random trace with heavy same-line reuse and random backpressure on req
and resp bit-exact against sim_models.nmc_model.ComputeMemoryModel, the sustained rate,
the same-line UPDATE bubble and the error flag (verif/tb_nmc.py). One build per
(configuration, simulator).

Environment: T3_SEED fixes the cocotb seed (default: random, printed); T3_NMC_REQUESTS
sets the random trace length (default 1500)."""

import os
import random

import pytest

from contract import latency
from contract.spec import FP_ADDER_STAGES_MAX, T3Config
from verif.runner import run_cocotb, verilog_for

SEED = int(os.environ.get("T3_SEED") or random.randrange(1 << 31))
N_REQUESTS = int(os.environ.get("T3_NMC_REQUESTS", "1500"))

#: small configurations: every dtype, 4 and 8 lanes, a non-power-of-two depth, two adder depths
CONFIGS = {
    "fp16": dict(dtype="fp16", line_bytes=16, mem_depth_lines=48),
    "bf16": dict(dtype="bf16", line_bytes=8, mem_depth_lines=32),
    # the deepest adder pipeline (the others use the default depth)
    "fp32": dict(dtype="fp32", line_bytes=16, mem_depth_lines=64,
                 fp_adder_stages=FP_ADDER_STAGES_MAX),
}


@pytest.mark.cocotb
@pytest.mark.xdist_group("nmc")
@pytest.mark.parametrize("dtype", tuple(CONFIGS))
def test_compute_memory(sim, dtype):
    from hw.nmc import ComputeMemory, same_line_update_bubble
    cfg_dict = CONFIGS[dtype]
    cfg = T3Config(**cfg_dict)
    top = "t3_compute_memory"
    src = verilog_for(top, {"cfg": cfg_dict}, lambda: ComputeMemory(cfg=cfg))
    print(f"{dtype} on {sim}: seed={SEED} (T3_SEED={SEED} reproduces), {N_REQUESTS} requests")
    # the documented timing, from the one definition the block's properties return
    run_cocotb(sim=sim, top=top, verilog=src, test_module="verif.tb_nmc", seed=SEED,
               params={"cfg": cfg_dict, "n_requests": N_REQUESTS, "idle_prob": 0.3,
                       "bp_prob": 0.4, "latency": latency.compute_memory(cfg),
                       "alu_latency": latency.nmc_alu(cfg),
                       "bubble": same_line_update_bubble(cfg)})
