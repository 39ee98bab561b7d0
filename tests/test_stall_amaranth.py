"""The ring's seeded random stalls (hw/env/stall.py: StallSource, StreamStall; issue #18):
the stall bits against the Python reference, probability 0 is a wire, nothing lost or
duplicated under stalls, the same seed gives the same pattern and another instance or
seed another one."""

import gc
import random

import pytest
from amaranth.hdl import unsigned
from amaranth.sim import Simulator

from contract.spec import ConfigError
from hw.env.stall import STALL_PROB_BITS, StallSource, StreamStall, stall_pattern, stall_prob_code
from tests.amaranth_util import collect, run, send


def _stall_bits(seed: int, index: int, prob: int, cycles: int) -> tuple[list[bool], int]:
    """The hardware's ``stall`` output in the first ``cycles`` cycles after reset (with
    ``active`` always 1) and its ``stalled`` count at the end."""
    dut = StallSource(index=index)
    out, count = [], []

    async def bench(ctx):
        ctx.set(dut.seed, seed)
        ctx.set(dut.prob, prob)
        ctx.set(dut.active, 1)
        for _ in range(cycles):
            out.append(bool(ctx.get(dut.stall)))
            await ctx.tick()
        count.append(ctx.get(dut.stalled))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out, count[0]


@pytest.mark.parametrize("seed,index,p", [(0, 0, 0.3), (12345, 9, 0.1), (0xFFFFFFFF, 3, 0.75)])
def test_pattern_matches_the_reference_and_the_probability(seed, index, p):
    cycles = 4000
    prob = stall_prob_code(p)
    got, count = _stall_bits(seed, index, prob, cycles)
    want = stall_pattern(seed, index, prob, cycles)
    first = next((t for t, (g, w) in enumerate(zip(got, want)) if g != w), None)
    assert first is None, f"cycle {first}: hardware {got[first]}, reference {want[first]}"
    assert count == sum(want)
    # 4000 draws: the observed rate is within 5 standard deviations of p
    sigma = (p * (1 - p) / cycles) ** 0.5
    assert abs(sum(got) / cycles - p) < 5 * sigma, (sum(got) / cycles, p)


def test_same_seed_same_pattern_other_index_or_seed_other_pattern():
    prob, cycles = stall_prob_code(0.3), 400
    base = stall_pattern(7, 0, prob, cycles)
    assert _stall_bits(7, 0, prob, cycles)[0] == base
    assert stall_pattern(7, 0, prob, cycles) == base
    # every gate of an 8-device ring (links 0..7, memories 8..15) and the next seeds
    others = [stall_pattern(7, i, prob, cycles) for i in range(1, 16)] \
        + [stall_pattern(s, 0, prob, cycles) for s in (6, 8, 7 + (1 << 16))]
    for o in others:
        differ = sum(a != b for a, b in zip(base, o))
        # independent patterns differ in 2 p (1 - p) = 42 % of the cycles
        assert differ > cycles // 5, differ
    assert _stall_bits(7, 1, prob, cycles)[0] == others[0]


def test_probability_zero_is_a_wire():
    """prob = 0: every cycle o.valid == i.valid, i.ready == o.ready, o.payload ==
    i.payload, whatever the inputs do; nothing counted."""
    dut = StreamStall(payload_shape=unsigned(16), index=3)
    rng = random.Random(1)
    bad = []

    async def bench(ctx):
        ctx.set(dut.seed, 99)
        ctx.set(dut.prob, 0)
        for t in range(500):
            v, r, p = rng.random() < 0.7, rng.random() < 0.6, rng.getrandbits(16)
            ctx.set(dut.i.valid, v)
            ctx.set(dut.o.ready, r)
            ctx.set(dut.i.payload, p)
            got = (ctx.get(dut.o.valid), ctx.get(dut.i.ready), ctx.get(dut.o.payload))
            if got != (v, r, p):
                bad.append((t, got, (v, r, p)))
            await ctx.tick()
        assert ctx.get(dut.stalled) == 0

    run(dut, bench, deadline_cycles=600)
    assert not bad, bad[:3]


@pytest.mark.parametrize("seed", [2, 3])
def test_no_loss_no_duplication_under_stalls(seed):
    """A random source and a random sink through a gate stalling half the cycles: the
    payloads come out once each, in order; a stalled cycle starts no offer (a transfer in
    it only completes an offer already pending); ``o`` keeps the stream rule (an offer
    not taken stays up); ``stalled`` counts exactly the stalled cycles in which a new
    payload was waiting."""
    n, prob = 300, stall_prob_code(0.5)
    dut = StreamStall(payload_shape=unsigned(16), index=5)
    got, trace = [], []

    async def cfg(ctx):
        ctx.set(dut.seed, seed)
        ctx.set(dut.prob, prob)

    async def src(ctx):
        await send(ctx, dut.i, list(range(n)), random.Random(seed), 0.3)

    async def sink(ctx):
        await collect(ctx, dut.o, n, got, random.Random(seed + 1), 0.3)

    async def watch(ctx):
        async for _clk, _rst, *row in ctx.tick().sample(dut.i.valid, dut.o.valid,
                                                        dut.o.ready, dut.stalled):
            trace.append(tuple(row))

    cycles = 8 * n + 100
    run(dut, cfg, src, sink, watch, deadline_cycles=cycles)
    assert got == list(range(n))
    pattern = stall_pattern(seed, 5, prob, cycles + 1)
    held, pending, completed = 0, False, 0
    for t, (i_valid, o_valid, o_ready, stalled) in enumerate(trace):
        assert stalled == held, f"cycle {t}: stalled {stalled}, reference {held}"
        if pending:
            assert o_valid, f"cycle {t}: an offer on o was withdrawn"
        elif pattern[t]:
            assert not o_valid, f"cycle {t}: an offer started in a stalled cycle"
        completed += pattern[t] and pending and o_valid and o_ready
        held += pattern[t] and i_valid and not pending
        pending = bool(o_valid and not o_ready)
    assert held > n // 4, held
    assert completed > 0, "no pending offer ever met a stall: the rule was not exercised"


def test_stalled_counts_held_transfers():
    """``stalled`` = cycles with stall and ``active``: ``active`` held 1 for the first
    half only."""
    prob, cycles = stall_prob_code(0.4), 600
    dut = StallSource(index=2)
    result = []

    async def bench(ctx):
        ctx.set(dut.seed, 5)
        ctx.set(dut.prob, prob)
        for t in range(cycles):
            ctx.set(dut.active, t < cycles // 2)
            await ctx.tick()
        result.append(ctx.get(dut.stalled))

    run(dut, bench, deadline_cycles=cycles + 10)
    assert result[0] == sum(stall_pattern(5, 2, prob, cycles)[:cycles // 2]) > 0


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_bad_parameters():
    with pytest.raises(ConfigError, match="index"):
        StallSource(index=-1)
    with pytest.raises(ConfigError, match="index"):
        StreamStall(payload_shape=unsigned(8), index=True)
    gc.collect()        # the half-built components warn when collected: here, not later
    for p in (-0.1, 1.0, float("nan"), "0.3"):
        with pytest.raises(ConfigError, match=r"\[0, 1\)"):
            stall_prob_code(p)
    assert stall_prob_code(0.0) == 0
    assert stall_prob_code(0.999999) == (1 << STALL_PROB_BITS) - 1
    assert stall_prob_code(0.5) == 1 << (STALL_PROB_BITS - 1)
