"""StreamMerge: nothing lost, per-input order kept, fair share under contention."""

import gc
import random

import pytest
from amaranth.hdl import unsigned

from hw.merge import StreamMerge
from tests.amaranth_util import collect, run, send


def _run(n, per_input, seed, idle=0.0, stall=0.0):
    dut = StreamMerge(payload_shape=unsigned(12), n=n)
    data = [[(k << 8) | i for i in range(per_input)] for k in range(n)]
    got = []

    def src(k):
        async def bench(ctx):
            await send(ctx, dut.inputs()[k], data[k], random.Random(seed * 31 + k), idle)
        return bench

    async def sink(ctx):
        await collect(ctx, dut.o, n * per_input, got, random.Random(seed), stall)

    run(dut, *[src(k) for k in range(n)], sink)
    return data, got


@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize("seed", [1, 2])
def test_merge_keeps_everything_in_order(n, seed):
    data, got = _run(n, 40, seed, idle=0.3, stall=0.4)
    assert len(got) == n * 40
    for k in range(n):
        assert [g for g in got if g >> 8 == k] == data[k]


def test_round_robin_is_fair():
    data, got = _run(3, 30, 0)
    firsts = [g >> 8 for g in got[:30]]
    assert firsts == [0, 1, 2] * 10


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")   # half-built objects
def test_bad_n():
    for bad in (1, 17, True, 2.0):
        with pytest.raises(ValueError, match=rf"^StreamMerge: n={bad!r}: must be an integer "
                                             rf"in \[2, 16\]$"):
            StreamMerge(payload_shape=unsigned(4), n=bad)
    gc.collect()      # Amaranth's elaboratables are reference cycles: gone while filtered
