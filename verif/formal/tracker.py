"""Formal harness of the TrackerTable on a reduced configuration: :data:`CACHE` = TINY
with a table of 2 sets x 1 way (every pair of tiles of one set evicts each other), 2-bit
counts, 4 WF tiles of region 0 in 2 phases (8 tiles over 2 ways: evictions and fills all
the time), a backing store of 32 counters, a fired-key history of 2.

Observation: the harness ASSUMES that every request's ``data`` carries a tag -- lane (2
bits), per-lane sequence number mod 8 (3 bits), and a copy of its key (wf_id, phase,
tracked). The tracker never looks at ``data``, so this loses no behaviour, and the tag
on ``mem`` says which request was handed to memory. The block's own event counters say
what it did with it: ``tracked_reqs`` steps when the transfer was counted, ``fires``
when it completed a tile (both counted when the request is handed to memory),
``spills``/``fills`` when L evicted / filled.

Assumed: stable region 0, programmed as contract.program.Region.validate allows
(:func:`valid_region`; requests name region 0), stable arbitration registers, input
streams obey valid/ready, DMA-lane requests are untracked, no counter clear, no reset.
``clear_history``/``clear`` and ``queue_level`` are free.

Properties (groups of :data:`CHECKS`; depths and modes in :data:`PROOFS`):
  * ``order``: no request lost, duplicated or reordered: per lane, accepted - emitted is
    in [0, :data:`PER_LANE_IN_FLIGHT`] and every request on ``mem`` carries the next
    sequence number of its lane;
  * ``count``: no lost update and fires exactly once, through evictions and fills, for a
    symbolic key K (any (wf_id, phase), chosen by the solver): the counted requests of K
    since its last fire stay below T(K) (the tile's threshold, recomputed here from the
    region), a fire of K happens exactly on the T(K)-th counted request (so once, never
    early, never late: a count lost in a spill or counted twice would move it), every
    fire is caused by a counted request, and ``count_over`` never rises;
  * ``fires``: fires are never lost: ``fire.valid`` is high exactly while fewer fires
    were taken than pushed, and at most ``FIRE_SLOTS`` wait; every fire of K leaves with
    K's key;
  * ``progress`` (bounded liveness, BMC; ``mem.ready`` and ``fire.ready`` high,
    ``starve_limit`` <= 3): while any lane holds a request, ``mem`` transfers something
    at least every :data:`PROGRESS_BOUND` cycles.

``order``, ``count`` and ``fires`` are PROVED by k-induction (unbounded) with
``invariants=True``: the harness then reaches into the block (:func:`_probed`: its
pipeline registers, the count table's memories and the fire queue) and asserts the
strengthening invariants of :meth:`TrackerHarness._add_invariants` (``inv_*``) --
without them an induction start state may hold a count, a queued fire or a pipeline
entry no reset state leads to.
Covers: a fire, a spill, and (fixed tiles) K filled back from the backing store and then fired.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cat, Cover, Module, Mux, ResetSignal, Signal, Value
from amaranth.lib import data, wiring

import hw.tracker as hw_tracker
from contract import latency
from contract.spec import CONTRIB_BITS
from hw.addrmap import tile_step1
from hw.layouts import tracked_request
from hw.tracker import FIRE_SLOTS, LANE_DMA, LANES, TrackerTable
from hw.tracker_table import counter_index, set_index

from .mutants import (TrackerFiresEarly, TrackerFireSlotCompareInverted, TrackerIgnoresFireSlots,
                      TrackerLosesSpill)
from .streams import TINY, StreamRulesHarness, pass_through, block_rules, prop

__all__ = ["TrackerHarness", "CHECKS", "PROGRESS_BOUND", "tile_threshold", "valid_region",
           "CACHE", "PROOFS", "MUTANTS", "SUITE_SKIP", "KNOWN_BUGS", "COVERS"]

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


def _probed(tracker_cls):
    """``tracker_cls`` with its internals recorded for the induction invariants (the
    harness reaches into the block: its pipeline registers, count table and fire queue).
    The hardware is unchanged: the subclass only keeps references to what the block's
    own methods build, then calls ``self._on_elaborated(m, probe)``. Two of them are
    not returned by any method and are taken from the expressions that use them: a
    lane's G1 request register (the first operand of ``_LaneFront.err_key``) and its G1
    geometry registers (the argument of ``tile_step2``, spied on during the call)."""

    class Probed(tracker_cls):
        def _lane_front_end(self, m, k, *, taken):
            seen = {}
            step2 = hw_tracker.tile_step2

            def spy(m_, cfg, region, s1):
                seen.update(s1)
                return step2(m_, cfg, region, s1)
            hw_tracker.tile_step2 = spy
            try:
                front = super()._lane_front_end(m, k, taken=taken)
            finally:
                hw_tracker.tile_step2 = step2
            g1 = data.View(tracked_request(self.cfg), Value.cast(front.err_key).parts[0].value)
            self._probe["fronts"].append({"front": front, "g1": g1, "g1_geom": seen})
            return front

        def _lookup(self, m, table, fired, l_st, o_st, granted, admit):
            lk, leave = super()._lookup(m, table, fired, l_st, o_st, granted, admit)
            self._probe.update(table=table, l=l_st, o=o_st, lk=lk, leave=leave)
            return lk, leave

        def _output(self, m, o, fire_q):
            super()._output(m, o, fire_q)
            self._probe["fire_q"] = fire_q

        def elaborate(self, platform):
            self._probe = {"fronts": []}
            m = super().elaborate(platform)
            self._on_elaborated(m, self._probe)
            return m

    Probed.__name__ = f"Probed{tracker_cls.__name__}"
    return Probed


#: property groups a harness instance asserts (each proof asserts only what it is about:
#: every assertion costs solver time at every step)
CHECKS = ("order", "count", "fires", "progress")


class TrackerHarness(wiring.Component):
    """``tracker_cls``: the block (or a broken subclass). ``always_ready``: ``mem`` and
    ``fire`` always ready (needed by the ``progress`` check). ``checks``: a subset of
    :data:`CHECKS` to assert (the stream rules of the generic harness always are)."""

    def __init__(self, *, tracker_cls=TrackerTable, always_ready: bool = False, cfg=CACHE,
                 checks=CHECKS, fixed_tiles: bool = False, invariants: bool = False):
        unknown = set(checks) - set(CHECKS)
        if unknown:
            raise ValueError(f"TrackerHarness: checks={sorted(unknown)}: known are {CHECKS}")
        self._cfg = cfg
        self._always_ready = always_ready
        self._checks = set(checks)
        self._fixed_tiles = fixed_tiles
        self._invariants = invariants
        if invariants:
            self._dut = _probed(tracker_cls)(cfg=cfg, history=2)
            self._dut._on_elaborated = self._add_invariants
        else:
            self._dut = tracker_cls(cfg=cfg, history=2)
        self._hs = {}
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
        k_inside, thr = tile_threshold(m, cfg, region, key_wf, key_ph)
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
            if not self._invariants:      # else per key K, in _count_invariants
                prop(m, Assert, ~dut.err.count_over, "no_count_over")
        cnt_next = Signal.like(cnt, name="cnt_next")    # cnt with this cycle's count in it
        m.d.comb += cnt_next.eq(Mux(counted & last_k, Mux(fired_k, 0, cnt + 1), cnt))
        m.d.sync += cnt.eq(cnt_next)

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

        self._hs.update(acc=acc, emit=emit, inflight=inflight, cnt=cnt, thr=thr,
                        fire_xfers=fire_xfers, k_pushed=k_pushed, k_taken=k_taken,
                        fired_k=fired_k, cnt_next=cnt_next, k_inside=k_inside)

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
        if self._fixed_tiles:     # free geometry: not within the proofs' depths
            prop(m, Cover, fired_k & spilled_k & (thr >= 2), "fire_after_spill")
        return m


    # ---- induction invariants (inside the block) --------------------------------------

    def _key_index(self, m: Module, region, wf_id, phase, name: str):
        """(index, in range) of the backing counter of tile (wf_id, phase): its first
        line (base pinned 0) = outer offset x pitch + inner offset, in counter_index's
        encoding."""
        cfg = self._cfg
        o, i = Value.cast(wf_id)[cfg.wf_inner_bits:], Value.cast(wf_id)[:cfg.wf_inner_bits]
        origin = Signal(cfg.addr_bits, name=f"inv_origin_{name}")
        m.d.comb += origin.eq((o - region.tile_outer0) * region.tile_outer * region.pitch
                              + (i - region.tile_inner0) * region.tile_inner)
        return counter_index(cfg, origin, phase)

    def _entry_ok(self, m: Module, region, req, *, track, thr, idx, name: str):
        """A pipeline entry's decision registers are those of its own request: its
        threshold and counter index (when counted) and whether it is counted."""
        cfg = self._cfg
        inside, want_thr = tile_threshold(m, cfg, region, req.wf_id, req.phase)
        want_idx, in_range = self._key_index(m, region, req.wf_id, req.phase, name)
        contribs = Mux(req.phase, region.store_contribs, region.update_contribs)
        want_track = req.tracked & inside & (contribs != 0) & in_range
        return (track == want_track) & (~track | ((thr == want_thr) & (idx == want_idx)))

    def _add_invariants(self, m: Module, p: dict) -> None:
        """The strengthening invariants of the induction proofs, over the block's
        internals (``p``, recorded by :func:`_probed`) and this harness's shadow state:
        each one is asserted (``inv_*``), so k-induction assumes it for k steps and
        proves it at the next. The pipeline entries' always (every group's observation
        rests on their tags), the others for the groups checked."""
        cfg, dut, hs = self._cfg, self._dut, self._hs
        region = dut.regions[0]
        l, o, q, table = p["l"], p["o"], p["fire_q"], p["table"]
        fronts = p["fronts"]

        def inv(cond, name):
            prop(m, Assert, cond, f"inv_{name}")

        # ---- every request in the pipeline, per lane, oldest first: its tag (lane, next
        # sequence number, a copy of its key) -- every group's observation rests on it ----
        inv(~o.valid | (o.lane < LANES), "o_lane")
        inv(~l.valid | (l.lane < LANES), "l_lane")
        inv(~(o.valid & o.fire) | o.track, "fire_counted")
        for k in range(LANES):
            f = fronts[k]
            items = [(o.valid & (o.lane == k), o.req), (l.valid & (l.lane == k), l.req),
                     (f["front"].valid, f["front"].req), (f["front"].g1_valid, f["g1"])]
            seq = hs["emit"][k]
            total = 0
            for j, (present, req) in enumerate(items):
                tag = _tag(req.mem.data, cfg)
                ok = ((tag["lane"] == k) & (tag["seq"] == seq[:SEQ_BITS])
                      & (tag["wf_id"] == req.wf_id) & (tag["phase"] == req.phase)
                      & (tag["tracked"] == req.tracked) & (req.region == 0)
                      & (req.mem.data[tag_bits(cfg):] == 0))
                if k == LANE_DMA:
                    ok &= ~req.tracked
                inv(~present | ok, f"lane{k}_entry{j}")
                seq = seq + present
                total = total + present
            inv(hs["inflight"][k] == total, f"lane{k}_count")
            inv((hs["emit"][k] + hs["inflight"][k])[:SEQ_BITS] == hs["acc"][k],
                f"lane{k}_seq")

        # ---- fires: the fire queue, its reservations and K's fires in it -----------------
        if "fires" in self._checks:
            qv = q.valid
            depth = len(q.slots)
            inv(Cat(*((qv == (1 << j) - 1) for j in range(depth + 1))).any(), "fireq_prefix")
            waiting = Signal(8, name="inv_waiting")
            m.d.comb += waiting.eq(dut.fires[:8] - hs["fire_xfers"])
            inv(waiting == q.level, "fireq_level")
            reserved = q.level + (l.valid & l.track) + (o.valid & o.fire)
            inv(reserved <= FIRE_SLOTS, "fire_reserved")
            k_in_q = sum(qv[j] & (q.slots[j].wf_id == self.k_wf)
                         & (q.slots[j].phase == self.k_phase) for j in range(depth))
            # k_pushed steps a cycle after the push (fired_k is seen on the counters)
            inv(k_in_q == (hs["k_pushed"] + hs["fired_k"] - hs["k_taken"])[:4], "fireq_key")
            for j in range(depth):
                inv(~qv[j] | ((q.slots[j].region == 0) & ~q.slots[j].whole), f"fireq_slot{j}")

        # ---- count: K's count in the table / backing store vs the shadow count ----------
        if "count" in self._checks:
            self._count_invariants(m, p, inv)

    def _count_invariants(self, m: Module, p: dict, inv) -> None:
        """The ``count`` group's invariants (``inv`` asserts one) and its per-K
        ``no_count_over``."""
        cfg, dut, hs = self._cfg, self._dut, self._hs
        region = dut.regions[0]
        l, o, table, fronts = p["l"], p["o"], p["table"], p["fronts"]
        # every pipeline entry's geometry is its request's (so no other tile's request can
        # count on K's counter)
        for k, f in enumerate(fronts):
            g1 = f["g1"]
            want = tile_step1(m, cfg, region, g1.wf_id)
            geom = f["g1_geom"]
            same = Cat(*(geom[n] == want[n] for n in ("ge", "off_o", "off_i"))).all()
            inv(~f["front"].g1_valid | same, f"g1_geometry{k}")
            fr = f["front"]
            inv(~fr.valid | self._entry_ok(m, region, fr.req, track=fr.track, thr=fr.thr,
                                           idx=fr.idx, name=f"g2_{k}"), f"g2_decision{k}")
        inv(~l.valid | self._entry_ok(m, region, l.req, track=l.track, thr=l.thr, idx=l.idx,
                                      name="l"), "l_decision")
        # the set word and the backing counter L read are the memories' current ones (only
        # L writes them, when it leaves)
        sets_rd = table.sets.read_port(domain="comb")
        bk_rd = table.backing.read_port(domain="comb")
        l_set = set_index(cfg, l.idx)
        m.d.comb += [sets_rd.addr.eq(l_set), bk_rd.addr.eq(l.idx)]
        eff = Mux(table.fwd_use, Value.cast(table.fwd_data), Value.cast(table.rd.data))
        inv(~l.valid | ((eff == Value.cast(sets_rd.data)) & (table.wr.addr == l_set)),
            "l_set_word")
        inv(~(l.valid & table.filled) | (table.bk_rd.data == bk_rd.data), "l_backing_word")
        # every valid way sits in its own tile's set (a lookup of K finds K's way)
        for st in range(cfg.tracker_sets):
            rd = table.sets.read_port(domain="comb")
            m.d.comb += rd.addr.eq(st)
            word = data.View(table.set_shape, rd.data)
            for w in range(table.ways):
                inv(~word[w].valid | (set_index(cfg, word[w].idx) == st), f"set{st}_way{w}_home")
        # K's count: its way when cached (at most one way, count > 0), else its backing counter
        idx_k, k_in_range = self._key_index(m, region, self.k_wf, self.k_phase, "k")
        k_set_rd = table.sets.read_port(domain="comb")
        k_bk_rd = table.backing.read_port(domain="comb")
        m.d.comb += [k_set_rd.addr.eq(set_index(cfg, idx_k)), k_bk_rd.addr.eq(idx_k)]
        ways = data.View(table.set_shape, k_set_rd.data)
        hits = [ways[w].valid & (ways[w].idx == idx_k) for w in range(table.ways)]
        d = Signal(cfg.count_bits, name="inv_count_k")
        m.d.comb += d.eq(k_bk_rd.data)
        for w in range(table.ways):
            with m.If(hits[w]):
                m.d.comb += d.eq(ways[w].count)
            inv(~hits[w] | (ways[w].count != 0), f"k_way{w}_nonzero")
            for v in range(w):
                inv(~(hits[w] & hits[v]), f"k_ways_{v}_{w}_unique")
        o_k = o.valid & o.track & (o.req.wf_id == self.k_wf) & (o.req.phase == self.k_phase)
        # the shadow count sees a request a cycle after its transfer (on the counters)
        cnt, thr = hs["cnt_next"], hs["thr"]
        want = Mux(o_k, Mux(o.fire, 0, cnt + 1), cnt)
        # (a tile outside the region, of no contribs or without a counter is never counted:
        # its index may alias a counted tile's)
        k_counted = hs["k_inside"] & (thr != 0) & k_in_range
        inv(~k_counted | (d == want), "k_count")
        inv(~(o_k & o.fire) | (cnt + 1 == thr), "k_fire_pending")
        inv(~(o_k & ~o.fire) | (cnt + 1 < thr), "k_count_pending")
        # count_over (sticky, for any tile) never rises: no request of K raises it, for
        # every K the solver may pick -- the flag itself covers all tiles at once, which
        # an induction over one symbolic K cannot carry
        l_k = (l.req.wf_id == self.k_wf) & (l.req.phase == self.k_phase)
        prop(m, Assert, ~(p["leave"] & p["lk"].over & l_k), "no_count_over")


def _h(**kw):
    return lambda: TrackerHarness(**kw)


_SAFETY = ("order", "count", "fires")

#: (name, harness factory, mode, depth)
PROOFS = [
    # k-induction (unbounded) with the invariants over the block's internals: free region
    # geometry (thresholds 1..3 from any valid tile shape), every safety group
    # (depth 8: its cover, a fire with T >= 2, is reached at step 7)
    ("tracker_count_fire", _h(checks=_SAFETY, invariants=True), "prove", 8),
    # fixed 2 x 2 one-line tiles (a 2-set table: fills, spills, refills all the time): the
    # depths are those at which the mutants' counterexamples and the covers are reached
    ("tracker_cache_count_fire", _h(checks=("count",), fixed_tiles=True, invariants=True),
     "prove", 11),
    ("tracker_cache_order_fires",
     _h(checks=("order", "fires"), fixed_tiles=True, invariants=True), "prove", 12),
    # bounded liveness (BMC)
    ("tracker_progress", _h(always_ready=True, checks=("progress",), fixed_tiles=True),
     "bmc", 14),
    # a fire, a spill, a fire after K was spilled and filled back (step 10): non-vacuity of
    # tracker_cache_count_fire at its depth
    ("tracker_cover", _h(checks=(), fixed_tiles=True), "cover", 11),
    # a fire with T >= 2 and a spill (step 7) in the free geometry: tracker_count_fire's
    ("tracker_cover_free", _h(checks=()), "cover", 8),
]

#: cover -> the check it shows non-vacuous (the cover's depth is no greater)
COVERS = {"tracker_cover": "tracker_cache_count_fire", "tracker_cover_free": "tracker_count_fire"}

#: `make formal` only (minutes of solver time)
#: the free-geometry induction proof (29 s of the suite's solver time) runs in `make formal`
#: only; the cache proofs (fixed tiles) stay in the suite
SUITE_SKIP: set = {"tracker_count_fire"}

#: deliberately broken variants (verif/formal/mutants.py): (name, harness factory, the
#: proof it breaks -- its mode and depth --, the assertion that must fail). With the
#: induction invariants in the harness, a broken count or fire queue shows first as the
#: invariant it breaks (the shadow count / the fire reservations), steps before the
#: fire it would get wrong. The ``order`` group has no mutant: no design-decision method
#: of the tracker shapes its lanes' order (the lane pipelines and the stage registers
#: are structural).
MUTANTS = [
    ("tracker_mutant_fire_early", _h(tracker_cls=TrackerFiresEarly, checks=_SAFETY,
                                     invariants=True), "tracker_count_fire", "inv_k_fire_pending"),
    ("tracker_mutant_loses_spill",
     _h(tracker_cls=TrackerLosesSpill, checks=("count",), fixed_tiles=True, invariants=True),
     "tracker_cache_count_fire", "inv_k_count"),
    ("tracker_mutant_ignores_fire_slots",
     _h(tracker_cls=TrackerIgnoresFireSlots, checks=("order", "fires"), fixed_tiles=True,
        invariants=True), "tracker_cache_order_fires", "inv_fire_reserved"),
    ("tracker_mutant_no_progress",
     _h(tracker_cls=TrackerFireSlotCompareInverted, always_ready=True, checks=("progress",),
        fixed_tiles=True), "tracker_progress", "progress"),
]

#: real bugs found by these harnesses and not fixed yet: each FAILS until fixed
#: (`python -m verif.formal` reports them separately); a fixed one moves to PROOFS.
KNOWN_BUGS: list = []

# Regression of a bug this harness found (fixed in hw/addrmap.py tile_step2): a region
# with more rows than the count width (4 tiles of 2 rows, outer_extent 8, count_bits 2)
# used to give tile 0 rows = 8 mod 8 = 0, i.e. threshold 0 and an early fire.
# Bounded (BMC): the same property on the default harness configuration is proved
# (tracker_count_fire); k-induction here takes about 50 s more.
PROOFS.append(("tracker_threshold_large_region",
               _h(cfg=CACHE.replace(wf_outer_bits=2), checks=("count",)), "bmc", 8))
