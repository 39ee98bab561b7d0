"""Track & trigger unit for block-level integration: address map, tracker, DMA and CSRs.

::

    producer ──► AddressMap ──local[0]──► TrackerTable ──mem──► (memory queue)
    ingress  ──►            ──local[1]──►  (+ MCA)   ─fire─┐
                            ──remote────┐      ▲ req[2]    ▼
                                        │      └─mem.req─ DmaEngine ◄── DMA_KICK (CSR)
                                        ▼                  │  ▲
                             egress ◄─ merge ◄── dma.link ─┘  └─mem.resp ◄── mem_resp
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out, connect

from contract import latency, regmap
from contract.spec import COUNTER_BITS, T3Config

from . import designs, layouts
from .addrmap import AddressMap, count_event
from .component import T3Component
from .csr import Csr
from .dma import DmaEngine
from .interfaces import CsrBus, MemoryPort
from .mca_threshold import McaThresholdMeter
from .merge import StreamMerge
from .tracker import LANE_DMA, LANE_PRODUCER, LANES, TrackerTable

__all__ = ["TrackTrigger"]


class TrackTrigger(T3Component):
    """The track & trigger unit: one device's T3 logic in front of its memory queue.

    ``mem`` carries every local request in the order it must be applied: the tracker's
    three lanes (producer, link arrivals, DMA READs) are arbitrated by the
    memory-controller arbiter (``ARB`` register: plain round-robin or MCA) at the
    tracker's output. A fire is raised only after its tile's last update left the
    tracker, so every DMA READ of a tile follows the updates that completed it. Fires go
    to the DMA engine together with software kicks of a whole region (``DMA_KICK``, one
    pending at most: another raises ``kick_overflow``). ``egress`` merges REMOTE producer
    stores and DMA packets round-robin.

    Trigger latency (no backpressure): the last update accepted on ``producer`` or
    ``ingress`` in cycle t gives the tile's first DMA READ on ``mem`` in cycle
    t + :attr:`trigger_latency`.

    The port names are those the Verilog testbench binds, so the memory port and the
    register bus are listed as their two streams (:mod:`hw.interfaces`).

    Parameters
    ----------
    cfg : T3Config
        The unit's configuration; ConfigError when the register map does not fit
        ``csr_addr_bits``.

    Attributes
    ----------
    producer : In(stream.Signature(layouts.producer_request(cfg)))
        The GPU's requests (stores, updates, background READs).
    ingress : In(stream.Signature(layouts.link_packet(cfg)))
        Packets from the previous device.
    mem : Out(stream.Signature(layouts.memory_request(cfg)))
        ``req`` of a :class:`MemoryPort` (initiator): every request for this device's
        memory, in the order to apply them.
    mem_lane : Out(range(LANES))
        Sideband of ``mem``, valid with ``mem.valid``: the tracker lane of the request
        (``hw.tracker.LANE_*``): tells producer READs (background GEMM traffic, whose
        responses the unit discards) from DMA READs.
    mem_resp : In(stream.Signature(layouts.memory_response(cfg)))
        ``resp`` of the memory port: the responses to the DMA's READs only, in order.
    egress : Out(stream.Signature(layouts.link_packet(cfg)))
        Packets for the next device: REMOTE producer stores and DMA packets.
    csr_req : In(stream.Signature(layouts.csr_request(cfg)))
        ``req`` of the register bus (:class:`CsrBus`, target side; docs/regmap.md).
    csr_resp : Out(stream.Signature(layouts.csr_response(cfg)))
        ``resp`` of the register bus.
    irq : Out(1)
        Any sticky error flag is set.
    queue_level : In(range(cfg.mem_queue_depth + 1))
        Occupancy of the memory queue behind ``mem`` (the MCA threshold compares it).
    csr : interface
        ``csr_req``/``csr_resp`` as one :class:`CsrBus` target interface.
    trigger_latency : int
        contract.latency.TRIGGER cycles.
    """

    def __init__(self, *, cfg: T3Config):
        super().__init__(cfg, self._ports)

    @staticmethod
    def _ports(cfg: T3Config) -> dict:
        regmap.registers(cfg)       # ConfigError now if the register map does not fit
        mem = MemoryPort(cfg=cfg)
        csr = CsrBus(cfg=cfg).flip()
        return {
            "producer": In(stream.Signature(layouts.producer_request(cfg))),
            "ingress": In(stream.Signature(layouts.link_packet(cfg))),
            "mem": mem.members["req"],
            "mem_lane": Out(range(LANES)),
            "mem_resp": mem.members["resp"],
            "egress": Out(stream.Signature(layouts.link_packet(cfg))),
            "csr_req": csr.members["req"],
            "csr_resp": csr.members["resp"],
            "irq": Out(1),
            "queue_level": In(range(cfg.mem_queue_depth + 1)),
        }

    @property
    def csr(self):
        """The register bus as one :class:`CsrBus` interface (target side)."""
        return CsrBus(cfg=self.cfg).flip().view(req=self.csr_req, resp=self.csr_resp)

    @property
    def trigger_latency(self) -> int:
        """Cycles from the completing update's acceptance on ``producer``/``ingress`` to
        the tile's first READ on ``mem`` (no backpressure): address map + tracker fire
        + DMA issue + the READ's pass through the tracker's DMA lane."""
        return latency.TRIGGER

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.amap = amap = AddressMap(cfg=cfg)
        m.submodules.tracker = trk = TrackerTable(cfg=cfg)
        m.submodules.dma = dma = DmaEngine(cfg=cfg)
        m.submodules.csr = csr = Csr(cfg=cfg)
        m.submodules.egress_merge = em = StreamMerge(payload_shape=layouts.link_packet(cfg), n=2)
        m.submodules.mca_meter = meter = McaThresholdMeter(cfg=cfg)

        connect(m, wiring.flipped(self.producer), amap.producer)
        connect(m, wiring.flipped(self.ingress), amap.ingress)
        for k in range(2):
            connect(m, amap.local[k], trk.req[k])
        # DMA READs enter the tracker's third lane (untracked) so that the memory-controller
        # arbiter sees every request
        rd = trk.req[LANE_DMA]
        m.d.comb += [rd.valid.eq(dma.mem.req.valid), dma.mem.req.ready.eq(rd.ready),
                     rd.payload.mem.eq(dma.mem.req.payload), rd.payload.tracked.eq(0)]
        connect(m, trk.mem, wiring.flipped(self.mem))
        m.d.comb += self.mem_lane.eq(trk.mem_lane)
        connect(m, wiring.flipped(self.mem_resp), dma.mem.resp)
        # fires: the tracker's, and software kicks of a whole region (one pending at most)
        m.submodules.fire_merge = fm = StreamMerge(payload_shape=layouts.fire_layout(cfg), n=2)
        connect(m, trk.fire, fm.i0)
        connect(m, fm.o, dma.fire)
        own_err, kick_pending, kicks = self._kicks(m, csr, fm.i1)
        connect(m, amap.remote, em.i0)
        connect(m, dma.link, em.i1)
        connect(m, em.o, wiring.flipped(self.egress))
        connect(m, wiring.flipped(self.csr), csr.bus)

        ctrl, pulse = csr.ctrl, csr.pulse
        m.d.comb += [
            amap.regions.eq(csr.regions), trk.regions.eq(csr.regions), dma.regions.eq(csr.regions),
            amap.next_device.eq(ctrl.next_device), dma.next_device.eq(ctrl.next_device),
            amap.enable.eq(ctrl.enable),
            amap.clear_counters.eq(pulse.clear_counters), trk.clear_counters.eq(pulse.clear_counters),
            dma.clear_counters.eq(pulse.clear_counters), trk.clear_history.eq(pulse.clear_history),
            trk.policy.eq(ctrl.policy), trk.threshold.eq(meter.threshold),
            trk.starve_limit.eq(ctrl.starve_limit), trk.queue_level.eq(self.queue_level),
        ]
        # the MCA threshold: programmed, or measured from the compute stream's intensity
        m.d.comb += [
            meter.window_log2.eq(ctrl.window_log2), meter.restart.eq(pulse.clear_counters),
            meter.manual.eq(ctrl.threshold),
            meter.compute_req.eq(trk.mem.valid & trk.mem.ready & (trk.mem_lane == LANE_PRODUCER)),
            csr.status.threshold_used.eq(meter.threshold), csr.status.measured.eq(meter.measured),
            csr.status.window_reqs.eq(meter.window_reqs),
        ]
        self._errors(m, csr, own_err, (amap, trk))
        self._status(m, csr, amap, trk, dma, kick_pending, kicks)
        return m

    def _kicks(self, m: Module, csr: Csr, kick_fire):
        """Software kicks (``DMA_KICK``) as fires of a whole region on ``kick_fire``, one
        pending at most: a kick while one is pending is not taken and raises
        ``kick_overflow``. Returns (this unit's sticky flags, a kick is pending, the
        count of kicks taken by the DMA)."""
        own_err = Signal(layouts.error_flags("track_trigger"))
        kick_pending = Signal()
        kick = csr.pulse
        m.d.comb += [kick_fire.valid.eq(kick_pending)]
        with m.If(kick_fire.valid & kick_fire.ready):
            m.d.sync += kick_pending.eq(0)
        with m.If(kick.kick):
            with m.If(kick_pending):
                m.d.sync += own_err.kick_overflow.eq(1)
            with m.Else():
                m.d.sync += [kick_pending.eq(1), kick_fire.payload.region.eq(kick.kick_region),
                             kick_fire.payload.phase.eq(kick.kick_phase),
                             kick_fire.payload.whole.eq(1), kick_fire.payload.wf_id.eq(0)]
        with m.If(csr.err_clear.kick_overflow):
            m.d.sync += own_err.kick_overflow.eq(0)
        kicks = Signal(COUNTER_BITS)
        count_event(m, kicks, kick_fire.valid & kick_fire.ready, csr.pulse.clear_counters)
        return own_err, kick_pending, kicks

    def _errors(self, m: Module, csr: Csr, own_err, blocks) -> None:
        """Every sticky flag to its ERR bit and to ``irq``. The blocks' flags are kept and
        cleared by their block; this unit's own (``own_err``) in :meth:`_kicks`."""
        flags = {n: getattr(own_err, n) for n in own_err.shape().members}
        for blk in blocks:
            for n in blk.err.shape().members:
                flags[n] = getattr(blk.err, n)
                m.d.comb += getattr(blk.clear, n).eq(getattr(csr.err_clear, n))
        for n, sig in flags.items():
            m.d.comb += getattr(csr.errors, n).eq(sig)
        m.d.comb += self.irq.eq(Cat(*flags.values()).any())

    def _status(self, m: Module, csr: Csr, amap: AddressMap, trk: TrackerTable,
                dma: DmaEngine, kick_pending, kicks) -> None:
        """The read-only status fields and counters."""
        st = csr.status
        occupancy_peak = Signal.like(trk.occupancy)
        with m.If(csr.pulse.clear_counters):
            m.d.sync += occupancy_peak.eq(0)
        with m.Elif(trk.occupancy > occupancy_peak):
            m.d.sync += occupancy_peak.eq(trk.occupancy)
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
            # the tracker table as a cache over its backing counters (hw/tracker_table.py)
            st.tracker_hits.eq(trk.hits), st.tracker_misses.eq(trk.misses),
            st.tracker_fills.eq(trk.fills), st.tracker_spills.eq(trk.spills),
        ]


designs.register("t3_track_trigger", lambda cfg: TrackTrigger(cfg=cfg))
