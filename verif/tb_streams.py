"""cocotb tests of the stream drivers themselves (verif/streams.py), on a 4-entry stream
FIFO (verif/test_streams.py: ``i`` in, ``o`` out, one cycle through).

* ``timed_beats``: beats with earliest cycles (gaps crossed by timers) are accepted
  exactly at the cycles a per-cycle driver would reach: beat ``i`` is presented at
  ``max(at[i], accept[i-1])`` and taken at the next edge;
* ``pauses_lose_nothing``: seeded random pauses on both sides (verif/pacing.py): every
  payload once, in order; the source counts exactly the pauses its generator gave;
* ``on_demand_sink``: ``expect(n)`` takes exactly n items, then ``ready`` stays low;
* ``timeouts_fail_loudly``: a sink that never takes anything: the source's
  ``ready_timeout`` and the sink's ``stall_cycles`` raise AssertionError naming the
  stream.

Parameters (verif.runner.tb_params): none. Randomness from the cocotb seed (printed).
"""

from __future__ import annotations

import itertools

import cocotb

from verif.pacing import random_pauses
from verif.streams import TB

#: the DUT's FIFO depth (verif/test_streams.py)
DEPTH = 4


async def _bench(dut, **sink_kw):
    tb = TB(dut)
    await tb.reset()
    src = tb.source("i")
    sink = tb.sink("o", **sink_kw)
    return tb, src, sink


@cocotb.test()
async def timed_beats(dut):
    """Groups of at most DEPTH beats (the FIFO holds a group while the on-demand sink
    waits, so nothing else wakes Python in the gaps), then the group is drained."""
    tb, src, sink = await _bench(dut, on_demand=True)
    accepted = []
    src.on_accept = lambda word, cycle: accepted.append(cycle)
    # back to back, small and large gaps (timer jumps), a due time already past
    groups = [[0, 0, 1, 2], [3, 10, 10, 11], [40, 41, 41, 100], [97, 98, 250]]
    words, n = [], 0
    for offsets in groups:
        start = tb.cycle
        at = [start + o for o in offsets]
        group = list(range(n + 1, n + 1 + len(at)))
        accepted.clear()
        await src.send(group, at=at)
        want, prev = [], start
        for a in at:
            prev = max(a, prev) + 1
            want.append(prev)
        assert accepted == want, f"accept cycles {accepted}, a per-cycle driver: {want}"
        words += group
        n += len(group)
        sink.expect(len(group))
        assert await sink.wait_for(n, timeout_cycles=20) == words
    tb.log.info("%d beats, %d edges crossed by timers", n, tb.clock.edges_skipped)
    assert tb.clock.edges_skipped > 200, "the gaps were not crossed by timers"


@cocotb.test()
async def pauses_lose_nothing(dut):
    tb = TB(dut)
    await tb.reset()
    given = []

    def counted(gen):
        for p in gen:
            given.append(p)
            yield p
    src = tb.source("i", pauses=counted(random_pauses(tb.rng("source"), 0.4)))
    sink = tb.sink("o", pauses=random_pauses(tb.rng("sink"), 0.5))
    words = [tb.rng("data").randrange(1 << 16) for _ in range(300)]
    await src.send(words[:100])
    src.send_nowait(words[100:])
    assert await sink.wait_for(len(words), timeout_cycles=5000) == words
    assert src.idle_cycles == sum(given) > 0
    assert src.stall_cycles > 0, "the sink's pauses never backpressured the source"


@cocotb.test()
async def on_demand_sink(dut):
    tb, src, sink = await _bench(dut, on_demand=True)
    src.send_nowait(range(10, 20))
    sink.expect(3)
    assert await sink.wait_for(3, timeout_cycles=50) == [10, 11, 12]
    await tb.cycles(20)
    assert len(sink.items) == 3 and int(dut.o__ready.value) == 0
    assert src.accepted == 3 + DEPTH, "the FIFO fills behind the sink"
    sink.expect(7)
    await src.wait_idle(ready_timeout=50)
    assert await sink.wait_for(10, timeout_cycles=50) == list(range(10, 20))


@cocotb.test()
async def timeouts_fail_loudly(dut):
    tb, src, sink = await _bench(dut, on_demand=True)
    src.send_nowait(range(DEPTH + 2))
    try:
        await src.wait_idle(ready_timeout=20)
    except AssertionError as e:
        assert f"i: beat {DEPTH} not accepted for 20 cycles (2 not accepted)" in str(e), e
    else:
        raise AssertionError("a source blocked for ever did not time out")
    sink.set_pause_generator(itertools.repeat(True))     # willing, but never ready
    sink.expect(1)
    try:
        await sink.wait_for(1, stall_cycles=30)
    except AssertionError as e:
        assert "stream o: got 0 of 1 items (none for 30 cycles)" in str(e), e
    else:
        raise AssertionError("a sink that never got an item did not time out")
