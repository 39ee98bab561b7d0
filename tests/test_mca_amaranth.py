"""Memory-controller arbitration in the track & trigger unit (Amaranth simulator).

A compute stream (producer requests, back to back) competes with a communication stream
(link arrivals, back to back) for the single memory port. The compute stream is either
the GEMM's stores alone or stores mixed with background GEMM operand READs (issue #5:
every other producer request a READ, as hw/env/readgen.py merged in front of the producer
port gives them). Stated margin: under MCA with starvation limit L, the compute stream
keeps at least (1 - 1/L) of the throughput it has alone, and every communication
request waits at most L - 1 cycles (ARB_STATUS); the plain round-robin policy halves the
compute stream's throughput. Each request on ``mem`` is also checked against the
``mem_lane`` sideband (lane 0 = compute, 1 = link)."""

import pytest

from hw.track_trigger import TrackTrigger
from contract import regmap
from contract.program import DeviceProgram
from hw.tracker import LANE_LINK, LANE_PRODUCER
from contract.spec import Op, T3Config
from tests.amaranth_util import csr_write, run

CFG = T3Config(line_bytes=8, mem_depth_lines=1024, regions=4, tracker_entries=16,
               ring_devices=2, mem_queue_depth=8, mca_queue_threshold=4)
N = 160
LIMIT = 8
COMPUTE_BASE, COMM_BASE = 0, 512
#: the compute stream's op for request i: stores only, or stores and GEMM READs mixed
COMPUTE_OPS = {"stores": lambda i: Op.STORE,
               "mixed": lambda i: Op.READ if i % 2 else Op.STORE}


def _writes(policy: int) -> list[tuple[int, int]]:
    prog = DeviceProgram(device=0, next_device=1, regions=())
    arb = regmap.reg(CFG, "ARB")
    f = {x.name: x for x in arb.fields}
    value = (policy << f["policy"].lsb) | (CFG.mca_queue_threshold << f["threshold"].lsb) \
        | (LIMIT << f["starve_limit"].lsb)
    return regmap.program_writes(CFG, prog) + [(arb.addr, value)]


def _run(policy: int, with_comm: bool, compute: str = "stores"):
    dut = TrackTrigger(cfg=CFG)
    op_of = COMPUTE_OPS[compute]
    seen = {"compute": [], "comm": [], "wait_max": None, "compute_ops": [], "bad_lane": []}
    cyc = {"n": 0}
    started = {"go": False}

    async def csr_then_go(ctx):
        await csr_write(ctx, dut, _writes(policy))
        started["go"] = True

    async def producer(ctx):
        while not started["go"]:
            await ctx.tick()
        for i in range(N):
            ctx.set(dut.producer.valid, 1)
            ctx.set(dut.producer.payload, {"op": op_of(i), "addr": COMPUTE_BASE + i, "wf_id": 0,
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
            _, _, v, p, lane = await ctx.tick().sample(dut.mem.valid, dut.mem.payload,
                                                        dut.mem_lane)
            cyc["n"] += 1
            if v:
                is_compute = p.addr < COMM_BASE
                (seen["compute"] if is_compute else seen["comm"]).append(cyc["n"])
                if is_compute:
                    seen["compute_ops"].append(int(p.op))
                if lane != (LANE_PRODUCER if is_compute else LANE_LINK):
                    seen["bad_lane"].append((int(p.addr), int(lane)))
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
    # every compute request reached memory in order with its own op (READs too), and
    # the sideband named the right lane for every request
    assert seen["compute_ops"] == [op_of(i) for i in range(N)]
    assert seen["bad_lane"] == []
    return {"compute_rate": (len(c) - 1) / (c[-1] - c[0]), "comm_done": len(seen["comm"]),
            "wait_max": seen["wait_max"]}


@pytest.fixture(scope="module", params=sorted(COMPUTE_OPS))
def compute(request):
    return request.param


@pytest.fixture(scope="module")
def alone(compute):
    return _run(1, with_comm=False, compute=compute)


def test_compute_alone_runs_at_one_request_per_cycle(alone):
    assert alone["compute_rate"] == pytest.approx(1.0)


def test_mca_keeps_compute_within_margin_and_bounds_comm_wait(alone, compute):
    mca = _run(1, with_comm=True, compute=compute)
    assert mca["compute_rate"] >= alone["compute_rate"] * (1 - 1 / LIMIT) - 0.01
    assert mca["comm_done"] == N                 # communication still completes
    assert mca["wait_max"] <= LIMIT - 1          # ... within the starvation bound
    assert mca["wait_max"] == LIMIT - 1          # and the bound is reached under contention


def test_plain_policy_shows_the_slowdown_mca_removes(alone, compute):
    plain = _run(0, with_comm=True, compute=compute)
    mca = _run(1, with_comm=True, compute=compute)
    assert plain["compute_rate"] <= 0.55 * alone["compute_rate"]
    assert plain["comm_done"] == N
    assert mca["compute_rate"] - plain["compute_rate"] >= 0.3
