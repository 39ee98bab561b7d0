"""cocotb testbench of hw.fp.FloatAdder (driven by verif/test_fp.py).

Parameters (verif.runner.tb_params): ``fmt``, ``latency``, ``seed``, ``n_random``.
The stimulus is precomputed with numpy (verif.fp_vectors): the special-value cross
product and constructed pairs, then ``n_random`` random pairs, spread over cycles with
random idle gaps that carry garbage operands. The per-cycle loop only writes three
inputs, awaits one clock edge and reads two outputs; the whole result stream is compared
with sim_models.fparith.add_bits at the end.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from contract.spec import float_format
from verif import fp_vectors as V
from verif.runner import tb_params
from verif.streams import TB

#: fraction of cycles with valid low
IDLE = 0.1


async def _reset(dut) -> TB:
    """The adder's bench: clock started, ``valid`` low, reset done."""
    tb = TB(dut)
    dut.valid.value = 0
    await tb.reset()
    return tb


def _schedule(f, a, b, rng):
    """Spread the pairs over cycles: valid low on ~IDLE of the cycles, random operands there."""
    n = len(a)
    n_cycles = int(n / (1 - IDLE))
    valid = np.zeros(n_cycles, dtype=np.int64)
    valid[np.sort(rng.choice(n_cycles, n, replace=False))] = 1
    da = rng.integers(0, 1 << f.width, n_cycles, dtype=np.uint64)
    db = rng.integers(0, 1 << f.width, n_cycles, dtype=np.uint64)
    da[valid == 1], db[valid == 1] = a, b
    return da.tolist(), db.tolist(), valid.tolist()


async def _stream(dut, da, db, dv, tail: int) -> list[int]:
    """One input per cycle, results sampled each cycle; returns the valid results."""
    edge = RisingEdge(dut.clk)
    a, b, v, rv, r = dut.a, dut.b, dut.valid, dut.result_valid, dut.result
    out = []
    for x, y, z in zip(da, db, dv):
        a.value = x
        b.value = y
        v.value = z
        await edge
        if rv.value:
            out.append(r.value)
    v.value = 0
    for _ in range(tail):
        await edge
        if rv.value:
            out.append(r.value)
    return [x.to_unsigned() for x in out]


@cocotb.test()
async def latency(dut):
    """One addition: result_valid rises exactly `latency` edges after the edge that took it."""
    p = tb_params()
    await _reset(dut)
    f = float_format(p["fmt"])
    one = (f.bias << f.man_bits)
    dut.a.value, dut.b.value, dut.valid.value = one, one, 1
    await RisingEdge(dut.clk)
    dut.valid.value = 0
    edges = 1
    while True:
        await ReadOnly()
        if dut.result_valid.value:
            break
        assert edges < 10, "no result"
        await RisingEdge(dut.clk)
        edges += 1
    assert edges == p["latency"], f"result after {edges} edges, latency is {p['latency']}"
    assert dut.result.value.to_unsigned() == ((f.bias + 1) << f.man_bits), "1.0 + 1.0 != 2.0"


@cocotb.test()
async def specials_and_random(dut):
    """Special cross product + random pairs, random valid gaps, bit-exact stream."""
    p = tb_params()
    fmt, seed = p["fmt"], p["seed"]
    f = float_format(fmt)
    dut._log.info(f"{fmt}: seed={seed} n_random={p['n_random']}")
    a, b = V.vectors(f, seed, p["n_random"])
    da, db, dv = _schedule(f, a, b, np.random.default_rng(seed + 1))
    await _reset(dut)
    t0 = time.perf_counter()
    got = await _stream(dut, da, db, dv, tail=p["latency"] + 2)
    wall = time.perf_counter() - t0
    dut._log.info(f"{fmt}: {len(dv)} cycles, {len(a)} additions in {wall:.1f} s "
                  f"({len(dv) / wall:,.0f} cycles/s)")
    err = V.check(f, a, b, got, seed=seed)
    assert err is None, err
