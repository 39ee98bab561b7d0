"""Tracker table: counts tracked memory requests per WF tile and fires complete tiles.

Sits INLINE on the path to memory, at the entry of the memory-controller queue, so a
counted update reaches memory before any DMA read of its tile (memory is program
ordered). Three input lanes, each in order: ``req[0]`` producer (the compute stream),
``req[1]`` link arrivals and ``req[2]`` DMA reads (untracked; the communication stream).
A lane stalled on a full table never blocks the others, whose requests may be exactly
the ones that complete live tiles.

Lane selection is the memory-controller arbitration (:class:`hw.arbiter.MemoryArbiter`):
compute = lane 0, communication = lanes 1 and 2 merged round-robin; ``policy`` selects
the plain round-robin baseline or T3-MCA (compute first; communication only while
``queue_level`` < ``threshold``; after ``starve_limit`` cycles of waiting, always).

Per lane, a two-step geometry pipeline (``G1``: tile offsets = small multipliers; ``G2``:
clipped tile size and threshold ``rows * row_lines * contribs``), then one shared lookup
stage ``S`` that is also the ``mem`` output: the lane head presented on ``mem`` is looked
up in the fully associative table (parallel compare of (phase, wf_id) against every live
entry) and its count is updated in the same cycle the request is handed to memory, so
back-to-back hits on one entry need no forwarding. When the count reaches the threshold,
the fire event {wf_id, region, phase} is loaded into the ``fire`` register in that same
cycle and the entry is freed; the DMA engine can only read the tile afterwards.

Entry format: ``valid`` (1) + key = ``phase`` (1) + ``wf_id`` (wf_id_bits) + ``count``
(count_bits). The threshold is recomputed from the region registers for every request,
so it is not stored. Table full and the head is a new key: that lane stalls (the other
lane proceeds), counted in ``stall_cycles``.

Errors (sticky, first offending key in ``err_key``; the flags are
``contract.errors.flags_of("tracker")``): ``tile_outside`` (wf_id's tile not in the
region), ``threshold_zero`` (contribs of the phase is 0), ``count_over`` (count passed the
threshold: only possible if the region changed under a live entry; the entry fires and
is freed), ``refire`` (a new key equal to one of the last ``history`` fired keys),
``overflow`` (the deadlock breaker sent a link request uncounted). Every such request is
applied to memory; only the ``count_over`` one is counted.

Code structure (each part one method, the lanes' heads typed as :class:`LaneHead`):

* :meth:`TrackerTable._lane_front_end`: per lane, G1/G2 and the head's key;
* :class:`_KeyCam`: the table: parallel lookup (hit vector, hit count), allocation of the
  lowest free entry, count update / free on fire;
* :meth:`TrackerTable._lane_head` (+ ``_refire``): per lane, the lookup stage: hit,
  refire (held while the head waits), counted or not, table-full stall, completes,
  ``can_go``;
* :meth:`TrackerTable._select_lane`: the arbitration, giving the granted head
  (:meth:`LaneHead.select`) and driving ``mem``;
* :meth:`TrackerTable._fire` (+ :class:`_FiredKeys`): the fire register and the history;
  ``_errors`` and ``_status``: the flags, counters, ``busy`` and the ``probe`` ports.

The design decisions that formal checks and tests break on purpose are small methods
(``_completes``, ``_needs_fire_room``, ``_deadlock_breaker``): the broken variants are
subclasses in verif/formal/mutants.py.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from amaranth.hdl import Array, Cat, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from contract import latency, spec
from contract.spec import COUNTER_BITS, MCA_STARVE_BITS, ConfigError, T3Config

from . import designs, layouts
from .addrmap import Sticky, count_event, tile_step1, tile_step2
from .layouts import fire_layout, regions_layout, tracked_request
from .arbiter import MemoryArbiter
from .component import T3Component
from .merge import StreamMerge

__all__ = ["TrackerTable", "TRACKER_ERRORS", "LANES", "LANE_PRODUCER", "LANE_LINK", "LANE_DMA",
           "key_layout", "probe_signature", "LaneHead"]

#: the tracker's sticky error flags (``err``/``clear``): contract.errors.flags_of("tracker")
TRACKER_ERRORS = layouts.error_flags("tracker")
LANES = 3                     # producer, link arrivals, DMA reads
LANE_PRODUCER, LANE_LINK, LANE_DMA = range(LANES)


def key_layout(cfg: T3Config) -> data.StructLayout:
    """An entry's key: the tile (``wf_id``) and the phase (UPDATE 0 / STORE 1)."""
    return data.StructLayout({"wf_id": cfg.wf_id_bits, "phase": 1})


def probe_signature(cfg: T3Config) -> wiring.Signature:
    """The tracker's coverage probes (``probe`` port group, from the tracker's view):
    what the functional coverage of the cocotb benches observes (verif/coverage.py). The
    design never reads them; they are ports so that a renamed net cannot silently break
    a probe (tests/test_coverage.py checks every probed name in the generated Verilog)."""
    return wiring.Signature({
        "stall": Out(LANES),             # bit k: lane k's head waits for a free entry
        "track": Out(1),                 # the request on `mem` is counted
        "hit": Out(1),                   # ... and updates a live entry (not a new one)
        "key": Out(key_layout(cfg)),     # ... of this key
    })


@dataclass(frozen=True)
class LaneHead:
    """One lane's head request in the lookup stage S, as the lane selection and the
    count/fire logic see it. Every field is one net of the tracker, named
    ``<field>_l<lane>``; the copy of the lane on ``mem`` (:meth:`select`) ``sel_<field>``."""
    g1_valid: Value       # G1 holds a request (the lane is busy)
    valid: Value          # G2 holds a request: the head
    req: data.View        # the head request (tracked_request)
    key: data.View        # its key (key_layout)
    hitvec: Value         # one-hot: the live entry holding the key
    hit: Value            # the key is live
    hit_count: Value      # that entry's count (0 on a miss)
    refire: Value         # a new key among the last fired ones: applied uncounted
    track: Value          # counted when handed to memory
    thr: Value            # the tile's threshold
    new: Value            # the entry's count after this request
    completes: Value      # the request completes its tile: it fires
    can_go: Value         # may be handed to memory this cycle
    stall: Value          # waits for a free entry (table full, new key)

    @classmethod
    def named(cls, m: Module, lane: int, **values) -> "LaneHead":
        """The head of lane ``lane``, every field a net (``<field>_l<lane>``)."""
        return cls(**{name: _named(m, f"{name}_l{lane}", v) for name, v in values.items()})

    @classmethod
    def select(cls, m: Module, lane: Value, heads: list["LaneHead"]) -> "LaneHead":
        """``heads[lane]``, field by field (nets ``sel_<field>``)."""
        return cls(**{f.name: _named(m, f"sel_{f.name}", _pick(lane, [getattr(h, f.name)
                                                                      for h in heads]))
                      for f in fields(cls)})


@dataclass(frozen=True)
class _LaneFront:
    """What a lane's front end (G1, G2) hands to the lookup stage."""
    g1_valid: Signal
    valid: Signal         # G2 holds the head
    ready: Value          # G2 takes a new request this cycle (empty, or its head leaves)
    req: data.View
    key: data.View
    track: Signal         # tracked, the tile in its region, contribs != 0
    thr: Signal           # the tile's threshold
    tile_outside: Value   # error events of the request moving G1 -> G2 ...
    threshold_zero: Value
    err_key: Value        # ... and its key (ERR_KEY)


class _KeyCam:
    """The table: ``valid`` + key + count per entry, compared in parallel (a CAM in
    flip-flops), lowest free entry allocated."""

    def __init__(self, m: Module, cfg: T3Config):
        n = cfg.tracker_entries
        self.valid = Signal(n, name="valid")
        self.keys = [Signal(key_layout(cfg), name=f"key{i}") for i in range(n)]
        self.counts = [Signal(cfg.count_bits, name=f"count{i}") for i in range(n)]
        self.any_free = ~self.valid.all()
        self.free_onehot = Signal(n, name="free_onehot")
        m.d.comb += self.free_onehot.eq(~self.valid & (self.valid + 1))   # lowest clear bit
        self._cfg = cfg

    def lookup(self, m: Module, lane: int, key) -> tuple[Signal, Value, Signal]:
        """(hit vector, hit, the hit entry's count or 0) of ``key``."""
        n = self._cfg.tracker_entries
        hitvec = Signal(n, name=f"hitvec{lane}")
        m.d.comb += hitvec.eq(Cat(*(self.valid[i] & (self.keys[i] == key) for i in range(n))))
        hit_count = Signal(self._cfg.count_bits, name=f"hit_count{lane}")
        m.d.comb += hit_count.eq(_or_reduce([Mux(hitvec[i], self.counts[i], 0)
                                             for i in range(n)]))
        return hitvec, hitvec.any(), hit_count

    def update(self, m: Module, h: LaneHead, xfer, fire_now, occupancy) -> None:
        """Count the granted head ``h`` when it is handed to memory (``xfer``): the hit
        entry takes the new count, or is freed when the head fires; a miss allocates the
        lowest free entry (unless it fires at once: a tile of one request)."""
        counted = xfer & h.track
        alloc = counted & ~h.hit & ~fire_now
        free = counted & h.hit & fire_now
        for i in range(self._cfg.tracker_entries):
            with m.If(counted & h.hitvec[i]):
                with m.If(fire_now):
                    m.d.sync += self.valid[i].eq(0)
                with m.Else():
                    m.d.sync += self.counts[i].eq(h.new)
            with m.If(alloc & self.free_onehot[i]):
                m.d.sync += [self.valid[i].eq(1), self.keys[i].eq(h.key),
                             self.counts[i].eq(h.new)]
        with m.If(alloc & ~free):
            m.d.sync += occupancy.eq(occupancy + 1)
        with m.If(free & ~alloc):
            m.d.sync += occupancy.eq(occupancy - 1)


class _FiredKeys:
    """The last ``depth`` fired keys (newest first), for the ``refire`` check."""

    def __init__(self, cfg: T3Config, depth: int):
        self.valid = Signal(depth, name="hist_v")
        self.keys = [Signal(key_layout(cfg), name=f"hist{j}") for j in range(depth)]

    def recent(self, key) -> Value:
        """``key`` is one of the remembered keys."""
        return Cat(*(self.valid[j] & (self.keys[j] == key) for j in range(len(self.keys)))).any()

    def push(self, m: Module, key) -> None:
        """Remember ``key`` (under the caller's condition); the oldest is forgotten."""
        m.d.sync += [self.valid.eq(Cat(1, self.valid[:-1])), self.keys[0].eq(key)]
        m.d.sync += [self.keys[j].eq(self.keys[j - 1]) for j in range(1, len(self.keys))]


class TrackerTable(T3Component):
    """The tracker: counts tracked memory requests per WF tile and fires complete tiles
    (docs/tracker.md; the structure is in the module doc).

    Three input lanes, each in order, share one table and one ``mem`` output; a lane
    whose head needs a new entry while the table is full stalls without blocking the
    others. A request is counted in the cycle it is handed to memory, and the request
    that completes its tile loads ``fire`` in that same cycle.

    Latency (no stall): :data:`contract.latency.TRACKER` (2) cycles from acceptance on
    ``req[k]`` to ``mem.valid``; :data:`contract.latency.TRACKER_FIRE` (3) from acceptance
    of the completing request to ``fire.valid``. One request per cycle in total.

    Parameters
    ----------
    cfg : T3Config
        ``tracker_entries``, ``wf_outer_bits``/``wf_inner_bits`` (the key), ``count_bits``,
        ``regions``, ``mem_queue_depth`` (the arbitration levels) and the request layout.
    history : int
        Fired keys remembered for the ``refire`` check, 1..64 (default 8).

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
        was handed to ``mem`` (a one-entry register; only a completing request waits
        for its room).
    regions : In(regions_layout(cfg))
        The region registers: tile geometry and contribs per phase give the threshold.
    policy : In(1)
        Memory-controller arbitration policy (:class:`hw.arbiter.Policy`): compute =
        lane 0, communication = lanes 1 and 2 merged round-robin.
    queue_level, threshold : In(range(mem_queue_depth + 1)) each
        The memory queue's occupancy, and the MCA threshold below which communication
        may issue (:class:`hw.arbiter.MemoryArbiter`).
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
        Forget the fired keys (between GEMMs that reuse WF ids).
    occupancy : Out(range(tracker_entries + 1))
        Live entries.
    busy : Out(1)
        A request is in a lane's pipeline or a fire waits.
    tracked_reqs, fires, stall_cycles : Out(COUNTER_BITS) each
        Counted requests, fired tiles, cycles in which some lane stalled on a full
        table (wrapping).
    clear_counters : In(1)
        Zero the three counters (wins over a count in the same cycle).
    probe : Out(probe_signature(cfg))
        Coverage probes (not used by the design): ``stall`` per lane; ``track``,
        ``hit`` and ``key`` of the request on ``mem``.
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
            "tracked_reqs": Out(COUNTER_BITS),
            "fires": Out(COUNTER_BITS),
            "stall_cycles": Out(COUNTER_BITS),
            "policy": In(1),
            "queue_level": In(range(cfg.mem_queue_depth + 1)),
            "threshold": In(range(cfg.mem_queue_depth + 1)),
            "starve_limit": In(MCA_STARVE_BITS),
            "comm_wait_max": Out(MCA_STARVE_BITS + 1),
            "starved_grants": Out(COUNTER_BITS),
            "mem_lane": Out(range(LANES)),
            "probe": Out(probe_signature(cfg)),
        })

    @property
    def history(self) -> int:
        """Fired keys remembered for the ``refire`` check."""
        return self._history

    @property
    def entries(self) -> int:
        return self.cfg.tracker_entries

    @property
    def entry_bits(self) -> int:
        """Bits per entry: valid + phase + wf_id + count."""
        return 1 + 1 + self.cfg.wf_id_bits + self.cfg.count_bits

    @property
    def storage_bits(self) -> int:
        """Bits of table state (entries x entry_bits); the fired-key history and the
        pipeline registers are not included."""
        return self.entries * self.entry_bits

    @property
    def latency(self) -> int:
        """Cycles from a request's acceptance on ``req`` to ``mem.valid`` (no stall)."""
        return latency.TRACKER

    @property
    def fire_latency(self) -> int:
        """Cycles from acceptance of the completing request to ``fire.valid``."""
        return latency.TRACKER_FIRE

    # ---- design decisions a broken variant overrides (verif/formal/mutants.py) ---------

    def _completes(self, count_after, threshold) -> Value:
        """The request completes its tile: the entry's count after it reaches the tile's
        threshold (``>=``: a count past it, after the region was reprogrammed under a live
        entry, fires too and raises ``count_over``)."""
        return count_after >= threshold

    def _needs_fire_room(self, completes) -> Value:
        """A counted request waits for room in the fire register only if it fires: one
        that does not complete its tile must never wait on the DMA (making every tracked
        request wait closed a wait cycle around the 4-device ring: each DMA queue full,
        each DMA waiting on its link, each link on a tracker whose non-completing head
        waited for fire room)."""
        return completes

    def _deadlock_breaker(self, producer_stall, link_stall) -> Value:
        """Send the link head to memory uncounted (and raise ``overflow``): the table is
        full and both the producer and the link heads need a new entry. The live tiles
        wait for requests queued behind those heads, so nothing could ever move; the
        link head's tile will not fire (software must size the table or recover)."""
        return producer_stall & link_stall

    # ---- hardware -------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        cam = _KeyCam(m, self.cfg)
        fired_keys = _FiredKeys(self.cfg, self._history)
        fire_valid = Signal()
        fire_room = ~fire_valid | self.fire.ready
        sel = Signal(range(LANES))       # the lane of the request on `mem`
        xfer = Signal()                  # ... and it is taken this cycle
        fronts = [self._lane_front_end(m, k, taken=xfer & (sel == k)) for k in range(LANES)]
        breaker = Signal()
        heads = [self._lane_head(m, k, fronts[k], cam, fired_keys, fire_room,
                                 uncounted=breaker if k == LANE_LINK else None)
                 for k in range(LANES)]
        m.d.comb += breaker.eq(self._deadlock_breaker(heads[LANE_PRODUCER].stall,
                                                      heads[LANE_LINK].stall))
        granted = self._select_lane(m, heads, sel, xfer)
        fire_now = self._fire(m, granted, xfer, fire_valid, fired_keys)
        cam.update(m, granted, xfer, fire_now, self.occupancy)
        self._errors(m, fronts, granted, over=xfer & granted.track & (granted.new > granted.thr),
                     refire=xfer & granted.refire, overflow=xfer & (sel == LANE_LINK) & breaker)
        self._status(m, heads, granted, xfer, fire_now, fire_valid)
        return m

    def _lane_front_end(self, m: Module, k: int, *, taken) -> _LaneFront:
        """Lane ``k``'s geometry pipeline: G1 = the tile's offsets in its region (small
        multipliers), G2 = the clipped tile size and threshold ``rows * row_lines *
        contribs`` (both from hw.addrmap's tile_step1/2, the formulas of
        contract.program.Region.tile). G2 holds the lane's head until ``taken``."""
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
        with m.If(advance):
            reg = self.regions[g1.region]
            s2 = tile_step2(m, cfg, reg, {"ge": g1_ge, "off_o": g1_off_o, "off_i": g1_off_i})
            contribs = Mux(g1.phase, reg.store_contribs, reg.update_contribs)
            m.d.sync += [g2_v.eq(1), g2.eq(g1),
                         g2_track.eq(g1.tracked & s2["inside"] & (contribs != 0)),
                         g2_thr.eq(s2["rows"] * s2["row_lines"] * contribs)]
            tile_outside = advance & g1.tracked & ~s2["inside"]
            threshold_zero = advance & g1.tracked & s2["inside"] & (contribs == 0)
        key = Signal(key_layout(cfg), name=f"key_l{k}")
        m.d.comb += key.eq(Cat(g2.wf_id, g2.phase))
        return _LaneFront(g1_valid=g1_v, valid=g2_v, ready=g2_ready, req=g2, key=key,
                          track=g2_track, thr=g2_thr, tile_outside=tile_outside,
                          threshold_zero=threshold_zero,
                          err_key=Cat(g1.wf_id, g1.phase, g1.region))

    def _lane_head(self, m: Module, k: int, front: _LaneFront, cam: _KeyCam,
                   fired_keys: _FiredKeys, fire_room, *, uncounted) -> LaneHead:
        """Lane ``k``'s head in the lookup stage: its key looked up in the table, whether
        it is counted, and whether it may go to memory this cycle (``can_go``). Every
        lane's head is looked up every cycle, so a head that must wait (a miss on a full
        table) yields to the other lanes at once; only the granted one updates the table.
        ``uncounted`` (the deadlock breaker, link lane only) sends the head uncounted."""
        cfg = self.cfg
        hitvec, hit, hit_count = cam.lookup(m, k, front.key)
        refire = self._refire(m, k, front, hit, fired_keys.recent(front.key))
        track = front.track & ~refire
        stall = front.valid & track & ~hit & ~cam.any_free
        if uncounted is not None:
            track = track & ~uncounted
        new = Signal(cfg.count_bits + 1, name=f"new_l{k}")      # count after this one
        m.d.comb += new.eq(Mux(hit, hit_count, 0) + 1)
        completes = _named(m, f"completes_l{k}", self._completes(new, front.thr))
        can_go = Signal(name=f"can_go{k}")
        m.d.comb += can_go.eq(front.valid & (~track | ((hit | cam.any_free)
                                                       & (~self._needs_fire_room(completes)
                                                          | fire_room))))
        return LaneHead.named(m, k, g1_valid=front.g1_valid, valid=front.valid, req=front.req,
                              key=front.key, hitvec=hitvec, hit=hit, hit_count=hit_count,
                              refire=refire, track=track, thr=front.thr, new=new,
                              completes=completes, can_go=can_go, stall=stall)

    def _refire(self, m: Module, k: int, front: _LaneFront, hit, recent) -> Value:
        """The head is a new key that fired recently: applied uncounted (``refire``). A
        head once seen as a refire stays one until it leaves (``refire_hold``): the
        history can shift (fires) or be cleared (CMD.clear_history) while it waits, and
        a presented request must not turn into one that needs a free entry (its valid
        would drop: found by verif/formal/streams.py)."""
        hold = Signal(name=f"refire_hold{k}")
        refire = front.track & ~hit & (recent | hold)
        with m.If(front.ready):
            m.d.sync += hold.eq(0)
        with m.Elif(refire):
            m.d.sync += hold.eq(1)
        return refire

    def _select_lane(self, m: Module, heads: list[LaneHead], sel: Signal, xfer: Signal) -> LaneHead:
        """The memory-controller arbitration: each lane head is a stream (valid =
        ``can_go``); compute = the producer lane, communication = the link and DMA lanes
        merged round-robin; the MemoryArbiter picks one and holds a stalled grant. The
        lane index travels with the request through the merge and the arbiter, so ``sel``
        (and ``mem_lane``) is held with a presented grant like the payload itself.
        Drives ``sel`` and ``xfer`` (the request on ``mem`` is taken); returns its head."""
        cfg = self.cfg
        lane_req = data.StructLayout({"req": tracked_request(cfg), "lane": range(LANES)})
        lane_streams = [stream.Signature(lane_req).create() for _ in range(LANES)]
        for k, (ls, hd) in enumerate(zip(lane_streams, heads)):
            m.d.comb += [ls.valid.eq(hd.can_go), ls.payload.req.eq(hd.req),
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
        m.d.comb += sel.eq(arb.out.payload.lane)
        granted = arb.out.payload.req
        m.d.comb += [self.mem.valid.eq(arb.out.valid), arb.out.ready.eq(self.mem.ready),
                     self.mem.payload.eq(granted.mem),
                     self.mem_lane.eq(sel)]
        m.d.comb += xfer.eq(self.mem.valid & self.mem.ready)
        return LaneHead.select(m, sel, heads)

    def _fire(self, m: Module, h: LaneHead, xfer, fire_valid: Signal,
              fired_keys: _FiredKeys) -> Value:
        """The fire register: loaded by the granted head ``h`` when it completes its tile
        in the cycle it is handed to memory (so the DMA reads the tile only after it), and
        emptied by ``fire.ready``; the fired key enters the history. Returns the fire."""
        m.d.comb += self.fire.valid.eq(fire_valid)
        with m.If(self.fire.valid & self.fire.ready):
            m.d.sync += fire_valid.eq(0)
        fire_now = xfer & h.track & h.completes
        with m.If(fire_now):
            m.d.sync += [fire_valid.eq(1), self.fire.payload.wf_id.eq(h.req.wf_id),
                         self.fire.payload.region.eq(h.req.region),
                         self.fire.payload.phase.eq(h.req.phase)]
            fired_keys.push(m, h.key)
        with m.If(self.clear_history):
            m.d.sync += fired_keys.valid.eq(0)
        return fire_now

    def _errors(self, m: Module, fronts: list[_LaneFront], h: LaneHead, *, over, refire,
                overflow) -> None:
        """The sticky error flags and ERR_KEY: the first error's key; the lookup stage's
        (``h``, the head on ``mem``) wins over the lanes' G2 entries of the same cycle."""
        events = {name: Signal(name=f"ev_{name}") for name in TRACKER_ERRORS.members}
        detail = Signal.like(self.err_key)
        for front in fronts:
            with m.If(front.tile_outside | front.threshold_zero):
                m.d.comb += detail.eq(front.err_key)
        m.d.comb += [events["tile_outside"].eq(Cat(*(f.tile_outside for f in fronts)).any()),
                     events["threshold_zero"].eq(Cat(*(f.threshold_zero for f in fronts)).any()),
                     events["count_over"].eq(over), events["refire"].eq(refire),
                     events["overflow"].eq(overflow)]
        with m.If(over | refire | overflow):
            m.d.comb += detail.eq(Cat(h.req.wf_id, h.req.phase, h.req.region))
        Sticky(m, self.err, self.err_key, clear=self.clear, events=events, detail_value=detail)

    def _status(self, m: Module, heads: list[LaneHead], h: LaneHead, xfer, fire_now,
                fire_valid) -> None:
        """Event counters, ``busy`` and the coverage probes."""
        stalls = Cat(*(hd.stall for hd in heads))
        count_event(m, self.tracked_reqs, xfer & h.track, self.clear_counters)
        count_event(m, self.fires, fire_now, self.clear_counters)
        count_event(m, self.stall_cycles, stalls.any(), self.clear_counters)
        m.d.comb += self.busy.eq(fire_valid | Cat(*(hd.valid | hd.g1_valid for hd in heads)).any())
        m.d.comb += [self.probe.stall.eq(stalls), self.probe.track.eq(h.track),
                     self.probe.hit.eq(h.hit), self.probe.key.eq(h.key)]


def _or_reduce(values: list[Value]) -> Value:
    """Balanced OR tree (the one-hot read mux of the table)."""
    while len(values) > 1:
        values = [values[i] | values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


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
