"""LinkModel: latency, fractional bandwidth, order, and backpressure without loss."""

import gc
import random

import pytest
from amaranth.hdl import unsigned

from hw.env.link import LinkModel
from tests.amaranth_util import collect, run, send


def _run(n, latency, num, den, depth=64, seed=0, stall=0.0, idle=0.0):
    dut = LinkModel(payload_shape=unsigned(16), depth=depth)
    got, stamps = [], []
    sent_at = []

    async def cfg(ctx):
        ctx.set(dut.latency, latency)
        ctx.set(dut.num, num)
        ctx.set(dut.den, den)

    async def src(ctx):
        await send(ctx, dut.tx, list(range(n)), random.Random(seed), idle)

    async def sink(ctx):
        await collect(ctx, dut.rx, n, got, random.Random(seed + 1), stall, stamps)

    run(dut, cfg, src, sink, deadline_cycles=latency + n * (den // num + 2) * 4 + 200)
    return got, stamps


@pytest.mark.parametrize("latency", [1, 5, 40])
def test_latency_of_a_single_packet(latency):
    got, stamps = _run(1, latency, 1, 1)
    assert got == [0]
    # accepted at the first clock edge, delivered `latency` edges later (minimum 2: the
    # FIFO's buffered read port); `collect` numbers edges from 1.
    assert stamps[0] == max(latency, 2) + 1


@pytest.mark.parametrize("num,den", [(1, 1), (3, 20), (1, 4), (2, 3)])
def test_bandwidth_is_num_over_den(num, den):
    n = 60
    got, stamps = _run(n, 10, num, den)
    assert got == list(range(n))
    span = stamps[-1] - stamps[0]
    # n-1 gaps at den/num cycles each (token bucket, bursts of one)
    expect = (n - 1) * den / num
    assert abs(span - expect) <= den, (span, expect)


@pytest.mark.parametrize("seed", [4, 5])
def test_backpressure_and_full_fifo_lose_nothing(seed):
    got, _ = _run(200, 30, 1, 2, depth=8, seed=seed, stall=0.5, idle=0.3)
    assert got == list(range(200))


def test_depth_for():
    assert LinkModel.depth_for(700, 0.15) == 128
    assert LinkModel.depth_for(10, 1.0) == 16


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("kw,msg", [
    ({"depth": 1}, r"LinkModel: depth=1: must be an integer >= 2"),
    ({"depth": 4, "latency_bits": 31}, r"LinkModel: latency_bits=31: must be an integer in \[1, 30\]"),
    ({"depth": 4, "credit_bits": True}, r"LinkModel: credit_bits=True: must be an integer"),
])
def test_bad_parameters_are_named(kw, msg):
    with pytest.raises(ValueError, match=msg):
        LinkModel(payload_shape=8, **kw)
    gc.collect()        # the half-built component's warning, inside the filter
