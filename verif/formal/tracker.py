"""Formal harness of the TrackerTable on a reduced configuration: :data:`CACHE` = TINY
with a table of 2 sets x 1 way (every pair of tiles of one set evicts each other), 2-bit
counts, 4 WF tiles of region 0 in 2 phases (8 tiles over 2 ways: evictions and fills all
the time), a backing store of 32 counters, a fired-key history of 2.

Observation without reaching into the block: the harness ASSUMES that every request's
``data`` carries a tag -- lane (2 bits), per-lane sequence number mod 8 (3 bits), and a
copy of its key (wf_id, phase, tracked). The tracker never looks at ``data``, so this
loses no behaviour, and the tag on ``mem`` says which request was handed to memory. The
block's own event counters say what it did with it: ``tracked_reqs`` steps when the
transfer was counted, ``fires`` when it completed a tile (both counted when the request
is handed to memory), ``spills``/``fills`` when L evicted / filled.

Assumed: stable region 0, programmed as contract.program.Region.validate allows
(:func:`valid_region`; requests name region 0), stable arbitration registers, input
streams obey valid/ready, DMA-lane requests are untracked, no counter clear, no reset.
``clear_history``/``clear`` and ``queue_level`` are free (history cleared only while
``mem`` is not stalled -- see verif/formal/streams.py for why).

Proved (all BMC, bounded: the table and the backing store are memories whose unreachable
contents defeat k-induction; depths in :data:`PROOFS`):
  * no request lost, duplicated or reordered: per lane, accepted - emitted is in
    [0, :data:`PER_LANE_IN_FLIGHT`] and every request on ``mem`` carries the next
    sequence number of its lane;
  * no lost update and fires exactly once, through evictions and fills, for a symbolic
    key K (any (wf_id, phase), chosen by the solver): the counted requests of K since its
    last fire stay below T(K) (the tile's threshold, recomputed here from the region), a
    fire of K happens exactly on the T(K)-th counted request (so once, never early, never
    late: a count lost in a spill or counted twice would move it), every fire is caused
    by a counted request, and ``count_over`` never rises;
  * fires are never lost: ``fire.valid`` is high exactly while fewer fires were taken
    than pushed, and at most ``FIRE_SLOTS`` wait; every fire of K leaves with K's key;
  * bounded liveness (``mem.ready`` and ``fire.ready`` high, ``starve_limit`` <= 3):
    while any lane holds a request, ``mem`` transfers something at least every
    :data:`PROGRESS_BOUND` cycles -- no wait for table entries exists any more.
Covers: a fire, a spill, K filled back from the backing store and then fired.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cat, Cover, Module, Mux, ResetSignal, Signal, Value
from amaranth.lib import wiring

from contract import latency
from contract.spec import CONTRIB_BITS
from hw.tracker import FIRE_SLOTS, LANE_DMA, LANES, TrackerTable

from .mutants import TrackerFiresEarly, TrackerIgnoresFireSlots, TrackerLosesSpill
from .streams import TINY, StreamRulesHarness, pass_through, block_rules, prop

__all__ = ["TrackerHarness", "CHECKS", "PROGRESS_BOUND", "tile_threshold", "valid_region",
           "CACHE", "PROOFS", "MUTANTS", "SUITE_SKIP", "KNOWN_BUGS"]

#: the harness's configuration: 2 sets x 1 way, so tiles evict each other
CACHE = TINY.replace(tracker_ways=1)
SEQ_BITS = 3            # per-lane sequence tag (in flight per lane <= 4 < 8)
PER_LANE_IN_FLIGHT = 4  # the lane's two geometry stages, L and O
STARVE_MAX = 3          # liveness: starve_limit assumed <= this
#: liveness bound (cycles without a mem transfer while a request must move): lane
#: pipeline (2) + MCA starvation wait (<= STARVE_MAX) + L with a miss + O + hand-over
PROGRESS_BOUND = 2 + STARVE_MAX + 1 + latency.TRACKER_MISS + 1 + 1


def _tag_fields(cfg):
    """(name, width) of the tag in the low bits of ``data``."""
    return [("lane", 2), ("seq", SEQ_BITS), ("wf_id", cfg.wf_id_bits), ("phase", 1),
            ("tracked", 1)]


def tag_bits(cfg) -> int:
    return sum(w for _, w in _tag_fields(cfg))


def _tag(data, cfg) -> dict:
    out, lsb = {}, 0
    for name, width in _tag_fields(cfg):
        out[name] = data[lsb:lsb + width]
        lsb += width
    return out


def tile_threshold(m: Module, cfg, region, wf_id, phase) -> tuple[Signal, Signal]:
    """(inside, T): whether WF tile ``wf_id`` lies in ``region`` and its threshold
    rows x row_lines x contribs -- the program's formula (contract.program.Region.tile),
    written independently of hw.addrmap's pipelined version. The clipped sizes are
    computed at full width and only then narrowed (they never exceed the tile size)."""
    wide = cfg.addr_bits + 2
    dims = []
    for idx, first, tile, extent in (
            (wf_id[cfg.wf_inner_bits:], region.tile_outer0, region.tile_outer, region.outer_extent),
            (wf_id[:cfg.wf_inner_bits], region.tile_inner0, region.tile_inner, region.inner_extent)):
        off, left = Signal(wide), Signal(wide)
        m.d.comb += [off.eq((idx - first) * tile), left.eq(extent - off)]
        size = Signal(cfg.count_bits)
        m.d.comb += size.eq(Mux(left < tile, left, tile))
        dims.append(((idx >= first) & (off < extent), size))
    inside = Signal()
    m.d.comb += inside.eq(dims[0][0] & dims[1][0])
    contribs = Mux(phase, region.store_contribs, region.update_contribs)
    thr = Signal(2 * cfg.count_bits + CONTRIB_BITS)
    m.d.comb += thr.eq(Mux(inside, dims[0][1] * dims[1][1] * contribs, 0))
    return inside, thr


def valid_region(cfg, region):
    """The checks of contract.program.Region.validate that the tracker relies on: tile
    sizes and extents positive, the tile grid fits the WF id bits (tile_outer0 +
    ceil(outer_extent / tile_outer) <= 2**wf_outer_bits, same inner), a full tile's
    threshold fits ``count_bits``."""
    positive = Cat(*(getattr(region, n) != 0 for n in
                     ("pitch", "outer_extent", "inner_extent", "tile_outer", "tile_inner"))).all()
    contribs = Mux(region.update_contribs > region.store_contribs,
                   region.update_contribs, region.store_contribs)
    # the tile grid fits the WF id: tile_outer0 + ceil(outer_extent / tile_outer) tiles
    fits = Cat(*(((1 << bits) - first) * tile >= extent for first, tile, extent, bits in (
        (region.tile_outer0, region.tile_outer, region.outer_extent, cfg.wf_outer_bits),
        (region.tile_inner0, region.tile_inner, region.inner_extent, cfg.wf_inner_bits)))).all()
    return positive & fits & (region.tile_outer * region.tile_inner * contribs
                              <= cfg.max_tile_count)


#: property groups a harness instance asserts (each proof asserts only what it is about:
#: every assertion costs solver time at every step)
CHECKS = ("order", "count", "fires", "progress")


class TrackerHarness(wiring.Component):
    """``tracker_cls``: the block (or a broken subclass). ``always_ready``: ``mem`` and
    ``fire`` always ready (needed by the ``progress`` check). ``checks``: a subset of
    :data:`CHECKS` to assert (the stream rules of the generic harness always are)."""

    def __init__(self, *, tracker_cls=TrackerTable, always_ready: bool = False, cfg=CACHE,
                 checks=CHECKS, fixed_tiles: bool = False):
        unknown = set(checks) - set(CHECKS)
        if unknown:
            raise ValueError(f"TrackerHarness: checks={sorted(unknown)}: known are {CHECKS}")
        self._cfg = cfg
        self._always_ready = always_ready
        self._checks = set(checks)
        self._fixed_tiles = fixed_tiles
        self._dut = tracker_cls(cfg=cfg, history=2)
        super().__init__({"k_wf": wiring.In(cfg.wf_id_bits), "k_phase": wiring.In(1),
                          **dict(self._dut.signature.members.items())})

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        # the generic harness: stream rules (assumed on req, asserted on mem/fire), stable
        # configuration, the clear_history contract; its ports are this harness's
        stable, contract = block_rules("tracker")
        m.submodules.rules = rules = StreamRulesHarness(lambda: self._dut, stable=stable,
                                                        contract=contract)
        dut = self._dut
        pass_through(m, rules, self)
        m.d.comb += Assume(~ResetSignal())
        started = Signal()
        m.d.sync += started.eq(1)

        region = dut.regions[0]
        m.d.comb += Assume(~dut.clear_counters)
        m.d.comb += Assume(valid_region(cfg, region))
        # fields the tracker never reads are pinned (fewer free bits for the solver), and
        # base (it only shifts every tile's first line, i.e. its backing counter)
        for name in ("base", "limit", "remote_base", "dest_base", "producer", "update_fire",
                     "store_fire"):
            m.d.comb += Assume(Value.cast(getattr(region, name)) == 0)
        # rows packed (Region.validate: inner_extent <= pitch, rows inside memory): tiles
        # never share lines, so their first lines (the backing-counter index) differ
        m.d.comb += Assume(region.pitch == region.inner_extent)
        m.d.comb += Assume(region.outer_extent * region.inner_extent <= cfg.mem_depth_lines)
        if self._fixed_tiles:
            # the cache proofs: 2 x 2 tiles of one line (first lines 0..3), contribs free;
            # the free geometry (the threshold formula) is the other proofs' subject
            for name, value in (("outer_extent", 2), ("inner_extent", 2), ("tile_outer", 1),
                                ("tile_inner", 1), ("tile_outer0", 0), ("tile_inner0", 0)):
                m.d.comb += Assume(getattr(region, name) == value)

        # ---- input tags -----------------------------------------------------------------
        acc = [Signal(SEQ_BITS, name=f"acc{k}") for k in range(LANES)]
        emit = [Signal(SEQ_BITS, name=f"emit{k}") for k in range(LANES)]
        inflight = [Signal(3, name=f"inflight{k}") for k in range(LANES)]
        for k in range(LANES):
            req = dut.req[k]
            p = req.payload
            tag = _tag(p.mem.data, cfg)
            m.d.comb += Assume(p.mem.data[tag_bits(cfg):] == 0)    # only the tag is free
            m.d.comb += Assume((tag["lane"] == k) & (tag["seq"] == acc[k]) & (tag["wf_id"] == p.wf_id)
                               & (tag["phase"] == p.phase) & (tag["tracked"] == p.tracked)
                               & (p.region == 0))
            if k == LANE_DMA:
                m.d.comb += Assume(~p.tracked)
            took = req.valid & req.ready
            with m.If(took):
                m.d.sync += acc[k].eq(acc[k] + 1)

        # ---- conservation per lane -------------------------------------------------------
        xfer = dut.mem.valid & dut.mem.ready
        out_tag = _tag(dut.mem.payload.data, cfg)
        for k in range(LANES):
            took = dut.req[k].valid & dut.req[k].ready
            out_k = xfer & (out_tag["lane"] == k)
            m.d.sync += inflight[k].eq(inflight[k] + took - out_k)
            with m.If(out_k):
                m.d.sync += emit[k].eq(emit[k] + 1)
            if "order" in self._checks:
                with m.If(out_k):
                    prop(m, Assert, (inflight[k] != 0) & (out_tag["seq"] == emit[k]),
                         f"lane{k}_in_order")
                prop(m, Assert, inflight[k] <= PER_LANE_IN_FLIGHT, f"lane{k}_in_flight")
        if "order" in self._checks:
            with m.If(xfer):
                prop(m, Assert, out_tag["lane"] < LANES, "lane_tag")

        # ---- count and fire for the symbolic key K --------------------------------------
        key_wf, key_ph = self.k_wf, self.k_phase
        past = {}
        for name, sig in (("k_wf", key_wf), ("k_ph", key_ph)):
            past[name] = Signal.like(sig, name=f"past_{name}")
            m.d.sync += past[name].eq(sig)
        with m.If(started):
            m.d.comb += Assume((key_wf == past["k_wf"]) & (key_ph == past["k_ph"]))
        _, thr = tile_threshold(m, cfg, region, key_wf, key_ph)
        last_k = Signal()                 # last cycle's transfer was a request of K
        m.d.sync += last_k.eq(xfer & (out_tag["wf_id"] == key_wf) & (out_tag["phase"] == key_ph))
        past_ctr = {}
        for name in ("tracked_reqs", "fires", "spills", "fills"):
            past_ctr[name] = Signal.like(getattr(dut, name), name=f"past_{name}")
            m.d.sync += past_ctr[name].eq(getattr(dut, name))
        stepped = {n: started & (getattr(dut, n) != v) for n, v in past_ctr.items()}
        counted, fired = stepped["tracked_reqs"], stepped["fires"]
        fired_k = fired & last_k
        cnt = Signal(cfg.count_bits + 1)
        reaches = counted & last_k & (cnt + 1 == thr)
        if "count" in self._checks:
            prop(m, Assert, fired_k == reaches, "fires_exactly_at_threshold")
            prop(m, Assert, ~fired | counted, "fire_has_cause")
            prop(m, Assert, (cnt < thr) | (cnt == 0), "count_below_threshold")
            prop(m, Assert, ~dut.err.count_over, "no_count_over")
        with m.If(counted & last_k):
            m.d.sync += cnt.eq(Mux(fired_k, 0, cnt + 1))

        # ---- fires are never lost, and leave with their key -----------------------------
        fire_xfer = dut.fire.valid & dut.fire.ready
        fire_xfers = Signal(8)
        k_pushed, k_taken = Signal(4), Signal(4)
        with m.If(fire_xfer):
            m.d.sync += fire_xfers.eq(fire_xfers + 1)
        with m.If(fired_k):
            m.d.sync += k_pushed.eq(k_pushed + 1)
        fire_is_k = (dut.fire.payload.wf_id == key_wf) & (dut.fire.payload.phase == key_ph)
        with m.If(fire_xfer & fire_is_k):
            m.d.sync += k_taken.eq(k_taken + 1)
        if "fires" in self._checks:
            waiting = Signal(8)
            m.d.comb += waiting.eq(dut.fires[:8] - fire_xfers)
            prop(m, Assert, dut.fire.valid == (waiting != 0), "fires_delivered")
            prop(m, Assert, waiting <= FIRE_SLOTS, "fire_slots")
            # K's fires waiting never exceed all fires waiting: a fire of K that left with
            # another key (or another tile's fire that left as K's) breaks it
            prop(m, Assert, (k_pushed - k_taken)[:4] <= waiting, "fire_key")
            with m.If(dut.fire.valid):
                prop(m, Assert, (dut.fire.payload.region == 0) & ~dut.fire.payload.whole,
                     "fire_payload")

        # ---- bounded liveness ----------------------------------------------------------
        if "progress" in self._checks and not self._always_ready:
            raise ValueError("TrackerHarness: the progress check needs always_ready=True")
        if self._always_ready:
            m.d.comb += [Assume(dut.mem.ready & dut.fire.ready),
                         Assume(dut.starve_limit <= STARVE_MAX)]
            must_move = Cat(*(inflight[k] != 0 for k in range(LANES))).any()
            idle = Signal(4)
            m.d.sync += idle.eq(Mux(must_move & ~xfer, idle + 1, 0))
            if "progress" in self._checks:
                prop(m, Assert, idle <= PROGRESS_BOUND, "progress")

        # ---- covers ----------------------------------------------------------------------
        spilled_k = Signal()              # K was counted, then some tile spilled
        with m.If(counted & last_k & ~fired_k):
            m.d.sync += spilled_k.eq(0)
        with m.If(stepped["spills"] & (cnt != 0)):
            m.d.sync += spilled_k.eq(1)
        prop(m, Cover, fired_k & (thr >= 2), "fire")
        prop(m, Cover, stepped["spills"], "spill")
        prop(m, Cover, fired_k & spilled_k & (thr >= 2), "fire_after_spill")
        return m


def _h(**kw):
    return lambda: TrackerHarness(**kw)


_SAFETY = ("order", "count", "fires")

#: (name, harness factory, mode, depth)
PROOFS = [
    # free region geometry (thresholds 1..3 from any valid tile shape), shallow
    ("tracker_count_fire", _h(checks=_SAFETY), "bmc", 8),
    # fixed 2 x 2 one-line tiles: deep enough for a fill, an eviction (spill) and a refill
    # of one tile before it fires (the counterexample of tracker_mutant_loses_spill)
    ("tracker_cache_count_fire", _h(checks=("count",), fixed_tiles=True), "bmc", 12),
    ("tracker_cache_order_fires", _h(checks=("order", "fires"), fixed_tiles=True), "bmc", 10),
    ("tracker_cache_order_fires_deep", _h(checks=("order", "fires"), fixed_tiles=True), "bmc",
     12),
    ("tracker_progress", _h(always_ready=True, checks=("progress",), fixed_tiles=True),
     "bmc", 14),
    ("tracker_cover", _h(checks=(), fixed_tiles=True), "cover", 16),
    ("tracker_cache_count_fire_deep", _h(checks=("count",), fixed_tiles=True), "bmc", 16),
]

#: `make formal` only (minutes of solver time)
SUITE_SKIP = {"tracker_cache_count_fire_deep", "tracker_cache_order_fires_deep"}

#: deliberately broken variants that must FAIL (verif/formal/mutants.py)
MUTANTS = [
    ("tracker_mutant_fire_early", _h(tracker_cls=TrackerFiresEarly, checks=("count",)), "bmc", 8),
    ("tracker_mutant_loses_spill",
     _h(tracker_cls=TrackerLosesSpill, checks=("count",), fixed_tiles=True), "bmc", 12),
    ("tracker_mutant_ignores_fire_slots",
     _h(tracker_cls=TrackerIgnoresFireSlots, checks=("fires",), fixed_tiles=True), "bmc", 18),
]

#: real bugs found by these harnesses and not fixed yet: each FAILS until fixed
#: (`python -m verif.formal` reports them separately); a fixed one moves to PROOFS.
KNOWN_BUGS: list = []

# Regression of a bug this harness found (fixed in hw/addrmap.py tile_step2): a region
# with more rows than the count width (4 tiles of 2 rows, outer_extent 8, count_bits 2)
# used to give tile 0 rows = 8 mod 8 = 0, i.e. threshold 0 and an early fire.
PROOFS.append(("tracker_threshold_large_region",
               _h(cfg=CACHE.replace(wf_outer_bits=2), checks=("count",)), "bmc", 8))
