"""Track & trigger unit for block-level integration: address map, tracker, DMA and CSRs.

::

    producer ──► AddressMap ──local[0]──► TrackerTable ──mem──► (memory queue)
    ingress  ──►            ──local[1]──►  (+ MCA)   ─fire─┐
                            ──remote────┐      ▲ req[2]    ▼
                                        │      └──rd── DmaEngine ◄── DMA_KICK (CSR)
                                        ▼                  │
                             egress ◄─ merge ◄── dma.link ─┘      mem_resp ──► dma.resp

``mem`` carries every local request in the order it must be applied: the tracker's three
lanes (producer, link arrivals, DMA READs) are arbitrated by the memory-controller
arbiter (``ARB`` register: plain round-robin or MCA) at the tracker's output; a fire is
raised only after its last update left the tracker, so every DMA READ of a tile
follows the updates that completed it. ``queue_level`` is the occupancy of the memory
queue behind ``mem`` (the MCA threshold compares against it). ``mem_lane`` (sideband,
valid with ``mem.valid``) is the tracker lane of the request on ``mem``
(``hw.tracker.LANE_*``): the unit uses it to tell producer READs (background GEMM
traffic, whose responses it discards) from DMA READs.
``mem_resp`` answers the DMA's READs in order (only those). ``egress`` merges REMOTE
producer stores and DMA packets round-robin. ``csr_req``/``csr_resp``: the register bus
(docs/regmap.md). ``irq``: any sticky error flag is set.

Trigger latency (no backpressure): the last update accepted on ``producer`` or
``ingress`` in cycle t gives the first DMA READ on ``mem`` in cycle t + ``trigger_latency``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out, connect

from contract import regmap
from contract.spec import T3Config

from . import designs, layouts
from .addrmap import AddressMap, check_cfg, count_event, fire_layout
from .csr import Csr, csr_request, csr_response
from .dma import DmaEngine
from .merge import StreamMerge
from .tracker import LANE_DMA, LANES, TrackerTable

__all__ = ["TrackTrigger"]


class TrackTrigger(wiring.Component):
    """The track & trigger unit (see the module doc)."""

    def __init__(self, *, cfg: T3Config):
        self._cfg = check_cfg("TrackTrigger", cfg)
        regmap.registers(cfg)       # ConfigError now if the register map does not fit
        super().__init__({
            "producer": In(stream.Signature(layouts.producer_request(cfg))),
            "ingress": In(stream.Signature(layouts.link_packet(cfg))),
            "mem": Out(stream.Signature(layouts.memory_request(cfg))),
            "mem_lane": Out(range(LANES)),
            "mem_resp": In(stream.Signature(layouts.memory_response(cfg))),
            "egress": Out(stream.Signature(layouts.link_packet(cfg))),
            "csr_req": In(stream.Signature(csr_request(cfg))),
            "csr_resp": Out(stream.Signature(csr_response(cfg))),
            "irq": Out(1),
            "queue_level": In(range(cfg.mem_queue_depth + 1)),
        })

    @property
    def cfg(self) -> T3Config:
        return self._cfg

    @property
    def trigger_latency(self) -> int:
        """Cycles from the completing update's acceptance on ``producer``/``ingress`` to
        the tile's first READ on ``mem`` (no backpressure): address map + tracker fire
        + DMA issue + the READ's pass through the tracker lane."""
        # the DMA READ passes the tracker's lane pipeline (its third lane) to reach `mem`
        return (AddressMap.LATENCY + TrackerTable.FIRE_LATENCY + DmaEngine.ISSUE_LATENCY
                + TrackerTable.LATENCY)

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        m.submodules.amap = amap = AddressMap(cfg=cfg)
        m.submodules.tracker = trk = TrackerTable(cfg=cfg)
        m.submodules.dma = dma = DmaEngine(cfg=cfg)
        m.submodules.csr = csr = Csr(cfg=cfg)
        ctrl, pulse, st, errs, clr = csr.ctrl, csr.pulse, csr.status, csr.errors, csr.err_clear
        m.submodules.egress_merge = em = StreamMerge(payload_shape=layouts.link_packet(cfg), n=2)

        connect(m, wiring.flipped(self.producer), amap.producer)
        connect(m, wiring.flipped(self.ingress), amap.ingress)
        for k in range(2):
            connect(m, amap.local[k], trk.req[k])
        # DMA READs enter the tracker's third lane (untracked) so that the memory-controller
        # arbiter sees every request
        rd = trk.req[LANE_DMA]
        m.d.comb += [rd.valid.eq(dma.rd.valid), dma.rd.ready.eq(rd.ready),
                     rd.payload.op.eq(dma.rd.payload.op), rd.payload.addr.eq(dma.rd.payload.addr),
                     rd.payload.mask.eq(dma.rd.payload.mask), rd.payload.data.eq(dma.rd.payload.data),
                     rd.payload.tracked.eq(0)]
        connect(m, trk.mem, wiring.flipped(self.mem))
        m.d.comb += self.mem_lane.eq(trk.mem_lane)
        connect(m, wiring.flipped(self.mem_resp), dma.resp)
        # fires: the tracker's, and software kicks of a whole region (one pending at most)
        m.submodules.fire_merge = fm = StreamMerge(payload_shape=fire_layout(cfg), n=2)
        connect(m, trk.fire, fm.i0)
        connect(m, fm.o, dma.fire)
        kick_pending = Signal()
        kick_overflow = Signal()
        kick = csr.pulse
        m.d.comb += [fm.i1.valid.eq(kick_pending)]
        with m.If(fm.i1.valid & fm.i1.ready):
            m.d.sync += kick_pending.eq(0)
        with m.If(kick.kick):
            with m.If(kick_pending):
                m.d.sync += kick_overflow.eq(1)
            with m.Else():
                m.d.sync += [kick_pending.eq(1), fm.i1.payload.region.eq(kick.kick_region),
                             fm.i1.payload.phase.eq(kick.kick_phase), fm.i1.payload.whole.eq(1),
                             fm.i1.payload.wf_id.eq(0)]
        with m.If(clr.kick_overflow):
            m.d.sync += kick_overflow.eq(0)
        kicks = Signal(32)
        count_event(m, kicks, fm.i1.valid & fm.i1.ready, pulse.clear_counters)
        occupancy_peak = Signal.like(trk.occupancy)
        with m.If(pulse.clear_counters):
            m.d.sync += occupancy_peak.eq(0)
        with m.Elif(trk.occupancy > occupancy_peak):
            m.d.sync += occupancy_peak.eq(trk.occupancy)
        connect(m, amap.remote, em.i0)
        connect(m, dma.link, em.i1)
        connect(m, em.o, wiring.flipped(self.egress))
        connect(m, wiring.flipped(self.csr_req), csr.req)
        connect(m, csr.resp, wiring.flipped(self.csr_resp))

        m.d.comb += [
            amap.regions.eq(csr.regions), trk.regions.eq(csr.regions), dma.regions.eq(csr.regions),
            amap.next_device.eq(ctrl.next_device), dma.next_device.eq(ctrl.next_device),
            amap.enable.eq(ctrl.enable),
            amap.clear_counters.eq(pulse.clear_counters), trk.clear_counters.eq(pulse.clear_counters),
            dma.clear_counters.eq(pulse.clear_counters), trk.clear_history.eq(pulse.clear_history),
        ]
        # every sticky flag to its ERR bit; the blocks' flags are cleared by their block,
        # kick_overflow (this unit's own) above
        flags = {"kick_overflow": kick_overflow}
        for blk in (amap, trk):
            for n in blk.err.shape().members:
                flags[n] = getattr(blk.err, n)
                m.d.comb += getattr(blk.clear, n).eq(getattr(clr, n))
        for n, sig in flags.items():
            m.d.comb += getattr(errs, n).eq(sig)
        m.d.comb += [
            st.occupancy.eq(trk.occupancy),
            st.busy.eq(amap.busy | trk.busy | dma.busy),
            st.error.eq(self.irq),
            st.err_addr.eq(amap.err_addr), st.err_addr_ingress.eq(amap.err_ingress),
            st.err_wf_id.eq(trk.err_key.wf_id), st.err_phase.eq(trk.err_key.phase),
            st.err_region.eq(trk.err_key.region),
            st.producer_reqs.eq(amap.producer_reqs), st.ingress_reqs.eq(amap.ingress_reqs),
            st.remote_sent.eq(amap.remote_sent), st.tracked_reqs.eq(trk.tracked_reqs),
            st.fires.eq(trk.fires), st.stall_cycles.eq(trk.stall_cycles),
            st.dma_tiles.eq(dma.tiles), st.dma_lines.eq(dma.lines),
            st.starved_grants.eq(trk.starved_grants), st.kicks.eq(kicks),
            st.comm_wait_max.eq(trk.comm_wait_max), st.kick_pending.eq(kick_pending),
            st.occupancy_peak.eq(occupancy_peak),
            trk.policy.eq(ctrl.policy), trk.threshold.eq(ctrl.threshold),
            trk.starve_limit.eq(ctrl.starve_limit), trk.queue_level.eq(self.queue_level),
            self.irq.eq(Cat(*flags.values()).any()),
        ]
        return m


designs.register("t3_track_trigger", lambda cfg: TrackTrigger(cfg=cfg))
