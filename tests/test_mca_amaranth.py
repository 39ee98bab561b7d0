"""Memory-controller arbitration in the track & trigger unit (Amaranth simulator).

A compute stream (producer stores, back to back) competes with a communication stream
(link arrivals, back to back) for the single memory port. Stated margin: under MCA with
starvation limit L, the compute stream keeps at least (1 - 1/L) of the throughput it
has alone, and every communication request waits at most L - 1 cycles (ARB_STATUS);
the plain round-robin policy halves the compute stream's throughput."""

import pytest

from hw.track_trigger import TrackTrigger
from sim_models import regmap
from sim_models.program import DeviceProgram
from sim_models.spec import Op, T3Config
from tests.amaranth_util import run

CFG = T3Config(line_bytes=8, mem_depth_lines=1024, regions=4, tracker_entries=16,
               ring_devices=2, mem_queue_depth=8, mca_queue_threshold=4)
N = 160
LIMIT = 8
COMPUTE_BASE, COMM_BASE = 0, 512


def _writes(policy: int) -> list[tuple[int, int]]:
    prog = DeviceProgram(device=0, next_device=1, regions=())
    arb = regmap.reg(CFG, "ARB")
    f = {x.name: x for x in arb.fields}
    value = (policy << f["policy"].lsb) | (CFG.mca_queue_threshold << f["threshold"].lsb) \
        | (LIMIT << f["starve_limit"].lsb)
    return regmap.program_writes(CFG, prog) + [(arb.addr, value)]


def _run(policy: int, with_comm: bool):
    dut = TrackTrigger(cfg=CFG)
    seen = {"compute": [], "comm": [], "wait_max": None}
    cyc = {"n": 0}
    started = {"go": False}

    async def csr_then_go(ctx):
        for addr, val in _writes(policy):
            ctx.set(dut.csr_req.valid, 1)
            ctx.set(dut.csr_req.payload, {"addr": addr, "write": 1, "wdata": val})
            ctx.set(dut.csr_resp.ready, 1)
            await ctx.tick().until(dut.csr_req.ready)
        ctx.set(dut.csr_req.valid, 0)
        started["go"] = True

    async def producer(ctx):
        while not started["go"]:
            await ctx.tick()
        for i in range(N):
            ctx.set(dut.producer.valid, 1)
            ctx.set(dut.producer.payload, {"op": Op.STORE, "addr": COMPUTE_BASE + i, "wf_id": 0,
                                           "data": i})
            await ctx.tick().until(dut.producer.ready)
        ctx.set(dut.producer.valid, 0)

    async def ingress(ctx):
        if not with_comm:
            return
        while not started["go"]:
            await ctx.tick()
        for i in range(N):
            ctx.set(dut.ingress.valid, 1)
            ctx.set(dut.ingress.payload, {"op": Op.STORE, "dest": 0, "addr": COMM_BASE + i,
                                          "wf_id": 0, "data": i})
            await ctx.tick().until(dut.ingress.ready)
        ctx.set(dut.ingress.valid, 0)

    async def memory(ctx):
        ctx.set(dut.mem.ready, 1)
        while not started["go"]:
            await ctx.tick()
        while len(seen["compute"]) + len(seen["comm"]) < N * (2 if with_comm else 1):
            _, _, v, p = await ctx.tick().sample(dut.mem.valid, dut.mem.payload)
            cyc["n"] += 1
            if v:
                (seen["compute"] if p.addr < COMM_BASE else seen["comm"]).append(cyc["n"])
        # read the arbiter status back over the bus
        ctx.set(dut.csr_req.valid, 1)
        ctx.set(dut.csr_req.payload, {"addr": regmap.reg(CFG, "ARB_STATUS").addr, "write": 0, "wdata": 0})
        ctx.set(dut.csr_resp.ready, 1)
        await ctx.tick().until(dut.csr_req.ready)
        ctx.set(dut.csr_req.valid, 0)
        _, _, rv, rd = await ctx.tick().sample(dut.csr_resp.valid, dut.csr_resp.payload)
        while not rv:
            _, _, rv, rd = await ctx.tick().sample(dut.csr_resp.valid, dut.csr_resp.payload)
        seen["wait_max"] = int(rd.rdata) & ((1 << 17) - 1)

    run(dut, csr_then_go, producer, ingress, memory, deadline_cycles=20_000)
    c = seen["compute"]
    return {"compute_rate": (len(c) - 1) / (c[-1] - c[0]), "comm_done": len(seen["comm"]),
            "wait_max": seen["wait_max"]}


@pytest.fixture(scope="module")
def alone():
    return _run(1, with_comm=False)


def test_compute_alone_runs_at_one_request_per_cycle(alone):
    assert alone["compute_rate"] == pytest.approx(1.0)


def test_mca_keeps_compute_within_margin_and_bounds_comm_wait(alone):
    mca = _run(1, with_comm=True)
    assert mca["compute_rate"] >= alone["compute_rate"] * (1 - 1 / LIMIT) - 0.01
    assert mca["comm_done"] == N                 # communication still completes
    assert mca["wait_max"] <= LIMIT - 1          # ... within the starvation bound
    assert mca["wait_max"] == LIMIT - 1          # and the bound is reached under contention


def test_plain_policy_shows_the_slowdown_mca_removes(alone):
    plain = _run(0, with_comm=True)
    mca = _run(1, with_comm=True)
    assert plain["compute_rate"] <= 0.55 * alone["compute_rate"]
    assert plain["comm_done"] == N
    assert mca["compute_rate"] - plain["compute_rate"] >= 0.3
