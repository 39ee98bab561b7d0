"""The ring liveness harness (verif/formal/ring.py) in the Amaranth simulator, with the
fastest environment (every producer request offered at once, no stall): the tiny fused
reduce-scatter completes exactly at RUN_CYCLES, the constant the formal bound is built
on -- at that bound every assertion holds and the cover is hit; one cycle earlier
``every_tile_fires`` fails. Also the harness's parameter errors."""

import contextlib
import gc
import io

import pytest
from amaranth.sim import Simulator

from verif.formal.mutants import TrackerFiresEarly
from verif.formal.ring import DEVICES, RUN_CYCLES, RingLivenessHarness


def run_fastest(bound: int) -> str:
    """Simulate the harness (bound ``bound``) to past the bound with every request
    offered at once and no stall; returns what the simulator printed (cover hits) and
    raised (a violated assertion). The stall budget is only the solver's constraint;
    it is large here because the simulator evaluates the budget's Assume on a
    same-timestep glitch (a producer's request seen held back for a delta cycle when
    programming ends), which the formal model does not have."""
    h = RingLivenessHarness(stall_budget=1000, bound=bound)

    async def bench(ctx):
        ctx.set(h.offer, (1 << DEVICES) - 1)
        for _ in range(bound + 3):
            await ctx.tick()

    sim = Simulator(h)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            sim.run()
        except AssertionError as e:
            print(f"raised: {e}")
    return out.getvalue()


def test_fastest_run_completes_exactly_at_run_cycles():
    at = run_fastest(RUN_CYCLES)
    assert "raised" not in at, at[-2000:]
    assert "reduce_scatter_done" in at
    early = run_fastest(RUN_CYCLES - 1)
    assert "raised: Assertion violated: every_tile_fires" in early, early[-2000:]


@pytest.mark.parametrize("kw,msg", [
    ({"stall_budget": -1}, "stall_budget=-1: must be an integer >= 0"),
    ({"bound": 0}, "bound=0: must be an integer >= 1"),
    ({"stall_budget": True}, "stall_budget=True: must be an integer >= 0"),
    ({"mutant": int}, "mutant=<class 'int'>: must be a registered mutant class"),
])
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")   # half-built objects
def test_bad_parameters(kw, msg):
    with pytest.raises(ValueError, match=f"^RingLivenessHarness: {msg}"):
        RingLivenessHarness(**kw)
    gc.collect()   # their warning, inside the filter


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")   # built, not elaborated
def test_a_registered_mutant_is_accepted():
    RingLivenessHarness(mutant=TrackerFiresEarly)
