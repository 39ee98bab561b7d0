"""Tracker: counts tracked memory requests per WF tile and fires complete tiles.

Sits INLINE on the path to memory, at the entry of the memory-controller queue, so a
counted update reaches memory before any DMA read of its tile (memory is program
ordered). Three input lanes, each in order: ``req[0]`` producer (the compute stream),
``req[1]`` link arrivals and ``req[2]`` DMA reads (untracked; the communication stream).

Pipeline (docs/tracker.md "Pipeline"), one request per cycle:

* ``G1``, ``G2`` per lane: the tile's geometry (small multipliers: offsets, then the
  clipped size, threshold ``rows * row_lines * contribs`` and first line ``origin``)
  and its backing-counter index {origin, phase};
* arbitration of the three G2 heads = the memory-controller arbitration
  (:class:`hw.arbiter.MemoryArbiter`: compute = lane 0, communication = lanes 1 and 2
  merged round-robin; ``policy`` plain round-robin or T3-MCA). The granted head's table
  set is read in that cycle;
* ``L``: the count table (:class:`hw.tracker_table.CountTable`): a set-associative cache
  of per-tile counts over a backing counter SRAM. Compare the set's ways (with the
  write-back of the cycle before forwarded), count, decide the fire, write back; a miss
  reads the backing counter (one more cycle), a fill may spill a victim's count;
* ``O``: the output register = ``mem``. A fire enters the fire queue (``fire``) when its
  completing request is handed to memory, so the DMA reads the tile only after it.

No request waits for a table entry (a miss evicts, nothing is lost), so the table cannot
deadlock whatever the number of live tiles. The only wait is for a fire slot: a tracked
head is granted only while the fire queue has a slot for every tracked request in L and
O and for itself (``FIRE_SLOTS``), so L and O never wait on the DMA and the DMA lane's
reads always pass.

Errors (sticky, first offending key in ``err_key``; the flags are
``contract.errors.flags_of("tracker")``): ``tile_outside`` (wf_id's tile not in the
region), ``threshold_zero`` (contribs of the phase is 0), ``counter_range`` (the tile's
first line has no backing counter), ``count_over`` (count passed the threshold: only
possible if the region changed under a live tile; the tile fires), ``refire`` (a new
tile equal to one of the last ``history`` fired ones). Every such request is applied to
memory; only the ``count_over`` one is counted.

The design decisions that formal checks and tests break on purpose are small methods
(``_completes``, ``_spill_count``, ``_fire_slot_free``): the broken variants are
subclasses in verif/formal/mutants.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Array, Cat, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from contract import latency, spec
from contract.spec import COUNTER_BITS, MCA_STARVE_BITS, ConfigError, T3Config

from . import designs, layouts
from .addrmap import Sticky, count_event, tile_step1, tile_step2
from .arbiter import MemoryArbiter
from .component import T3Component
from .layouts import fire_layout, regions_layout, tracked_request
from .merge import StreamMerge
from .tracker_table import CountTable, counter_index, set_index

__all__ = ["TrackerTable", "TRACKER_ERRORS", "LANES", "LANE_PRODUCER", "LANE_LINK", "LANE_DMA",
           "FIRE_SLOTS", "key_layout", "probe_signature"]

#: the tracker's sticky error flags (``err``/``clear``): contract.errors.flags_of("tracker")
TRACKER_ERRORS = layouts.error_flags("tracker")
LANES = 3                     # producer, link arrivals, DMA reads
LANE_PRODUCER, LANE_LINK, LANE_DMA = range(LANES)
#: fire queue slots: one per tracked request in L and O, two for fires waiting for the DMA
FIRE_SLOTS = 4


def key_layout(cfg: T3Config) -> data.StructLayout:
    """A tile as software names it: ``wf_id`` and the phase (UPDATE 0 / STORE 1)."""
    return data.StructLayout({"wf_id": cfg.wf_id_bits, "phase": 1})


def probe_signature(cfg: T3Config) -> wiring.Signature:
    """The tracker's coverage probes (``probe`` port group, from the tracker's view):
    what the functional coverage of the cocotb benches observes (verif/coverage.py). The
    design never reads them; they are ports so that a renamed net cannot silently break
    a probe (tests/test_coverage.py checks every probed name in the generated Verilog)."""
    return wiring.Signature({
        "stall": Out(LANES),             # bit k: lane k's tracked head waits for a fire slot
        "track": Out(1),                 # the request on `mem` is counted
        "hit": Out(1),                   # ... and its tile was in the table
        "spill": Out(1),                 # ... and it evicted a live tile (count spilled)
        "key": Out(key_layout(cfg)),     # ... of this tile
    })


@dataclass(frozen=True)
class _LaneFront:
    """What a lane's front end (G1, G2) holds for arbitration: its head."""
    g1_valid: Signal
    valid: Signal         # G2 holds the head
    req: data.View
    track: Signal         # tracked, the tile in its region, contribs != 0, has a counter
    thr: Signal           # the tile's threshold
    idx: Signal           # the tile's backing-counter index
    events: dict          # error events of the request moving G1 -> G2 ...
    err_key: Value        # ... and its key (ERR_KEY)


class _FiredKeys:
    """The counter indexes of the last ``depth`` fired tiles (newest first), for the
    ``refire`` check."""

    def __init__(self, cfg: T3Config, depth: int):
        self.valid = Signal(depth, name="hist_v")
        self.keys = [Signal(cfg.tracker_counter_index_bits, name=f"hist{j}") for j in range(depth)]

    def recent(self, idx) -> Value:
        """``idx`` is one of the remembered ones."""
        return Cat(*(self.valid[j] & (self.keys[j] == idx) for j in range(len(self.keys)))).any()

    def push(self, m: Module, idx) -> None:
        """Remember ``idx`` (under the caller's condition); the oldest is forgotten."""
        m.d.sync += [self.valid.eq(Cat(1, self.valid[:-1])), self.keys[0].eq(idx)]
        m.d.sync += [self.keys[j].eq(self.keys[j - 1]) for j in range(1, len(self.keys))]


class _FireQueue:
    """The fire queue: ``depth`` registers, the head in slot 0; a pop shifts every slot
    down, a push fills the lowest empty slot after the shift. The head changes only when
    it is taken (the stream rule holds from any state, which keeps it k-inductive)."""

    def __init__(self, m: Module, cfg: T3Config, depth: int, out):
        self.valid = Signal(depth, name="fireq_v")
        self.slots = [Signal(fire_layout(cfg), name=f"fireq{j}") for j in range(depth)]
        self.level = Signal(range(depth + 1), name="fireq_level")
        m.d.comb += self.level.eq(sum(self.valid[j] for j in range(depth)))
        m.d.comb += [out.valid.eq(self.valid[0]), out.payload.eq(self.slots[0])]
        self._m, self._out = m, out

    def push(self, push, value) -> None:
        """Push ``value`` when ``push`` (the caller reserved a slot)."""
        m, depth = self._m, len(self.slots)
        pop = self._out.valid & self._out.ready
        valid = Mux(pop, self.valid >> 1, self.valid)
        slots = [Mux(pop, self.slots[j + 1], self.slots[j]) if j + 1 < depth else
                 Mux(pop, 0, self.slots[j]) for j in range(depth)]
        m.d.sync += [self.valid.eq(valid)] + [s.eq(v) for s, v in zip(self.slots, slots)]
        free = ~valid
        for j in reversed(range(depth)):
            with m.If(push & free[j] & ((free & ((1 << j) - 1)) == 0)):
                m.d.sync += [self.valid[j].eq(1), self.slots[j].eq(value)]


class TrackerTable(T3Component):
    """The tracker: counts tracked memory requests per WF tile and fires complete tiles
    (docs/tracker.md; the structure is in the module doc).

    Three input lanes, each in order, share one pipeline and one ``mem`` output. The
    counts live in a backing counter store, cached in a set-associative table: any
    number of tiles may be live. A request's tile is counted in stage L; the request is
    handed to memory from the output register after it, and the request that completes
    its tile pushes ``fire`` in that cycle.

    Latency (no stall, a table hit): :data:`contract.latency.TRACKER` (4) cycles from
    acceptance on ``req[k]`` to ``mem.valid``; :data:`contract.latency.TRACKER_FIRE` (5)
    from acceptance of the completing request to ``fire.valid``; a miss adds
    :data:`contract.latency.TRACKER_MISS` (1). One request per cycle in total.

    Parameters
    ----------
    cfg : T3Config
        ``tracker_entries``/``tracker_ways`` (the table), ``tracker_counters`` (the
        backing store), ``count_bits``, ``wf_outer_bits``/``wf_inner_bits``, ``regions``,
        ``mem_queue_depth`` (the arbitration levels) and the request layout.
    history : int
        Fired tiles remembered for the ``refire`` check, 1..64 (default 8).

    Attributes
    ----------
    req : In(stream.Signature(tracked_request(cfg))).array(3)
        The lanes: ``req[LANE_PRODUCER]`` (compute stream), ``req[LANE_LINK]`` (link
        arrivals), ``req[LANE_DMA]`` (the DMA engine's READs: untracked).
    mem : Out(stream.Signature(memory_request(cfg)))
        Every request, counted or not, in per-lane order (lanes merged by the arbiter).
    mem_lane : Out(range(3))
        The lane of the request on ``mem`` (``LANE_*``), valid with ``mem.valid``.
    fire : Out(stream.Signature(fire_layout(cfg)))
        ``{wf_id, region, phase}`` of each completed tile, once, after its last request
        was handed to ``mem`` (a queue of :data:`FIRE_SLOTS`).
    regions : In(regions_layout(cfg))
        The region registers: tile geometry and contribs per phase give the threshold.
    policy : In(1)
        Memory-controller arbitration policy (:class:`hw.arbiter.Policy`).
    queue_level, threshold : In(range(mem_queue_depth + 1)) each
        The memory queue's occupancy, and the MCA threshold below which communication
        may issue (:class:`hw.arbiter.MemoryArbiter`; compared when a head is granted,
        up to two requests before they reach ``mem``).
    starve_limit : In(MCA_STARVE_BITS)
        MCA: cycles after which a waiting communication request goes first.
    comm_wait_max : Out(MCA_STARVE_BITS + 1)
        Longest wait of a communication request seen (cycles, saturating).
    starved_grants : Out(COUNTER_BITS)
        Communication grants forced by the starvation limit.
    err : Out(TRACKER_ERRORS)
        Sticky error flags (:func:`contract.errors.flags_of` ``("tracker")``).
    clear : In(TRACKER_ERRORS)
        Write-1-to-clear of ``err``, per flag (a new error the same cycle wins).
    err_key : Out(StructLayout({"wf_id", "phase", "region"}))
        The key of the first error raised while every flag was clear.
    clear_history : In(1)
        Forget the fired tiles (between GEMMs that reuse WF ids).
    occupancy : Out(range(tracker_entries + 1))
        Valid ways of the table (tiles cached; more may be live in the backing store).
    busy : Out(1)
        A request is in the pipeline or a fire waits.
    tracked_reqs, fires : Out(COUNTER_BITS) each
        Counted requests and fired tiles, counted when handed to ``mem`` (wrapping).
    hits, misses, fills, spills : Out(COUNTER_BITS) each
        Table lookups of tracked requests that found their tile / did not (each miss
        reads the backing store once); misses that took a way; fills that evicted a live
        tile (its count written to the backing store). Counted in L (wrapping).
    stall_cycles : Out(COUNTER_BITS)
        Cycles in which some lane's tracked head waited for a fire slot (the DMA is
        behind), wrapping.
    clear_counters : In(1)
        Zero the counters (wins over a count in the same cycle).
    probe : Out(probe_signature(cfg))
        Coverage probes (not used by the design).
    """

    def __init__(self, *, cfg: T3Config, history: int = 8):
        if isinstance(history, bool) or not isinstance(history, int) or not 1 <= history <= 64:
            raise ConfigError(f"{type(self).__name__}: history={history!r}: must be an "
                              f"integer in [1, 64]")
        self._history = history
        super().__init__(cfg, lambda cfg: {
            "req": In(stream.Signature(tracked_request(cfg))).array(LANES),
            "mem": Out(stream.Signature(layouts.memory_request(cfg))),
            "fire": Out(stream.Signature(fire_layout(cfg))),
            "regions": In(regions_layout(cfg)),
            "clear": In(TRACKER_ERRORS),
            "clear_history": In(1),
            "clear_counters": In(1),
            "err": Out(TRACKER_ERRORS),
            "err_key": Out(data.StructLayout({"wf_id": cfg.wf_id_bits, "phase": 1,
                                              "region": cfg.region_bits})),
            "occupancy": Out(range(cfg.tracker_entries + 1)),
            "busy": Out(1),
            **{name: Out(COUNTER_BITS) for name in self.COUNTERS},
            "policy": In(1),
            "queue_level": In(range(cfg.mem_queue_depth + 1)),
            "threshold": In(range(cfg.mem_queue_depth + 1)),
            "starve_limit": In(MCA_STARVE_BITS),
            "comm_wait_max": Out(MCA_STARVE_BITS + 1),
            "starved_grants": Out(COUNTER_BITS),
            "mem_lane": Out(range(LANES)),
            "probe": Out(probe_signature(cfg)),
        })

    #: the event counters (output ports of COUNTER_BITS)
    COUNTERS = ("tracked_reqs", "fires", "stall_cycles", "hits", "misses", "fills", "spills")

    @property
    def history(self) -> int:
        """Fired tiles remembered for the ``refire`` check."""
        return self._history

    @property
    def entries(self) -> int:
        return self.cfg.tracker_entries

    @property
    def entry_bits(self) -> int:
        """Bits per table entry (way): valid + counter index + count."""
        return 1 + self.cfg.tracker_counter_index_bits + self.cfg.count_bits

    @property
    def storage_bits(self) -> int:
        """Bits of table state (entries x entry_bits); the backing store
        (:attr:`backing_bits`), the fired-key history and the pipeline registers are not
        included."""
        return self.entries * self.entry_bits

    @property
    def backing_bits(self) -> int:
        """Bits of the backing counter SRAM (counters x count_bits)."""
        return self.cfg.tracker_counter_slots * self.cfg.count_bits

    @property
    def latency(self) -> int:
        """Cycles from a request's acceptance on ``req`` to ``mem.valid`` (hit, no stall)."""
        return latency.TRACKER

    @property
    def fire_latency(self) -> int:
        """Cycles from acceptance of the completing request to ``fire.valid``."""
        return latency.TRACKER_FIRE

    @property
    def miss_latency(self) -> int:
        """Extra cycles of a table miss (the backing counter read)."""
        return latency.TRACKER_MISS

    # ---- design decisions a broken variant overrides (verif/formal/mutants.py) ---------

    def _completes(self, count_after, threshold) -> Value:
        """The request completes its tile: the count after it reaches the tile's
        threshold (``>=``: a count past it, after the region was reprogrammed under a live
        tile, fires too and raises ``count_over``)."""
        return count_after >= threshold

    def _spill_count(self, count) -> Value:
        """The value an evicted way writes to its backing counter: its count."""
        return count

    def _fire_slot_free(self, reserved) -> Value:
        """A tracked head may be granted: the fire queue has a slot for it besides the
        ``reserved`` ones (fires queued + tracked requests in L and O), so a fire is
        never pushed into a full queue and L and O never wait for the DMA."""
        return reserved < FIRE_SLOTS

    # ---- hardware -------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        fired = _FiredKeys(cfg, self._history)
        table = CountTable(m, cfg, completes=self._completes, spill_value=self._spill_count,
                           recent=fired.recent)
        fire_q = _FireQueue(m, cfg, FIRE_SLOTS, self.fire)
        sel = Signal(range(LANES))        # the granted lane
        admit = Signal()                  # ... enters L this cycle
        fronts = [self._lane_front_end(m, k, taken=admit & (sel == k)) for k in range(LANES)]
        l_st, o_st = _Stage.create(m, cfg, "l"), _Stage.create(m, cfg, "o")
        reserved = fire_q.level + (l_st.valid & l_st.track) + (o_st.valid & o_st.fire)
        slot_free = _named(m, "fire_slot_free", self._fire_slot_free(reserved))
        granted = self._select_lane(m, fronts, slot_free, sel, admit)
        lk, leave = self._lookup(m, table, fired, l_st, o_st, granted, admit)
        self._output(m, o_st, fire_q)
        self._errors(m, fronts, l_st, lk, leave)
        self._status(m, fronts, slot_free, l_st, o_st, lk, leave, fire_q)
        return m

    def _lane_front_end(self, m: Module, k: int, *, taken) -> _LaneFront:
        """Lane ``k``'s geometry pipeline: G1 = the tile's offsets in its region (small
        multipliers), G2 = the clipped tile size, threshold ``rows * row_lines *
        contribs`` and the backing-counter index of the tile's first line (hw.addrmap's
        tile_step1/2, the formulas of contract.program.Region.tile). G2 holds the lane's
        head until ``taken``."""
        cfg = self.cfg
        src = self.req[k]
        g1_v, g2_v = Signal(name=f"g1_v{k}"), Signal(name=f"g2_v{k}")
        g1 = Signal(tracked_request(cfg), name=f"g1_req{k}")
        g2 = Signal(tracked_request(cfg), name=f"g2_req{k}")
        g1_ge = Signal(name=f"g1_ge{k}")
        g1_off_o = Signal(cfg.wf_outer_bits + cfg.count_bits, name=f"g1_off_o{k}")
        g1_off_i = Signal(cfg.wf_inner_bits + cfg.count_bits, name=f"g1_off_i{k}")
        g2_track = Signal(name=f"g2_track{k}")
        g2_thr = Signal(2 * cfg.count_bits + spec.CONTRIB_BITS, name=f"g2_thr{k}")
        g2_idx = Signal(cfg.tracker_counter_index_bits, name=f"g2_idx{k}")
        g2_ready = ~g2_v | taken
        g1_ready = ~g1_v | g2_ready
        m.d.comb += src.ready.eq(g1_ready)

        with m.If(g2_ready):
            m.d.sync += g2_v.eq(0)
        with m.If(g1_ready):
            m.d.sync += g1_v.eq(0)
        with m.If(src.valid & g1_ready):
            s1 = tile_step1(m, cfg, self.regions[src.payload.region], src.payload.wf_id)
            m.d.sync += [g1_v.eq(1), g1.eq(src.payload), g1_ge.eq(s1["ge"]),
                         g1_off_o.eq(s1["off_o"]), g1_off_i.eq(s1["off_i"])]
        advance = g1_v & g2_ready
        events = {}
        with m.If(advance):
            reg = self.regions[g1.region]
            s2 = tile_step2(m, cfg, reg, {"ge": g1_ge, "off_o": g1_off_o, "off_i": g1_off_i})
            contribs = Mux(g1.phase, reg.store_contribs, reg.update_contribs)
            idx, in_range = counter_index(cfg, s2["origin"], g1.phase)
            counts = g1.tracked & s2["inside"] & (contribs != 0)
            m.d.sync += [g2_v.eq(1), g2.eq(g1), g2_track.eq(counts & in_range), g2_idx.eq(idx),
                         g2_thr.eq(s2["rows"] * s2["row_lines"] * contribs)]
            events = {"tile_outside": advance & g1.tracked & ~s2["inside"],
                      "threshold_zero": advance & g1.tracked & s2["inside"] & (contribs == 0),
                      "counter_range": advance & counts & ~in_range}
        return _LaneFront(g1_valid=g1_v, valid=g2_v, req=g2, track=g2_track, thr=g2_thr,
                          idx=g2_idx, events=events,
                          err_key=Cat(g1.wf_id, g1.phase, g1.region))

    def _select_lane(self, m: Module, fronts: list[_LaneFront], slot_free, sel: Signal,
                     admit: Signal) -> dict:
        """The memory-controller arbitration of the G2 heads: a head may be granted
        unless it is tracked and no fire slot is free; compute = the producer lane,
        communication = the link and DMA lanes merged round-robin; the MemoryArbiter
        picks one and holds a grant L cannot take yet. Drives ``sel`` (the granted lane)
        and returns the granted head's fields (``req``, ``track``, ``thr``, ``idx``)."""
        cfg = self.cfg
        lane_req = data.StructLayout({"req": tracked_request(cfg), "lane": range(LANES)})
        lane_streams = [stream.Signature(lane_req).create() for _ in range(LANES)]
        for k, (ls, f) in enumerate(zip(lane_streams, fronts)):
            m.d.comb += [ls.valid.eq(f.valid & (~f.track | slot_free)), ls.payload.req.eq(f.req),
                         ls.payload.lane.eq(k)]
        m.submodules.comm_merge = cm = StreamMerge(payload_shape=lane_req, n=LANES - 1)
        m.submodules.arbiter = arb = MemoryArbiter(
            payload_shape=lane_req, level_bits=len(self.queue_level), starve_bits=MCA_STARVE_BITS)
        wiring.connect(m, lane_streams[LANE_PRODUCER], arb.compute)
        for k in range(1, LANES):
            wiring.connect(m, lane_streams[k], cm.inputs()[k - 1])
        wiring.connect(m, cm.o, arb.comm)
        m.d.comb += [arb.policy.eq(self.policy), arb.queue_level.eq(self.queue_level),
                     arb.threshold.eq(self.threshold), arb.starve_limit.eq(self.starve_limit),
                     self.comm_wait_max.eq(arb.comm_wait_max),
                     self.starved_grants.eq(arb.starved_grants)]
        m.d.comb += [sel.eq(arb.out.payload.lane), admit.eq(arb.out.valid & arb.out.ready)]
        self._arb_out = arb.out
        return {"req": arb.out.payload.req, "lane": sel,
                **{name: _named(m, f"sel_{name}", _pick(sel, [getattr(f, name) for f in fronts]))
                   for name in ("track", "thr", "idx")}}

    def _lookup(self, m: Module, table: CountTable, fired: _FiredKeys, l_st: "_Stage",
                o_st: "_Stage", granted: dict, admit) -> tuple:
        """Stage L: takes the granted head (reading its set), decides hit/miss/count/fire
        (CountTable), writes back and moves the request to O when O is free. Returns the
        decision and ``leave`` (L's request moves to O this cycle)."""
        cfg = self.cfg
        o_free = ~o_st.valid | self.mem.ready
        set_addr = set_index(cfg, granted["idx"])
        l_set = Signal.like(set_addr, name="l_set")
        table.read(m, set_addr, admit)
        lk, victim = table.decide(m, valid=l_st.valid, track=l_st.track, idx=l_st.idx,
                                  thr=l_st.thr)
        leave = _named(m, "l_leave", lk.resolved & o_free)
        m.d.comb += self._arb_out.ready.eq(~l_st.valid | leave)
        table.write_back(m, lk, victim, leave=leave, set_addr=l_set, idx=l_st.idx,
                         occupancy=self.occupancy)
        with m.If(leave & lk.fire):
            fired.push(m, l_st.idx)
        with m.If(self.clear_history):
            m.d.sync += fired.valid.eq(0)
        with m.If(leave):
            m.d.sync += l_st.valid.eq(0)
            o_st.load(m, l_st, track=lk.counted, fire=lk.fire, hit=lk.hit, spill=lk.spill)
        with m.Elif(o_st.valid & self.mem.ready):
            m.d.sync += o_st.valid.eq(0)
        with m.If(admit):
            m.d.sync += [l_st.valid.eq(1), l_st.req.eq(granted["req"]), l_st.lane.eq(granted["lane"]),
                         l_st.track.eq(granted["track"]), l_st.thr.eq(granted["thr"]),
                         l_st.idx.eq(granted["idx"]), l_set.eq(set_addr)]
        return lk, leave

    def _output(self, m: Module, o: "_Stage", fire_q: _FireQueue) -> None:
        """Stage O drives ``mem``; the completing request pushes its fire when it is
        handed to memory (a slot was reserved for it when it was granted)."""
        xfer = self.mem.valid & self.mem.ready
        m.d.comb += [self.mem.valid.eq(o.valid), self.mem.payload.eq(o.req.mem),
                     self.mem_lane.eq(o.lane)]
        fire = Signal(fire_layout(self.cfg), name="o_fire_payload")
        m.d.comb += [fire.wf_id.eq(o.req.wf_id), fire.region.eq(o.req.region),
                     fire.phase.eq(o.req.phase)]
        fire_q.push(xfer & o.fire, fire)

    def _errors(self, m: Module, fronts: list[_LaneFront], l_st: "_Stage", lk, leave) -> None:
        """The sticky error flags and ERR_KEY: the first error's key; L's (the request
        leaving L) wins over the lanes' G2 entries of the same cycle."""
        events = {name: Signal(name=f"ev_{name}") for name in TRACKER_ERRORS.members}
        detail = Signal.like(self.err_key)
        front_ev = ("tile_outside", "threshold_zero", "counter_range")
        for f in fronts:
            with m.If(Cat(*(f.events[n] for n in front_ev)).any()):
                m.d.comb += detail.eq(f.err_key)
        for n in front_ev:
            m.d.comb += events[n].eq(Cat(*(f.events[n] for f in fronts)).any())
        over, refire = leave & lk.over, leave & lk.refire
        m.d.comb += [events["count_over"].eq(over), events["refire"].eq(refire)]
        with m.If(over | refire):
            m.d.comb += detail.eq(Cat(l_st.req.wf_id, l_st.req.phase, l_st.req.region))
        Sticky(m, self.err, self.err_key, clear=self.clear, events=events, detail_value=detail)

    def _status(self, m: Module, fronts, slot_free, l_st, o_st, lk, leave, fire_q) -> None:
        """Event counters, ``busy`` and the coverage probes."""
        xfer = self.mem.valid & self.mem.ready
        stalls = Cat(*(f.valid & f.track & ~slot_free for f in fronts))
        clr = self.clear_counters
        for name, event in (("tracked_reqs", xfer & o_st.track), ("fires", xfer & o_st.fire),
                            ("stall_cycles", stalls.any()), ("hits", leave & lk.hit),
                            ("misses", leave & lk.miss), ("fills", leave & lk.fill),
                            ("spills", leave & lk.spill)):
            count_event(m, getattr(self, name), event, clr)
        m.d.comb += self.busy.eq(self.fire.valid | l_st.valid | o_st.valid
                                 | Cat(*(f.valid | f.g1_valid for f in fronts)).any())
        m.d.comb += [self.probe.stall.eq(stalls), self.probe.track.eq(o_st.track),
                     self.probe.hit.eq(o_st.hit), self.probe.spill.eq(o_st.spill),
                     self.probe.key.eq(Cat(o_st.req.wf_id, o_st.req.phase))]


@dataclass(frozen=True)
class _Stage:
    """The registers of stage L or O: the request, its lane and what the tracker
    decided about it (``track``: counted; in L, tracked before the lookup; ``thr`` and
    ``idx`` are L's, ``fire``/``hit``/``spill`` O's)."""
    valid: Signal
    req: data.View
    lane: Signal
    track: Signal
    thr: Signal
    idx: Signal
    fire: Signal
    hit: Signal
    spill: Signal

    @classmethod
    def create(cls, m: Module, cfg: T3Config, p: str) -> "_Stage":
        return cls(valid=Signal(name=f"{p}_valid"),
                   req=Signal(tracked_request(cfg), name=f"{p}_req"),
                   lane=Signal(range(LANES), name=f"{p}_lane"), track=Signal(name=f"{p}_track"),
                   thr=Signal(2 * cfg.count_bits + spec.CONTRIB_BITS, name=f"{p}_thr"),
                   idx=Signal(cfg.tracker_counter_index_bits, name=f"{p}_idx"),
                   fire=Signal(name=f"{p}_fire"), hit=Signal(name=f"{p}_hit"),
                   spill=Signal(name=f"{p}_spill"))

    def load(self, m: Module, src: "_Stage", *, track, fire, hit, spill) -> None:
        """Take ``src``'s request with the decision about it (valid from next cycle)."""
        m.d.sync += [self.valid.eq(1), self.req.eq(src.req), self.lane.eq(src.lane),
                     self.track.eq(track), self.fire.eq(fire), self.hit.eq(hit),
                     self.spill.eq(spill)]


def _named(m: Module, name: str, value):
    """``value`` as a signal (a Signal is returned as is): later uses share one net
    instead of re-elaborating the expression at every use."""
    if isinstance(value, Signal) or (isinstance(value, data.View)
                                     and isinstance(Value.cast(value), Signal)):
        return value
    shape = value.shape()
    sig = Signal(shape, name=name)
    m.d.comb += sig.eq(value)
    return sig


def _pick(sel: Value, options: list):
    """``options[sel]`` for plain values and layout views alike."""
    first = options[0]
    if isinstance(first, data.View):
        return data.View(first.shape(), _pick(sel, [Value.cast(o) for o in options]))
    return Array(Value.cast(o) for o in options)[sel]


designs.register("t3_tracker", lambda cfg: TrackerTable(cfg=cfg))
