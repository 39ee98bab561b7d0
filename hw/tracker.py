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

Errors (sticky, first offending key in ``err_key``): ``tile_outside`` (wf_id's tile not in
the region), ``threshold_zero`` (contribs of the phase is 0), ``count_over`` (count passed
the threshold: only possible if the region changed under a live entry; the entry fires
and is freed), ``refire`` (a new key equal to one of the last ``history`` fired keys). The
first three requests are applied to memory but not counted.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from contract import spec
from contract.spec import ConfigError, T3Config

from . import designs, layouts
from .arbiter import MemoryArbiter
from .merge import StreamMerge
from .addrmap import (COUNTER_BITS, Sticky, check_cfg, count_event, fire_layout, regions_layout,
                      tile_step1, tile_step2, tracked_request)

__all__ = ["TrackerTable", "TRACKER_ERRORS"]

TRACKER_ERRORS = data.StructLayout({"tile_outside": 1, "threshold_zero": 1, "count_over": 1,
                                    "refire": 1, "overflow": 1})
LANES = 3                     # producer, link arrivals, DMA reads
LANE_PRODUCER, LANE_LINK, LANE_DMA = range(LANES)
STARVE_BITS = spec.MCA_STARVE_BITS


def key_layout(cfg: T3Config) -> data.StructLayout:
    return data.StructLayout({"wf_id": cfg.wf_id_bits, "phase": 1})


class TrackerTable(wiring.Component):
    """The tracker (see the module doc). ``history``: fired keys remembered for the
    ``refire`` check (>= 1)."""

    LATENCY = 2          # req accepted -> mem.valid
    FIRE_LATENCY = 3     # completing req accepted -> fire.valid

    # Mutation hooks for the formal tests (verif/formal/tracker.py): a subclass that
    # changes one is deliberately broken and must be caught. Defaults = the design.
    _deadlock_breaker = True
    _fire_early = False          # True: fire one count early (count == threshold - 1)
    _fire_room_for_all = False   # True: every tracked request waits for fire-register room

    def __init__(self, *, cfg: T3Config, history: int = 8):
        self._cfg = check_cfg("TrackerTable", cfg)
        if not isinstance(history, int) or not 1 <= history <= 64:
            raise ConfigError(f"TrackerTable: history={history!r}: must be an integer in [1, 64]")
        self._history = history
        super().__init__({
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
            # memory-controller arbitration (hw.arbiter.MemoryArbiter)
            "policy": In(1),
            "queue_level": In(range(cfg.mem_queue_depth + 1)),
            "threshold": In(range(cfg.mem_queue_depth + 1)),
            "starve_limit": In(STARVE_BITS),
            "comm_wait_max": Out(STARVE_BITS + 1),
            "starved_grants": Out(COUNTER_BITS),
            # sideband: the lane (LANE_*) of the request on `mem`, valid with mem.valid
            "mem_lane": Out(range(LANES)),
        })

    @property
    def cfg(self) -> T3Config:
        return self._cfg

    @property
    def entries(self) -> int:
        return self._cfg.tracker_entries

    @property
    def entry_bits(self) -> int:
        """Bits per entry: valid + phase + wf_id + count."""
        return 1 + 1 + self._cfg.wf_id_bits + self._cfg.count_bits

    @property
    def storage_bits(self) -> int:
        """Bits of table state (entries x entry_bits); the fired-key history and the
        pipeline registers are not included."""
        return self.entries * self.entry_bits

    @property
    def latency(self) -> int:
        """Cycles from a request's acceptance on ``req`` to ``mem.valid`` (no stall)."""
        return self.LATENCY

    @property
    def fire_latency(self) -> int:
        """Cycles from acceptance of the completing request to ``fire.valid``."""
        return self.FIRE_LATENCY

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        n = cfg.tracker_entries
        kl = key_layout(cfg)
        thr_bits = 2 * cfg.count_bits + spec.CONTRIB_BITS

        # ---- table state --------------------------------------------------------------
        valid = Signal(n)
        keys = [Signal(kl, name=f"key{i}") for i in range(n)]
        counts = [Signal(cfg.count_bits, name=f"count{i}") for i in range(n)]
        hist_v = Signal(self._history)
        hist = [Signal(kl, name=f"hist{j}") for j in range(self._history)]
        any_free = ~valid.all()
        free_onehot = Signal(n)
        m.d.comb += free_onehot.eq(~valid & (valid + 1))   # lowest clear bit of `valid`

        fire_valid = Signal()
        fire_room = ~fire_valid | self.fire.ready
        m.d.comb += self.fire.valid.eq(fire_valid)
        with m.If(self.fire.valid & self.fire.ready):
            m.d.sync += fire_valid.eq(0)

        events = {name: Signal(name=f"ev_{name}") for name in TRACKER_ERRORS.members}
        detail = Signal.like(self.err_key)

        # ---- per-lane geometry pipelines --------------------------------------------
        xfer = Signal()
        sel = Signal(range(LANES))
        heads = []
        lane_ev = {"tile_outside": [], "threshold_zero": []}
        breaker = Signal()
        for k in range(LANES):
            src = self.req[k]
            g1_v, g2_v = Signal(name=f"g1_v{k}"), Signal(name=f"g2_v{k}")
            g1 = Signal(tracked_request(cfg), name=f"g1_req{k}")
            g2 = Signal(tracked_request(cfg), name=f"g2_req{k}")
            g1_ge = Signal(name=f"g1_ge{k}")
            g1_off_o = Signal(cfg.wf_outer_bits + cfg.count_bits, name=f"g1_off_o{k}")
            g1_off_i = Signal(cfg.wf_inner_bits + cfg.count_bits, name=f"g1_off_i{k}")
            g2_track = Signal(name=f"g2_track{k}")
            g2_thr = Signal(thr_bits, name=f"g2_thr{k}")
            g2_ready = ~g2_v | (xfer & (sel == k))
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
            with m.If(g1_v & g2_ready):
                reg = self.regions[g1.region]
                s2 = tile_step2(m, cfg, reg, {"ge": g1_ge, "off_o": g1_off_o, "off_i": g1_off_i})
                contribs = Mux(g1.phase, reg.store_contribs, reg.update_contribs)
                outside = g1_v & g2_ready & g1.tracked & ~s2["inside"]
                zero = g1_v & g2_ready & g1.tracked & s2["inside"] & (contribs == 0)
                m.d.sync += [g2_v.eq(1), g2.eq(g1),
                             g2_track.eq(g1.tracked & s2["inside"] & (contribs != 0)),
                             g2_thr.eq(s2["rows"] * s2["row_lines"] * contribs)]
                lane_ev["tile_outside"].append(outside)
                lane_ev["threshold_zero"].append(zero)
                with m.If(outside | zero):
                    m.d.comb += detail.eq(Cat(g1.wf_id, g1.phase, g1.region))

            # lookup of this lane's head
            key = Signal(kl, name=f"key_l{k}")
            m.d.comb += key.eq(Cat(g2.wf_id, g2.phase))
            hitvec = Signal(n, name=f"hitvec{k}")
            m.d.comb += hitvec.eq(Cat(*(valid[i] & (keys[i] == key) for i in range(n))))
            hit = hitvec.any()
            hit_count = Signal(cfg.count_bits, name=f"hit_count{k}")
            m.d.comb += hit_count.eq(_or_reduce([Mux(hitvec[i], counts[i], 0) for i in range(n)]))
            recent = Cat(*(hist_v[j] & (hist[j] == key) for j in range(self._history))).any()
            # A head once seen as a refire stays one until it leaves: the history can
            # shift (fires) or be cleared (CMD.clear_history) while it waits, and a
            # presented request must not turn into one that needs a free entry (its
            # valid would drop: found by verif/formal/streams.py).
            refire_hold = Signal(name=f"refire_hold{k}")
            refire = g2_track & ~hit & (recent | refire_hold)
            with m.If(g2_ready):
                m.d.sync += refire_hold.eq(0)
            with m.Elif(refire):
                m.d.sync += refire_hold.eq(1)
            track = g2_track & ~refire
            stall = g2_v & track & ~hit & ~any_free
            if k == LANE_LINK:
                # Deadlock breaker: the table is full and BOTH the producer and the link
                # heads need a new entry; the live tiles wait for requests queued behind
                # those heads, so nothing could ever move. The link head goes to memory
                # uncounted and raises the sticky `overflow` flag with its key (its tile
                # will not fire: software must size the table or recover).
                if self._deadlock_breaker:
                    m.d.comb += breaker.eq(heads[LANE_PRODUCER]["stall"] & stall)
                track = track & ~breaker
            # Only a request that completes its tile loads the fire register, so only that
            # one waits for room there. Making every tracked request wait stalled the
            # 4-device ring: each DMA queue full, each DMA waiting on its link, each link
            # waiting on a tracker whose non-completing head waited for fire room.
            new_k = Signal(cfg.count_bits + 1, name=f"new_l{k}")     # count after this one
            m.d.comb += new_k.eq(Mux(hit, hit_count, 0) + 1)
            completes = _named(m, f"completes_l{k}",
                               (new_k + 1 if self._fire_early else new_k) >= g2_thr)
            can_go = Signal(name=f"can_go{k}")
            needs_room = Const(1) if self._fire_room_for_all else completes
            m.d.comb += can_go.eq(g2_v & (~track | ((hit | any_free) & (~needs_room | fire_room))))
            heads.append({name: _named(m, f"{name}_l{k}", v) for name, v in dict(
                g1v=g1_v, v=g2_v, req=g2, key=key, hitvec=hitvec, hit=hit, hit_count=hit_count,
                refire=refire, track=track, thr=g2_thr, new=new_k, completes=completes,
                can_go=can_go, stall=stall).items()})

        # ---- lane selection = memory-controller arbitration ---------------------------
        # Each lane head is a stream (valid = can_go); compute = lane 0, communication =
        # lanes 1 and 2 round-robin; the MemoryArbiter picks and holds a stalled grant.
        # The lane index travels with the request through the merge and the arbiter, so
        # `mem_lane` is held with a presented (stalled) grant like the payload itself.
        lane_req = data.StructLayout({"req": tracked_request(cfg), "lane": range(LANES)})
        lane_streams = [stream.Signature(lane_req).create() for _ in range(LANES)]
        for k, (ls, hd) in enumerate(zip(lane_streams, heads)):
            m.d.comb += [ls.valid.eq(hd["can_go"]), ls.payload.req.eq(hd["req"]),
                         ls.payload.lane.eq(k)]
        m.submodules.comm_merge = cm = StreamMerge(payload_shape=lane_req, n=LANES - 1)
        m.submodules.arbiter = arb = MemoryArbiter(
            payload_shape=lane_req, level_bits=len(self.queue_level), starve_bits=STARVE_BITS)
        wiring.connect(m, lane_streams[LANE_PRODUCER], arb.compute)
        for k in range(1, LANES):
            wiring.connect(m, lane_streams[k], cm.inputs()[k - 1])
        wiring.connect(m, cm.o, arb.comm)
        m.d.comb += [arb.policy.eq(self.policy), arb.queue_level.eq(self.queue_level),
                     arb.threshold.eq(self.threshold), arb.starve_limit.eq(self.starve_limit),
                     self.comm_wait_max.eq(arb.comm_wait_max),
                     self.starved_grants.eq(arb.starved_grants)]
        # the lane of the request on `mem` (it travels with the request, so it is also
        # stable while a grant is stalled): selects the head whose count is updated
        m.d.comb += sel.eq(arb.out.payload.lane)
        h = {name: _named(m, f"sel_{name}", _pick(sel, [hd[name] for hd in heads]))
             for name in heads[0]}
        granted = arb.out.payload.req
        m.d.comb += [self.mem.valid.eq(arb.out.valid), arb.out.ready.eq(self.mem.ready),
                     self.mem.payload.op.eq(granted.op),
                     self.mem.payload.addr.eq(granted.addr),
                     self.mem.payload.mask.eq(granted.mask),
                     self.mem.payload.data.eq(granted.data),
                     self.mem_lane.eq(sel)]
        m.d.comb += xfer.eq(self.mem.valid & self.mem.ready)

        # ---- count update / allocation / fire ---------------------------------------
        new = h["new"]
        fire_now = xfer & h["track"] & h["completes"]
        over = xfer & h["track"] & (new > h["thr"])
        alloc = xfer & h["track"] & ~h["hit"] & ~fire_now
        free = xfer & h["track"] & h["hit"] & fire_now
        for i in range(n):
            with m.If(xfer & h["track"] & h["hitvec"][i]):
                with m.If(fire_now):
                    m.d.sync += valid[i].eq(0)
                with m.Else():
                    m.d.sync += counts[i].eq(new)
            with m.If(alloc & free_onehot[i]):
                m.d.sync += [valid[i].eq(1), keys[i].eq(h["key"]), counts[i].eq(new)]
        with m.If(alloc & ~free):
            m.d.sync += self.occupancy.eq(self.occupancy + 1)
        with m.If(free & ~alloc):
            m.d.sync += self.occupancy.eq(self.occupancy - 1)
        with m.If(fire_now):
            m.d.sync += [fire_valid.eq(1), self.fire.payload.wf_id.eq(h["req"].wf_id),
                         self.fire.payload.region.eq(h["req"].region),
                         self.fire.payload.phase.eq(h["req"].phase),
                         hist_v.eq(Cat(1, hist_v[:-1]))]
            m.d.sync += [hist[0].eq(h["key"])] + [hist[j].eq(hist[j - 1])
                                                  for j in range(1, self._history)]
        with m.If(self.clear_history):
            m.d.sync += hist_v.eq(0)

        for name, evs in lane_ev.items():
            m.d.comb += events[name].eq(Cat(*evs).any())
        refire_ev = xfer & h["refire"]
        overflow_ev = xfer & (sel == LANE_LINK) & breaker
        m.d.comb += [events["count_over"].eq(over), events["refire"].eq(refire_ev),
                     events["overflow"].eq(overflow_ev)]
        with m.If(over | refire_ev | overflow_ev):
            m.d.comb += detail.eq(Cat(h["req"].wf_id, h["req"].phase, h["req"].region))
        Sticky(m, self.err, self.err_key, clear=self.clear, events=events, detail_value=detail)

        count_event(m, self.tracked_reqs, xfer & h["track"], self.clear_counters)
        count_event(m, self.fires, fire_now, self.clear_counters)
        count_event(m, self.stall_cycles, Cat(*(hd["stall"] for hd in heads)).any(),
                    self.clear_counters)
        m.d.comb += self.busy.eq(fire_valid | Cat(*(hd["v"] | hd["g1v"] for hd in heads)).any())
        return m


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
