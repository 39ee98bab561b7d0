"""TrackerTable in the Amaranth simulator: throughput, back-to-back hits, the table-full
stall path, fire ordering, every misuse flag. Expected fires come from
contract.program (Region.tile / threshold), not from the hardware."""

import gc
import random

import pytest

from contract import errors, latency
from hw.tracker import TrackerTable
from contract.program import Region, wf_id
from contract.regmap import region_values
from contract.spec import ConfigError, FireOp, Op, ProducerAction, T3Config
from tests.amaranth_util import collect, run, send
from verif.formal.mutants import TrackerFireRoomForAll

CFG = T3Config(line_bytes=8, mem_depth_lines=1024, regions=4, tracker_entries=16,
               wf_outer_bits=4, wf_inner_bits=4, count_bits=8)

# 6 rows x 5 lines, tiles 2 x 2 (clipped at the far edges): 3 x 3 = 9 tiles
REGION = Region(base=100, limit=100 + 6 * 8, producer=ProducerAction.TRACKED, update_contribs=2,
                update_fire=FireOp.UPDATE, store_contribs=1, store_fire=FireOp.STORE,
                pitch=8, outer_extent=6, inner_extent=5, tile_outer=2, tile_inner=2,
                tile_outer0=1, tile_inner0=2)


def set_regions(ctx, dut, regions):
    ctx.set(dut.regions, [region_values(CFG, regions[i] if i < len(regions) else None)
                          for i in range(CFG.regions)])


def tile_lines(region: Region, wf: int) -> list[int]:
    return list(region.tile(CFG, wf).addresses())


def all_tiles(region: Region) -> list[int]:
    return [wf_id(CFG, region.tile_outer0 + o, region.tile_inner0 + i)
            for o in range(region.tiles_outer) for i in range(region.tiles_inner)]


def req(addr, wf, *, phase=0, region=0, tracked=1, data=0):
    return {"mem": {"op": Op.STORE if phase else Op.UPDATE, "addr": addr, "mask": 0xF,
                    "data": data},
            "wf_id": wf, "region": region, "phase": phase, "tracked": tracked}


def lane_streams(region: Region, order: list[int], *, contribs: int):
    """Per lane, every line of every tile in ``order``; lane k carries contribution k."""
    lanes = [[], []]
    for wf in order:
        for c in range(contribs):
            for a in tile_lines(region, wf):
                lanes[c % 2].append(req(a, wf, data=(c % 2) << 16 | len(lanes[c % 2])))
    return lanes


def run_tracker(regions, lanes, *, seed, idle=0.0, stall=0.0, entries=CFG.tracker_entries,
                expect_fires=None, deadline=20000, after=None, lag=1):
    cfg = CFG.replace(tracker_entries=entries)
    dut = TrackerTable(cfg=cfg)
    rng = random.Random(seed)
    print(f"seed={seed}")
    mem, mem_t, fires, fire_t = [], [], [], []
    total = sum(len(l) for l in lanes)
    n_fires = len(expect_fires) if expect_fires is not None else 0
    state = {}

    async def setup_and_lane0(ctx):
        set_regions(ctx, dut, regions)
        await send(ctx, dut.req[0], lanes[0], rng, idle)

    async def lane1(ctx):
        await ctx.tick().repeat(lag)
        await send(ctx, dut.req[1], lanes[1], rng, idle)

    async def mem_sink(ctx):
        await collect(ctx, dut.mem, total, mem, rng, stall, times=mem_t)

    async def fire_sink(ctx):
        await collect(ctx, dut.fire, n_fires, fires, rng, stall, times=fire_t)
        while len(mem) < total:
            await ctx.tick()
        for _ in range(10):
            await ctx.tick()
        state.update({k: ctx.get(getattr(dut, k)) for k in
                      ("occupancy", "stall_cycles", "tracked_reqs", "fires", "busy")})
        state["err"] = ctx.get(dut.err)
        state["err_bits"] = int(ctx.get(dut.err.as_value()))
        state["err_key"] = ctx.get(dut.err_key)
        if after:
            await after(ctx, dut, state)

    run(dut, setup_and_lane0, lane1, mem_sink, fire_sink, deadline_cycles=deadline)
    assert len(mem) == total, f"only {len(mem)} of {total} requests reached memory"
    return dut, state, mem, mem_t, fires, fire_t


def check_fires(region, lanes, mem, mem_t, fires, fire_t, expect):
    keys = [(int(f.phase), int(f.wf_id)) for f in fires]
    assert sorted(keys) == sorted(expect), "fired tiles differ from the program's tiles"
    assert len(set(keys)) == len(keys), "a tile fired twice"
    # a tile fires only after the last of its requests was handed to memory
    for (phase, wf), t in zip(keys, fire_t):
        lines = set(tile_lines(region, wf))
        last = max(mt for p, mt in zip(mem, mem_t) if int(p.addr) in lines)
        assert t > last, f"tile {wf:#x} fired at {t}, before its last update at {last}"


def test_sustained_one_per_cycle_and_back_to_back_hits():
    # one lane, no backpressure: tiles of 2x2 lines with contribs 1 -> 4 back-to-back hits
    region = REGION.__class__(**{**REGION.__dict__, "update_contribs": 1})
    order = all_tiles(region)
    lanes = [lane_streams(region, order, contribs=1)[0], []]
    expect = [(0, wf) for wf in order]
    dut, st, mem, mem_t, fires, fire_t = run_tracker([region], lanes, seed=1, expect_fires=expect)
    check_fires(region, lanes, mem, mem_t, fires, fire_t, expect)
    n = len(lanes[0])
    assert mem_t[-1] - mem_t[0] == n - 1, "not one request per cycle"
    assert mem_t[0] == dut.latency + 1
    assert st["tracked_reqs"] == n and st["fires"] == len(order)
    assert st["occupancy"] == 0 and st["stall_cycles"] == 0 and st["err_bits"] == 0


@pytest.mark.parametrize("seed", [2, 3])
def test_two_lanes_random_backpressure(seed):
    rng = random.Random(seed)
    order = all_tiles(REGION)
    rng.shuffle(order)
    lanes = lane_streams(REGION, order, contribs=2)
    expect = [(0, wf) for wf in order]
    dut, st, mem, mem_t, fires, fire_t = run_tracker([REGION], lanes, seed=seed, idle=0.3,
                                                     stall=0.3, expect_fires=expect)
    check_fires(REGION, lanes, mem, mem_t, fires, fire_t, expect)
    assert st["occupancy"] == 0 and st["err_bits"] == 0
    # each lane's requests reach memory in their order
    for lane in lanes:
        want = [(r["mem"]["addr"], r["mem"]["data"]) for r in lane]
        ids = set(want)
        got = [(int(p.addr), int(p.data)) for p in mem if (int(p.addr), int(p.data)) in ids]
        assert got == want


def test_table_full_stall_path_loses_nothing():
    # 16 entries, 64 single-line tiles; lane 1 starts 40 cycles after lane 0 (same order),
    # so more tiles are live than entries and lane 0 stalls until lane 1 completes tiles.
    region = Region(base=0, limit=64, producer=ProducerAction.TRACKED, update_contribs=2,
                    update_fire=FireOp.UPDATE, pitch=8, outer_extent=8, inner_extent=8,
                    tile_outer=1, tile_inner=1)
    order = all_tiles(region)
    lanes = lane_streams(region, order, contribs=2)
    expect = [(0, wf) for wf in order]

    dut, st, mem, mem_t, fires, fire_t = run_tracker([region], lanes, seed=4,
                                                     entries=16, expect_fires=expect, lag=40)
    check_fires(region, lanes, mem, mem_t, fires, fire_t, expect)
    assert st["stall_cycles"] > 0, "the table never filled: the test did not test the stall path"
    assert st["occupancy"] == 0 and st["fires"] == 64
    assert st["stall_cycles"] >= 40 - 16 - 3


def _misuse(regions, lanes, flag, *, expect_key, n_fires=0, after=None):
    dut, st, *_ = run_tracker(regions, lanes, seed=5, expect_fires=[None] * n_fires, after=after)
    err = st["err"]
    flags = {name: int(getattr(err, name)) for name in ("tile_outside", "threshold_zero",
                                                         "count_over", "refire")}
    assert flags == {k: int(k == flag) for k in flags}
    assert (int(st["err_key"].wf_id), int(st["err_key"].phase)) == expect_key
    return st


def test_error_tile_outside_region():
    bad = wf_id(CFG, 0, 0)    # tile_outer0 = 1: outer index 0 is not in the region
    _misuse([REGION], [[req(100, bad)], []], "tile_outside", expect_key=(bad, 0))


def test_error_threshold_zero():
    region = REGION.__class__(**{**REGION.__dict__, "store_contribs": 0})
    wf = all_tiles(region)[0]
    _misuse([region], [[req(100, wf, phase=1)], []], "threshold_zero", expect_key=(wf, 1))


def test_error_refire_and_clear():
    region = REGION.__class__(**{**REGION.__dict__, "update_contribs": 1})
    wf = all_tiles(region)[0]
    lines = tile_lines(region, wf)
    stream = [req(a, wf) for a in lines] + [req(lines[0], wf)]

    async def clear(ctx, dut, st):
        ctx.set(dut.clear.refire, 1)
        await ctx.tick()
        ctx.set(dut.clear.refire, 0)
        await ctx.tick()
        st["after_clear"] = ctx.get(dut.err)

    st = _misuse([region], [stream, []], "refire", expect_key=(wf, 0), n_fires=1, after=clear)
    assert st["occupancy"] == 0, "a refire arrival must not allocate an entry"
    assert not any(int(getattr(st["after_clear"], f)) for f in
                   ("tile_outside", "threshold_zero", "count_over", "refire"))


def test_error_count_over():
    # the threshold drops under a live entry: 5 counts of 8, then contribs 2 -> 1 (threshold 4)
    region = REGION
    wf = all_tiles(region)[0]          # 2x2 tile, contribs 2: threshold 8
    lines = tile_lines(region, wf)
    lowered = REGION.__class__(**{**REGION.__dict__, "update_contribs": 1})   # threshold 4
    dut = TrackerTable(cfg=CFG)
    got = {}

    async def bench(ctx):
        set_regions(ctx, dut, [region])
        ctx.set(dut.mem.ready, 1)
        ctx.set(dut.fire.ready, 1)
        await send(ctx, dut.req[0], [req(a, wf) for a in lines + lines[:1]])
        for _ in range(5):
            await ctx.tick()
        set_regions(ctx, dut, [lowered])
        await send(ctx, dut.req[0], [req(lines[1], wf)])
        fired = 0
        for _ in range(6):
            _, _, v = await ctx.tick().sample(dut.fire.valid)
            fired += v
        got.update(err=ctx.get(dut.err), key=ctx.get(dut.err_key), fired=fired,
                   occ=ctx.get(dut.occupancy))

    run(dut, bench, deadline_cycles=200)
    assert got["err"].count_over == 1 and got["err"].refire == 0
    assert got["err"].tile_outside == 0 and got["err"].threshold_zero == 0
    assert got["key"].wf_id == wf and got["fired"] == 1 and got["occ"] == 0


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")   # built for properties
def test_properties_and_bad_params():
    t = TrackerTable(cfg=T3Config())
    assert t.entry_bits == 1 + 1 + 16 + 12
    assert t.storage_bits == 256 * 30
    assert (t.latency, t.fire_latency) == (latency.TRACKER, latency.TRACKER_FIRE) == (2, 3)
    assert t.history == 8
    # the error flags are the contract's, in register order; the probes are ports
    assert list(t.err.shape().members) == list(errors.flags_of("tracker"))
    assert set(t.signature.members["probe"].signature.members) == {"stall", "track", "hit", "key"}
    for bad in (0, 65, True, 2.0):
        with pytest.raises(ConfigError, match=rf"^TrackerTable: history={bad!r}: must be an "
                                              rf"integer in \[1, 64\]$"):
            TrackerTable(cfg=CFG, history=bad)
    with pytest.raises(ConfigError,
                       match=r"^TrackerTable: cfg=None: must be a contract\.spec\.T3Config$"):
        TrackerTable(cfg=None)
    del t
    gc.collect()      # Amaranth's elaboratables are reference cycles: gone while filtered


def test_full_table_deadlock_is_broken_and_flagged():
    """A 2-entry table holds tiles A and B, both waiting for their link contributions;
    the producer's next line needs a new tile C and the link's next line a new tile D,
    queued before A's and B's contributions: nothing could move. The link head goes to
    memory uncounted and the sticky `overflow` flag names D; then A and B complete."""
    cfg = CFG.replace(tracker_entries=2)
    tiles = all_tiles(REGION)
    a, b, c, d = tiles[0], tiles[1], tiles[3], tiles[4]
    producer = [req(x, w) for w in (a, b, c) for x in tile_lines(REGION, w)]
    link = [req(tile_lines(REGION, d)[0], d)] + \
        [req(x, w, data=1) for w in (a, b) for x in tile_lines(REGION, w)]
    dut = TrackerTable(cfg=cfg)
    fires, mem = [], []
    state = {}

    async def bench(ctx):
        set_regions(ctx, dut, [REGION])
        ctx.set(dut.fire.ready, 1)
        ctx.set(dut.mem.ready, 1)

    async def src(k, items):
        async def go(ctx):
            await ctx.tick().repeat(2)
            await send(ctx, dut.req[k], items)
        return go

    async def sink(ctx):
        for _ in range(400):
            _, _, fv, fp, mv = await ctx.tick().sample(dut.fire.valid, dut.fire.payload,
                                                        dut.mem.valid)
            if fv:
                fires.append(int(fp.wf_id))
            if mv:
                mem.append(1)
        state["err"] = ctx.get(dut.err)
        state["key"] = ctx.get(dut.err_key)

    async def p0(ctx):
        await ctx.tick().repeat(2)
        await send(ctx, dut.req[0], producer)

    async def p1(ctx):
        # the link starts once the producer has filled the table with A and B
        await ctx.tick().repeat(2 + len(tile_lines(REGION, a)) + len(tile_lines(REGION, b)) + 4)
        await send(ctx, dut.req[1], link)

    run(dut, bench, p0, p1, sink, deadline_cycles=1000)
    assert len(mem) == len(producer) + len(link)          # nothing lost, nothing stuck
    assert state["err"].overflow == 1
    assert int(state["key"].wf_id) == d
    assert fires[:2] == [a, b]                            # the live tiles completed


# the design before the fix (every tracked request waited for fire-register room) as the
# broken variant
@pytest.mark.parametrize("cls, passes", [(TrackerTable, True), (TrackerFireRoomForAll, False)],
                         ids=["design", "fire_room_for_all"])
def test_full_fire_register_holds_only_the_completing_request(cls, passes):
    # One lane, contribs 1, 2x2-line tiles. Tile A completes and its fire waits in the fire
    # register (fire.ready low). Tile B's first three lines do not complete B: they must
    # still reach memory (a link whose requests waited on the DMA closed a wait cycle
    # around the 4-device ring); B's fourth line completes B and must wait.
    region = REGION.__class__(**{**REGION.__dict__, "update_contribs": 1})
    a, b = all_tiles(region)[:2]
    stream = [req(x, a) for x in tile_lines(region, a)] + [req(x, b) for x in tile_lines(region, b)]
    dut = cls(cfg=CFG)
    release = 60                             # cycle at which the DMA takes the fires
    mem, fires = [], []

    async def driver(ctx):
        set_regions(ctx, dut, [region])
        await send(ctx, dut.req[0], stream)

    async def monitor(ctx):
        ctx.set(dut.mem.ready, 1)
        for cycle in range(release + 20):
            ctx.set(dut.fire.ready, int(cycle >= release))
            _, _, mv, mp, fv, fp = await ctx.tick().sample(dut.mem.valid, dut.mem.payload,
                                                           dut.fire.valid, dut.fire.payload)
            if mv:
                mem.append((cycle, int(mp.addr)))
            if fv and cycle >= release:
                fires.append(int(fp.wf_id))

    run(dut, driver, monitor, deadline_cycles=release + 40)
    lines_a, lines_b = tile_lines(region, a), tile_lines(region, b)
    held = [addr for cycle, addr in mem if cycle < release]
    if passes:
        assert held == lines_a + lines_b[:3], f"reached memory while the fire was held: {held}"
        assert [addr for _, addr in mem] == lines_a + lines_b and fires == [a, b]
    else:
        assert held == lines_a, "the broken variant let a request past a full fire register"
