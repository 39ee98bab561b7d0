"""AddressMap in the Amaranth simulator: classification of producer requests and link
arrivals against contract.program (DeviceProgram.region_of, Region.translate), with
random idle cycles and backpressure; producer READs (background GEMM traffic) local and
untracked whatever the region; error flags for out-of-range addresses and link READs."""

import random

import pytest

from hw.addrmap import AddressMap
from contract import latency
from contract.program import DeviceProgram, Region
from contract.regmap import region_values
from contract.spec import ConfigError, Op, ProducerAction, T3Config
from tests.amaranth_util import collect, run, send

CFG = T3Config(line_bytes=8, mem_depth_lines=200, regions=4, wf_outer_bits=4, wf_inner_bits=4,
               count_bits=8, ring_devices=4)
PROG = DeviceProgram(device=1, next_device=3, regions=(
    Region(base=10, limit=40, producer=ProducerAction.TRACKED, update_contribs=2, store_contribs=1),
    Region(base=40, limit=60, producer=ProducerAction.REMOTE, remote_base=120, store_contribs=1),
    Region(base=80, limit=100, producer=ProducerAction.LOCAL, update_contribs=0, store_contribs=0),
    Region(base=100, limit=130, producer=ProducerAction.LOCAL, update_contribs=1),
))


def model(prog, reqs, *, ingress: bool):
    """Expected (local, remote) outputs of one lane."""
    local, remote = [], []
    for q in reqs:
        i, r = prog.region_of(q["addr"])
        is_store = q["op"] == Op.STORE
        is_read = q["op"] == Op.READ
        if q["addr"] >= CFG.mem_depth_lines or (ingress and is_read):
            continue
        if not ingress and is_read:
            r = None          # a producer READ: local, untracked, whatever the region
        if not ingress and r is not None and r.producer == ProducerAction.REMOTE:
            remote.append({"op": q["op"], "dest": prog.next_device,
                           "addr": r.translate(q["addr"], r.remote_base), "wf_id": q["wf_id"],
                           "data": q["data"]})
            continue
        if ingress:
            tracked = r is not None and r.contribs(is_store) > 0
        else:
            tracked = r is not None and r.producer == ProducerAction.TRACKED
        local.append({"mem": {"op": q["op"], "addr": q["addr"], "mask": 0xF, "data": q["data"]},
                      "wf_id": q["wf_id"], "region": i if i is not None else 0,
                      "phase": int(is_store), "tracked": int(tracked)})
    return local, remote


def random_reqs(rng, n, *, ingress):
    ops = [Op.STORE, Op.UPDATE] + ([] if ingress else [Op.READ])
    out = []
    for k in range(n):
        q = {"op": rng.choice(ops), "addr": rng.randrange(0, CFG.mem_depth_lines),
             "wf_id": rng.randrange(256), "data": rng.getrandbits(64)}
        if ingress:
            q["dest"] = PROG.device
        out.append(q)
    return out


def _fields(p, names):
    return {k: int(getattr(p, k)) for k in names}


def _tracked(p):
    """A sampled tracked request as the model's dict (the memory request nested)."""
    return {"mem": _fields(p.mem, ("op", "addr", "mask", "data")),
            **_fields(p, ("wf_id", "region", "phase", "tracked"))}


@pytest.mark.parametrize("seed", [21, 22])
def test_classification_random(seed):
    rng = random.Random(seed)
    print(f"seed={seed}")
    prod = random_reqs(rng, 150, ingress=False)
    ingr = random_reqs(rng, 150, ingress=True)
    l0, rem = model(PROG, prod, ingress=False)
    l1, _ = model(PROG, ingr, ingress=True)
    dut = AddressMap(cfg=CFG)
    got = [[], []]
    got_rem = []
    st = {}

    async def src_prod(ctx):
        ctx.set(dut.regions, [region_values(CFG, PROG.regions[i]) for i in range(4)])
        ctx.set(dut.next_device, PROG.next_device)
        ctx.set(dut.enable, 1)
        await send(ctx, dut.producer, prod, rng, 0.3)

    async def src_ingr(ctx):
        await send(ctx, dut.ingress, ingr, rng, 0.3)

    async def sink0(ctx):
        await collect(ctx, dut.local[0], len(l0), got[0], rng, 0.3)

    async def sink1(ctx):
        await collect(ctx, dut.local[1], len(l1), got[1], rng, 0.3)

    async def sink_rem(ctx):
        await collect(ctx, dut.remote, len(rem), got_rem, rng, 0.3)
        for _ in range(400):
            await ctx.tick()
        st.update(err=int(ctx.get(dut.err.as_value())), p=ctx.get(dut.producer_reqs),
                  i=ctx.get(dut.ingress_reqs), r=ctx.get(dut.remote_sent))

    run(dut, src_prod, src_ingr, sink0, sink1, sink_rem, deadline_cycles=5000)
    assert [_tracked(p) for p in got[0]] == l0
    assert [_tracked(p) for p in got[1]] == l1
    assert [_fields(p, ("op", "dest", "addr", "wf_id", "data")) for p in got_rem] == rem
    assert st == {"err": 0, "p": 150, "i": 150, "r": len(rem)}


@pytest.mark.parametrize("lane,flag,req", [
    (lane, "addr_range", {"op": op, "addr": 230}) for lane in ("producer", "ingress")
    for op in (Op.UPDATE, Op.READ)] + [("ingress", "bad_op", {"op": Op.READ, "addr": 15})])
def test_errors_consume_and_flag(lane, flag, req):
    dut = AddressMap(cfg=CFG)
    got = {}
    good = {"op": Op.STORE, "addr": 90, "wf_id": 0, "data": 5}

    async def bench(ctx):
        ctx.set(dut.regions, [region_values(CFG, PROG.regions[i]) for i in range(4)])
        ctx.set(dut.enable, 1)
        port = getattr(dut, lane)
        await send(ctx, port, [{**req, "wf_id": 0, "data": 1}, good])
        out = dut.local[0 if lane == "producer" else 1]
        ctx.set(out.ready, 1)
        seen = []
        for _ in range(5):
            _, _, v, p = await ctx.tick().sample(out.valid, out.payload)
            if v:
                seen.append(int(p.mem.addr))
        got.update(err=ctx.get(dut.err), addr=ctx.get(dut.err_addr), ing=ctx.get(dut.err_ingress),
                   seen=seen)
        ctx.set(getattr(dut.clear, flag), 1)
        await ctx.tick()
        ctx.set(getattr(dut.clear, flag), 0)
        got["after"] = int(ctx.get(dut.err.as_value()))

    run(dut, bench, deadline_cycles=100)
    assert got["seen"] == [90], "the bad request must be consumed and not applied"
    assert {"addr_range": got["err"].addr_range, "bad_op": got["err"].bad_op} == \
        {"addr_range": int(flag == "addr_range"), "bad_op": int(flag == "bad_op")}
    assert got["addr"] == req["addr"] and got["ing"] == int(lane == "ingress")
    assert got["after"] == 0


def test_producer_read_is_local_untracked_in_every_region():
    """A producer READ (background GEMM operand traffic) goes to ``local[0]`` untracked in
    a TRACKED, a REMOTE, a LOCAL region and outside every region; nothing goes remote and
    no flag is raised (the same READ from the link is ``bad_op``: test above)."""
    dut = AddressMap(cfg=CFG)
    addrs = [15, 45, 90, 150]              # TRACKED, REMOTE, LOCAL, no region
    got = {"local": [], "remote": 0}

    async def bench(ctx):
        ctx.set(dut.regions, [region_values(CFG, PROG.regions[i]) for i in range(4)])
        ctx.set(dut.next_device, PROG.next_device)
        ctx.set(dut.enable, 1)
        ctx.set(dut.local[0].ready, 1)
        ctx.set(dut.remote.ready, 1)
        await send(ctx, dut.producer, [{"op": Op.READ, "addr": a, "wf_id": 3, "data": 0}
                                       for a in addrs])
        for _ in range(5):
            await ctx.tick()
        got.update(err=int(ctx.get(dut.err.as_value())), reqs=ctx.get(dut.producer_reqs),
                   sent=ctx.get(dut.remote_sent))

    async def watch(ctx):
        for _ in range(15):
            _, _, lv, lp, rv = await ctx.tick().sample(dut.local[0].valid, dut.local[0].payload,
                                                      dut.remote.valid)
            if lv:
                got["local"].append((int(lp.mem.op), int(lp.mem.addr), int(lp.tracked),
                                     int(lp.mem.mask)))
            got["remote"] += int(rv)

    run(dut, bench, watch, deadline_cycles=40)
    assert got["local"] == [(Op.READ, a, 0, 0xF) for a in addrs]
    assert got["remote"] == 0 and got["sent"] == 0
    assert got["err"] == 0 and got["reqs"] == len(addrs)


@pytest.mark.parametrize("lane", ["producer", "ingress"])
def test_latency_is_the_contracts(lane):
    """A request accepted in cycle t is on its lane's output in cycle t + ``latency`` =
    contract.latency.ADDRMAP."""
    dut = AddressMap(cfg=CFG)
    stamps = {}

    async def bench(ctx):
        ctx.set(dut.regions, [region_values(CFG, PROG.regions[i]) for i in range(4)])
        ctx.set(dut.enable, 1)
        out = dut.local[0 if lane == "producer" else 1]
        ctx.set(out.ready, 1)
        src = getattr(dut, lane)
        ctx.set(src.valid, 1)
        ctx.set(src.payload, {"op": Op.STORE, "addr": 90, "wf_id": 0, "data": 5})
        await ctx.tick().until(src.ready)               # accepted at the edge ending cycle 0
        ctx.set(src.valid, 0)
        for cycle in range(1, 5):
            _, _, v = await ctx.tick().sample(out.valid)
            if v:
                stamps["out"] = cycle                 # valid in the cycle ending here
                break

    run(dut, bench, deadline_cycles=20)
    assert stamps["out"] == dut.latency == latency.ADDRMAP


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_disabled_accepts_nothing_and_bad_cfg():
    dut = AddressMap(cfg=CFG)
    got = {}

    async def bench(ctx):
        ctx.set(dut.producer.valid, 1)
        ctx.set(dut.ingress.valid, 1)
        for _ in range(3):
            await ctx.tick()
        got["ready"] = (ctx.get(dut.producer.ready), ctx.get(dut.ingress.ready))

    run(dut, bench, deadline_cycles=10)
    assert got["ready"] == (0, 0)
    with pytest.raises(ConfigError, match="cfg"):
        AddressMap(cfg={"line_bytes": 8})
