"""MCA threshold meter (hw/mca_threshold.py) against a cycle model of its rule.

The model is written from the module doc, not from the RTL: the window opens at the
first compute request (after reset or restart) and lasts 2**window_log2 cycles
including that one; at its end the threshold becomes
clamp(Q - floor(count * Q / 2**k), 1, Q); before that, and with k = 0, the programmed
one is used."""

import random

import pytest

from contract.spec import T3Config
from hw.mca_threshold import McaThresholdMeter, auto_threshold
from tests.amaranth_util import run

CFG = T3Config(mem_queue_depth=16)


def model(reqs: list[int], k: int, manual: int, q: int, restart_at: int | None = None):
    """Per cycle: the threshold in use during that cycle."""
    out, start, count, measured, thr = [], None, 0, False, manual
    for t, r in enumerate(reqs):
        out.append(thr if measured else manual)
        if restart_at is not None and t == restart_at:
            start, count, measured = None, 0, False
            continue
        if start is None and not measured and r and k:
            start, count = t, 0
        if start is not None:
            count += r
            if t - start + 1 == 1 << k:
                measured, thr, start = True, auto_threshold(count, k, q), None
    return out


def test_rule_examples():
    # independent spot checks of the formula: 90% of peak leaves 1, 10% leaves 15 of 16
    assert auto_threshold(count=922, window_log2=10, queue_depth=16) == 2
    assert auto_threshold(count=1024, window_log2=10, queue_depth=16) == 1
    assert auto_threshold(count=102, window_log2=10, queue_depth=16) == 15
    assert auto_threshold(count=0, window_log2=10, queue_depth=16) == 16


@pytest.mark.parametrize("k,density,seed", [(3, 0.5, 1), (6, 0.9, 2), (6, 0.1, 3), (0, 0.5, 4),
                                            (5, 1.0, 5)])
def test_meter_matches_model(k, density, seed):
    rng = random.Random(seed)
    print(f"seed={seed}")
    n = (1 << k) * 3 + 40
    reqs = [0] * 7 + [int(rng.random() < density) for _ in range(n)]
    manual = 5
    restart_at = len(reqs) - 20 if k == 3 else None
    want = model(reqs, k, manual, CFG.mem_queue_depth, restart_at)
    dut = McaThresholdMeter(cfg=CFG)
    got = []

    async def bench(ctx):
        ctx.set(dut.window_log2, k)
        ctx.set(dut.manual, manual)
        for t, r in enumerate(reqs):
            ctx.set(dut.compute_req, r)
            ctx.set(dut.restart, int(t == restart_at))
            got.append(ctx.get(dut.threshold))
            await ctx.tick()

    run(dut, bench, deadline_cycles=len(reqs) + 10)
    assert got == want
    if k:
        assert any(x != manual for x in want) or density == 0
