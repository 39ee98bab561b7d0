"""TrackerTable in the Amaranth simulator: throughput (1 request per cycle on hits,
back-to-back hits on one entry), evictions and fills under random orders and stalls with
the table's counters against the cache model (sim_models.tracker_cache), fire ordering,
fire slots, every misuse flag. Expected fires come from contract.program (Region.tile /
threshold), not from the hardware."""

import gc
import random

import pytest

from contract import errors, latency
from hw.tracker import FIRE_SLOTS, TrackerTable
from contract.program import Region, wf_id
from contract.regmap import region_values
from contract.spec import ConfigError, FireOp, Op, ProducerAction, T3Config
from sim_models.tracker_cache import TrackerCacheModel
from tests.amaranth_util import collect, run, send
from verif.formal.mutants import TrackerIgnoresFireSlots

CFG = T3Config(line_bytes=8, mem_depth_lines=1024, regions=4, tracker_entries=16,
               tracker_ways=4, wf_outer_bits=4, wf_inner_bits=4, count_bits=8)

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
                expect_fires=None, deadline=20000, after=None, lag=1, cfg=None):
    cfg = cfg or CFG.replace(tracker_entries=entries)
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
                      ("occupancy", "stall_cycles", "busy") + TrackerTable.COUNTERS})
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


def model_counts(cfg, region, lanes, mem) -> TrackerCacheModel:
    """The cache model fed with the tracked requests in the order they reached memory."""
    by_id = {(r["mem"]["addr"], r["mem"]["data"]): r for lane in lanes for r in lane}
    model = TrackerCacheModel(cfg)
    for p in mem:
        r = by_id[(int(p.addr), int(p.data))]
        if r["tracked"]:
            wf, phase = r["wf_id"], r["phase"]
            model.access(region.tile(cfg, wf).origin, phase,
                         region.threshold(cfg, wf, bool(phase)))
    return model


def check_counters(st, model):
    got = {k: st[k] for k in ("hits", "misses", "fills", "spills", "fires")}
    assert got == model.counts, f"RTL counters {got} != cache model {model.counts}"
    assert st["tracked_reqs"] == model.counts["hits"] + model.counts["misses"]


def test_sustained_one_per_cycle_and_back_to_back_hits():
    # one lane, no backpressure: one 4 x 4 tile with contribs 2, so 32 requests to one
    # entry back to back (the first a miss), then every 2 x 2 tile of REGION (contribs 1):
    # a miss costs TRACKER_MISS cycles, a hit none
    big = REGION.__class__(**{**REGION.__dict__, "base": 400, "limit": 400 + 4 * 8,
                              "outer_extent": 4, "inner_extent": 4, "tile_outer": 4,
                              "tile_inner": 4, "tile_outer0": 0, "tile_inner0": 0})
    small = REGION.__class__(**{**REGION.__dict__, "update_contribs": 1})
    wf0 = wf_id(CFG, 0, 0)
    stream = [req(a, wf0, region=1, data=c << 8 | a) for c in range(2) for a in tile_lines(big, wf0)]
    order = all_tiles(small)
    stream += lane_streams(small, order, contribs=1)[0]
    expect = [(0, wf0)] + [(0, wf) for wf in order]
    dut, st, mem, mem_t, fires, fire_t = run_tracker([small, big], [stream, []], seed=1,
                                                     expect_fires=expect)
    assert sorted((int(f.phase), int(f.wf_id)) for f in fires) == sorted(expect)
    assert mem_t[0] == dut.latency + dut.miss_latency + 1
    assert mem_t[31] - mem_t[0] == 31, "back-to-back hits on one entry: not one per cycle"
    n = len(stream)
    misses = 1 + len(order)
    assert mem_t[-1] - mem_t[0] == n - 1 + (misses - 1) * dut.miss_latency
    assert st["tracked_reqs"] == n and st["fires"] == len(expect)
    assert (st["hits"], st["misses"], st["fills"], st["spills"]) == (n - misses, misses, misses, 0)
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
    check_counters(st, model_counts(CFG, REGION, lanes, mem))
    # each lane's requests reach memory in their order
    for lane in lanes:
        want = [(r["mem"]["addr"], r["mem"]["data"]) for r in lane]
        ids = set(want)
        got = [(int(p.addr), int(p.data)) for p in mem if (int(p.addr), int(p.data)) in ids]
        assert got == want


# 128 single-line tiles over an 8 x 16 region; two contributions per line
MANY = Region(base=0, limit=128, producer=ProducerAction.TRACKED, update_contribs=2,
              update_fire=FireOp.UPDATE, pitch=16, outer_extent=8, inner_extent=16,
              tile_outer=1, tile_inner=1)


@pytest.mark.parametrize("seed, entries, ways, lag, idle, stall", [
    (4, 16, 4, 60, 0.0, 0.0),    # lane 1 a chunk behind lane 0: every tile spills once
    (5, 16, 2, 60, 0.3, 0.3),    # 2-way, random idle and backpressure
    (6, 16, 1, 40, 0.2, 0.4),    # direct mapped
    (7, 16, 16, 80, 0.1, 0.1),   # one fully associative set
    (8, 12, 4, 60, 0.2, 0.2),    # 3 sets: not a power of two
])
def test_many_live_tiles_evict_and_fill_without_loss(seed, entries, ways, lag, idle, stall):
    # 128 tiles against 12-16 entries: up to ~lag tiles live at once, far more than the
    # table; nothing stalls, nothing is lost, fires exactly once after the last update,
    # and the RTL's hits / misses / fills / spills are the cache model's for the order
    # the requests reached memory
    rng = random.Random(seed)
    order = all_tiles(MANY)
    rng.shuffle(order)
    lanes = lane_streams(MANY, order, contribs=2)
    expect = [(0, wf) for wf in order]
    cfg = CFG.replace(tracker_entries=entries, tracker_ways=ways)
    dut, st, mem, mem_t, fires, fire_t = run_tracker([MANY], lanes, seed=seed, idle=idle,
                                                     stall=stall, expect_fires=expect, lag=lag,
                                                     cfg=cfg, deadline=40000)
    check_fires(MANY, lanes, mem, mem_t, fires, fire_t, expect)
    model = model_counts(cfg, MANY, lanes, mem)
    check_counters(st, model)
    assert st["spills"] > 0, "the table never overflowed: the test did not test eviction"
    assert model.peak_live > cfg.tracker_entries
    assert st["occupancy"] == 0 and st["err_bits"] == 0
    if stall == 0:     # tracked heads wait only for fire slots (the DMA behind)
        assert st["stall_cycles"] == 0



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
    cfg = T3Config()
    t = TrackerTable(cfg=cfg)
    # a way: valid + backing-counter index {origin line, phase} + count
    assert cfg.tracker_counter_slots == 2 * cfg.mem_depth_lines == 32768
    assert t.entry_bits == 1 + (14 + 1) + 12
    assert t.storage_bits == 256 * 28
    assert t.backing_bits == 32768 * 12
    assert (cfg.tracker_sets, cfg.tracker_assoc) == (64, 4)
    assert (t.latency, t.fire_latency, t.miss_latency) == \
        (latency.TRACKER, latency.TRACKER_FIRE, latency.TRACKER_MISS) == (4, 5, 1)
    assert t.history == 8
    # the error flags are the contract's, in register order; the probes are ports
    assert list(t.err.shape().members) == list(errors.flags_of("tracker"))
    assert "overflow" not in t.err.shape().members
    assert set(t.signature.members["probe"].signature.members) == {"stall", "track", "hit",
                                                                   "spill", "key"}
    for bad in (0, 65, True, 2.0):
        with pytest.raises(ConfigError, match=rf"^TrackerTable: history={bad!r}: must be an "
                                              rf"integer in \[1, 64\]$"):
            TrackerTable(cfg=CFG, history=bad)
    with pytest.raises(ConfigError,
                       match=r"^TrackerTable: cfg=None: must be a contract\.spec\.T3Config$"):
        TrackerTable(cfg=None)
    del t
    gc.collect()      # Amaranth's elaboratables are reference cycles: gone while filtered


def test_error_counter_range():
    # 64 backing counters: tiles whose first line is >= 32 have none. REGION starts at
    # line 100: the request is applied to memory, not counted, the flag names it; a tile
    # below line 32 in another region still counts and fires
    cfg = CFG.replace(tracker_counters=64)
    low = Region(base=0, limit=8, producer=ProducerAction.TRACKED, update_contribs=1,
                 update_fire=FireOp.UPDATE, pitch=8, outer_extent=1, inner_extent=2,
                 tile_outer=1, tile_inner=2)
    wf = all_tiles(REGION)[0]
    low_wf = all_tiles(low)[0]
    stream = [req(100, wf)] + [req(a, low_wf, region=1, data=7) for a in (0, 1)]
    dut, st, mem, *_ = run_tracker([REGION, low], [stream, []], seed=8, expect_fires=[None],
                                   cfg=cfg)
    assert len(mem) == 3
    assert int(st["err"].counter_range) == 1 and st["err_bits"] == 1 << list(
        errors.flags_of("tracker")).index("counter_range")
    assert (int(st["err_key"].wf_id), int(st["err_key"].phase), int(st["err_key"].region)) \
        == (wf, 0, 0)
    assert st["tracked_reqs"] == 2 and st["fires"] == 1 and st["occupancy"] == 0


# fire slots: with the DMA not taking fires, tracked requests flow until the fire queue
# is full, then tracked heads wait (stall_cycles) while untracked DMA-lane READs still
# pass; once the DMA takes them every fire arrives. The broken variant that grants
# tracked heads without a free slot pushes fires into a full queue: they are lost.
@pytest.mark.parametrize("cls, passes", [(TrackerTable, True), (TrackerIgnoresFireSlots, False)],
                         ids=["design", "ignores_fire_slots"])
def test_fire_slots_hold_tracked_heads_not_dma_reads(cls, passes):
    region = MANY.__class__(**{**MANY.__dict__, "update_contribs": 1})
    tiles = all_tiles(region)[:FIRE_SLOTS + 4]          # one line each: every request fires
    stream = [req(tile_lines(region, w)[0], w) for w in tiles]
    dma = [req(500 + i, 0, tracked=0, data=i) for i in range(20)]
    dut = cls(cfg=CFG)
    release = 80
    mem, fires = [], []
    state = {}

    async def driver(ctx):
        set_regions(ctx, dut, [region])
        await send(ctx, dut.req[0], stream)

    async def dma_lane(ctx):
        await ctx.tick().repeat(10)
        await send(ctx, dut.req[2], dma)

    async def monitor(ctx):
        ctx.set(dut.mem.ready, 1)
        for cycle in range(release + 60):
            ctx.set(dut.fire.ready, int(cycle >= release))
            _, _, mv, mp, fv, fp = await ctx.tick().sample(dut.mem.valid, dut.mem.payload,
                                                           dut.fire.valid, dut.fire.payload)
            if mv:
                mem.append((cycle, int(mp.addr)))
            if fv and cycle >= release:
                fires.append(int(fp.wf_id))
        state.update(stall=ctx.get(dut.stall_cycles), fired=ctx.get(dut.fires))

    run(dut, driver, dma_lane, monitor, deadline_cycles=release + 80)
    tracked_before = [a for c, a in mem if c < release and a < 500]
    dma_before = [a for c, a in mem if c < release and a >= 500]
    assert dma_before == [500 + i for i in range(20)], "a DMA READ waited behind the fire queue"
    if passes:
        assert len(tracked_before) == FIRE_SLOTS, tracked_before
        assert state["stall"] > 0
        assert fires == tiles and state["fired"] == len(tiles)
    else:
        assert len(tracked_before) == len(tiles)
        assert len(fires) < len(tiles), "the broken variant lost no fire"
