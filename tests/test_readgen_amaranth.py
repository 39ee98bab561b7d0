"""GemmReadGenerator (hw/env/readgen.py) in the Amaranth simulator: the issue cycles of a
num/den rate match an independent token-bucket model cycle for cycle (and so the count
in any den-aligned window), the address walk wraps over the window, ``count`` stops it,
backpressure holds the presented request; and, through a whole T3Unit, the generator's
READs are answered and discarded (``gemm_reads_done``) while host READs still get their
own data back in order."""

import gc
import random

import pytest

from hw.env.readgen import GemmReadGenerator
from hw.unit import T3Unit
from contract import regmap
from contract.program import DeviceProgram
from contract.spec import ConfigError, Op, T3Config
from tests.amaranth_util import csr_write, run

CFG = T3Config(line_bytes=8, mem_depth_lines=256, regions=4, ring_devices=2)


def model_accept_cycles(num: int, den: int, count: int, cycles: int) -> list[int]:
    """Cycles (0 = the first edge after the inputs are set) at which a READ is accepted
    with ``ready`` always high: a token bucket (+num per cycle, capped at den + num - 1,
    den per request, empty at reset) loads the output register, accepted one cycle later."""
    tokens, loaded, out = 0, 0, []
    for t in range(cycles):
        load = tokens >= den and loaded < count
        if load:
            loaded += 1
            out.append(t + 1)
        tokens = min(tokens + num - den * load, den + num - 1)
    return [c for c in out if c < cycles]


def _drive(ctx, dut, *, num=1, den=1, base=0, lines=16, count=0):
    for name, v in dict(num=num, den=den, base=base, lines=lines, count=count).items():
        ctx.set(getattr(dut, name), v)


def _run_gen(*, cycles: int, ready_p: float = 1.0, seed: int = 0, **ports):
    """Accepted (cycle, addr) and the stream-rule violations seen, and ``issued`` at the end."""
    dut = GemmReadGenerator(cfg=CFG)
    rng = random.Random(seed)
    got = {"acc": [], "broken": [], "issued": None}

    async def bench(ctx):
        _drive(ctx, dut, **ports)
        held = None              # (addr) presented but not accepted last cycle
        for t in range(cycles):
            ready = int(rng.random() < ready_p)
            ctx.set(dut.req.ready, ready)
            _, _, v, p = await ctx.tick().sample(dut.req.valid, dut.req.payload)
            # what was sampled is the state before this edge: cycle t's presentation
            if held is not None and (not v or int(p.addr) != held):
                got["broken"].append(t)
            if v and ready:
                assert int(p.op) == Op.READ and int(p.wf_id) == 0 and int(p.data) == 0
                got["acc"].append((t, int(p.addr)))
            held = int(p.addr) if v and not ready else None
        got["issued"] = ctx.get(dut.issued)

    run(dut, bench, deadline_cycles=cycles + 10)
    return got


@pytest.mark.parametrize("num,den", [(1, 1), (1, 3), (2, 5), (3, 7), (5, 8), (1, 511)])
def test_rate_is_exact(num, den):
    cycles = 3 * 511 + 40 if den == 511 else 40 * den + 7
    got = _run_gen(cycles=cycles, num=num, den=den, lines=200, count=10 ** 6)
    times = [t for t, _ in got["acc"]]
    assert times == model_accept_cycles(num, den, 10 ** 6, cycles)
    # steady state: exactly num READs in every window of den cycles after the first
    first = times[0]
    for w in range(3):
        lo = first + w * den
        assert sum(lo <= t < lo + den for t in times) == num, (num, den, w)
    assert got["issued"] == len(times)


def test_address_walk_wraps_and_count_stops():
    got = _run_gen(cycles=60, num=1, den=1, base=10, lines=5, count=12)
    assert [a for _, a in got["acc"]] == [10, 11, 12, 13, 14] * 2 + [10, 11]
    assert got["issued"] == 12


@pytest.mark.parametrize("ports", [dict(count=0), dict(lines=0, count=5), dict(num=0, count=5)],
                         ids=["count0", "lines0", "num0"])
def test_off_issues_nothing(ports):
    got = _run_gen(cycles=40, **{"num": 1, "den": 1, "base": 3, "lines": 4, **ports})
    assert got["acc"] == [] and got["issued"] == 0


@pytest.mark.parametrize("seed", [1, 2])
def test_backpressure_holds_the_request(seed):
    got = _run_gen(cycles=400, ready_p=0.4, seed=seed, num=2, den=3, base=100, lines=7,
                   count=50)
    assert got["broken"] == [], "a presented request changed before it was accepted"
    assert [a for _, a in got["acc"]] == [100 + i % 7 for i in range(50)]
    assert got["issued"] == 50


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_bad_parameters():
    with pytest.raises(ConfigError, match=r"GemmReadGenerator: cfg="):
        GemmReadGenerator(cfg={"line_bytes": 8})
    for bad in (0, 17, True, 2.0):
        with pytest.raises(ConfigError, match=r"GemmReadGenerator: credit_bits=.*\[1, 16\]"):
            GemmReadGenerator(cfg=CFG, credit_bits=bad)
    gc.collect()        # the half-built components warn when collected: here, not later


# ---- through a T3 unit: producer READs are discarded, host READs still answered -------

def test_unit_discards_producer_reads_and_answers_the_host():
    dut = T3Unit(cfg=CFG)
    rng = random.Random(5)
    n_prod, lines = 60, 20
    state = {"programmed": False, "host": [], "done": None}
    full = (1 << CFG.lanes) - 1
    program = regmap.program_writes(CFG, DeviceProgram(device=0, next_device=1, regions=()))

    async def control(ctx):
        await csr_write(ctx, dut, program)
        # host stores a known pattern, then producer READs and host READs interleave
        for a in range(lines):
            ctx.set(dut.host.valid, 1)
            ctx.set(dut.host.payload, {"op": Op.STORE, "addr": a, "mask": full, "data": 1000 + a})
            await ctx.tick().until(dut.host.ready)
        ctx.set(dut.host.valid, 0)
        state["programmed"] = True
        for a in range(lines):
            while rng.random() < 0.3:
                ctx.set(dut.host.valid, 0)
                await ctx.tick()
            ctx.set(dut.host.valid, 1)
            ctx.set(dut.host.payload, {"op": Op.READ, "addr": a, "mask": 0, "data": 0})
            await ctx.tick().until(dut.host.ready)
        ctx.set(dut.host.valid, 0)

    async def producer(ctx):
        while not state["programmed"]:
            await ctx.tick()
        for i in range(n_prod):
            ctx.set(dut.producer.valid, 1)
            ctx.set(dut.producer.payload, {"op": Op.READ, "addr": i % lines, "wf_id": 0, "data": 0})
            await ctx.tick().until(dut.producer.ready)
        ctx.set(dut.producer.valid, 0)

    async def host_sink(ctx):
        while len(state["host"]) < lines:
            ready = int(rng.random() < 0.6)
            ctx.set(dut.host_resp.ready, ready)
            _, _, v, p = await ctx.tick().sample(dut.host_resp.valid, dut.host_resp.payload)
            if v and ready:
                state["host"].append(int(p.data))
        ctx.set(dut.host_resp.ready, 0)
        for _ in range(100):
            await ctx.tick()
        state["done"] = ctx.get(dut.gemm_reads_done)
        state["irq"] = ctx.get(dut.irq)

    run(dut, control, producer, host_sink, deadline_cycles=3000)
    assert state["host"] == [1000 + a for a in range(lines)]
    assert state["done"] == n_prod
    assert state["irq"] == 0, "a producer READ must not raise bad_op any more"
