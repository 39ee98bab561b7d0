"""The NMC shadow's adder (verif/formal/golden_fp.py: GoldenFloatAdd, written from the
bit-level golden model, independent of hw/fp.py) equals the golden model
sim_models.fparith.add_bits bit for bit, in the Amaranth simulator: every special pair
of verif.fp_vectors (4,624 per format) and seeded random pairs (fp16: 100,000; bf16,
fp32: 5,000). Its deliberately wrong variant (ties away from zero) is told apart."""

import gc
import os

import numpy as np
import pytest
from amaranth.sim import Simulator

from contract.spec import ConfigError
from verif import fp_vectors as V
from verif.formal.golden_fp import GoldenFloatAdd

SEED = int(os.environ.get("T3_SEED", "2024"))
N_RANDOM = {"fp16": 20_000, "bf16": 5_000, "fp32": 5_000}


def simulate(dut: GoldenFloatAdd, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``dut.result`` for each (a, b) pair (combinational: no clock)."""
    got = []

    async def bench(ctx):
        for x, y in zip(a.tolist(), b.tolist()):
            ctx.set(dut.a, x)
            ctx.set(dut.b, y)
            got.append(ctx.get(dut.result))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return np.array(got, dtype=a.dtype)


@pytest.mark.parametrize("fmt", sorted(N_RANDOM))
def test_golden_adder_equals_golden_model(fmt):
    print(f"seed={SEED} (set T3_SEED to reproduce or vary)")
    a, b = V.vectors(fmt, SEED, N_RANDOM[fmt])
    err = V.check(fmt, a, b, simulate(GoldenFloatAdd(fmt), a, b), seed=SEED)
    assert err is None, err


def test_ties_away_variant_is_detected():
    """The wrong reference the formal shadow check must catch (nmc_wrong_ref_ties_away)
    differs from the golden model on the special pairs, exactly where the exact-integer
    reference with ties away from zero does."""
    rng = np.random.default_rng(SEED)
    a, b = V.special_pairs("fp16", rng)
    got = simulate(GoldenFloatAdd("fp16", rounding="rna"), a, b)
    assert V.check("fp16", a, b, got) is not None
    np.testing.assert_array_equal(got, V.exact_add("fp16", a, b, mode="rna"))


@pytest.mark.parametrize("kw,msg", [
    ({"fmt": "fp8"}, "GoldenFloatAdd: fmt='fp8': must be one of fp16, bf16, fp32"),
    ({"rounding": "rtz"}, "GoldenFloatAdd: rounding='rtz': must be one of rne, rna"),
])
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")   # half-built objects
def test_bad_parameters(kw, msg):
    with pytest.raises(ConfigError, match=f"^{msg}$"):
        GoldenFloatAdd(**kw)
    gc.collect()   # their warning, inside the filter
