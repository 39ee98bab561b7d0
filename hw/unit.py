"""The T3 unit: one device's memory-side hardware.

::

    producer ──► ┌──────────────┐ ──mem──► merge ──► memory ──────────────────────┐
    ingress  ──► │ TrackTrigger │             ▲      cfg.memory == "ideal":       │
    egress   ◄── │ (addr map,   │      host ──┘        FIFO queue + ComputeMemory  │
    csr      ◄─► │ tracker, DMA,│                    cfg.memory == "dram":        │
                 │ CSRs, MCA)   │                      DramController (FR-FCFS,   │
                 └──────────────┘                      banks, HBM2 timing)        │
                        ▲ ◄──mem_resp─── response router ◄────────────────────────┘
                                                └──► host_resp

The MCA watches the memory's queue occupancy either way (the FIFO's level, or the
requests waiting in the DRAM controller for their column command).
"""

from __future__ import annotations

import enum

from amaranth.hdl import Module, Mux, Shape, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out, connect

from contract.spec import COUNTER_BITS, T3Config

from . import designs, layouts
from .component import T3Component
from .interfaces import CsrBus, MemoryPort
from .layouts import Op
from .dram import DramController
from .merge import StreamMerge
from .nmc import ComputeMemory
from .track_trigger import TrackTrigger
from .tracker import LANE_PRODUCER

__all__ = ["T3Unit", "ReadTag"]


class ReadTag(enum.IntEnum):
    """Who gets a READ's response (the response router's tag FIFO)."""
    DMA = 0
    HOST = 1
    DISCARD = 2     # a producer (background GEMM) READ: nobody needs the data


TAG_SHAPE = Shape.cast(ReadTag)


class T3Unit(T3Component):
    """One device's T3 unit: :class:`TrackTrigger` in front of the memory, plus the
    host's direct port to memory.

    The memory is ``cfg.memory``: ``"ideal"``, a FIFO queue of ``cfg.mem_queue_depth``
    in front of a :class:`ComputeMemory` that takes one request per cycle whatever the
    pattern; or ``"dram"``, a :class:`hw.dram.DramController` (FR-FCFS over the banks of
    an HBM2 pseudo-channel with timing ``cfg.dram``; docs/memory.md) around the same
    ComputeMemory. The requests of TrackTrigger's ``mem`` and of ``host`` are merged
    round-robin into it; the MCA watches its queue occupancy.
    READ responses are routed back to their issuer by a FIFO of source tags
    (:class:`ReadTag`) pushed when the READ enters the queue: the DMA engine, the host,
    or nobody -- a READ from the producer port (background GEMM operand traffic,
    hw/env/readgen.py; told apart from DMA READs by TrackTrigger's ``mem_lane``) has its
    response discarded and counted in ``gemm_reads_done``. Nothing else is dropped: a
    full queue or a full tag FIFO backpressures.

    The port names are those the Verilog testbenches bind, so the host's memory port
    and the register bus are listed as their two streams (:mod:`hw.interfaces`).

    Parameters
    ----------
    cfg : T3Config
        The unit's configuration.

    Attributes
    ----------
    producer : In(stream.Signature(layouts.producer_request(cfg)))
        The GPU's requests (TrackTrigger's ``producer``).
    ingress : In(stream.Signature(layouts.link_packet(cfg)))
        Packets from the previous device.
    egress : Out(stream.Signature(layouts.link_packet(cfg)))
        Packets for the next device.
    host : In(stream.Signature(layouts.memory_request(cfg)))
        ``req`` of a :class:`MemoryPort` (target side): the host's direct path to memory
        (a driver loads inputs and reads results back): untracked, bypassing the address
        map.
    host_resp : Out(stream.Signature(layouts.memory_response(cfg)))
        ``resp`` of the host's memory port: its READs' lines, in order.
    csr_req : In(stream.Signature(layouts.csr_request(cfg)))
        ``req`` of the register bus (:class:`CsrBus`, target side; docs/regmap.md).
    csr_resp : Out(stream.Signature(layouts.csr_response(cfg)))
        ``resp`` of the register bus.
    irq : Out(1)
        Any sticky error flag is set.
    queue_level : Out(range(cfg.mem_queue_depth + 1))
        Occupancy of the memory queue (DRAM: requests waiting for their column command).
    mem_reqs : Out(COUNTER_BITS)
        Requests served by the memory (ideal: taken by ComputeMemory; DRAM: column
        commands issued), wrapping like every counter here.
    mem_busy_cycles : Out(COUNTER_BITS)
        Cycles the memory served a request (its data bus was busy).
    queue_full_cycles : Out(COUNTER_BITS)
        Cycles the memory refused a request (queue full).
    occupancy_sum : Out(COUNTER_BITS)
        Sum of ``queue_level`` over all cycles (mean occupancy = this / cycles).
    activates : Out(COUNTER_BITS)
        DRAM row activations (0 with the ideal memory). Every column command not
        preceded by its own ACT is a row hit: row-hit ratio = 1 - activates / mem_reqs.
    urgent_cycles : Out(COUNTER_BITS)
        DRAM: cycles the oldest request had waited the age cap or more (0 ideal).
    mem_error : Out(1)
        The memory's sticky error (an invalid request reached it, or -- DRAM, impossible
        by construction -- the controller's own consistency error).
    gemm_reads_done : Out(COUNTER_BITS)
        Producer READs answered by the memory and discarded.
    mem_stall : In(1)
        Test-environment hook (issue #18), to be tied to 0 outside the test ring (the
        standalone ``t3_unit`` Verilog has it as an input port): when 1, the request
        handshake into the memory is held closed for that cycle (its ``valid`` and the
        merge's ``ready`` both low, so no request is lost or duplicated and the order is
        kept). The ring drives it from a seeded random :class:`hw.env.stall.StallSource`;
        at 0 the unit is unchanged cycle for cycle (two AND gates that pass everything).
    mem_offered : Out(1)
        A request is offered to the memory this cycle, before the ``mem_stall`` gate
        (a wire: the ring counts the cycles its stalls held one back).
    csr : interface
        ``csr_req``/``csr_resp`` as one :class:`CsrBus` target interface.
    host_port : interface
        ``host``/``host_resp`` as one :class:`MemoryPort` target interface.
    tag_depth : int
        Outstanding READs the response router can track.
    trigger_latency : int
        TrackTrigger's (contract.latency.TRIGGER).
    """

    def __init__(self, *, cfg: T3Config):
        super().__init__(cfg, self._ports)
        self._tt = TrackTrigger(cfg=self.cfg)
        self._mem = (DramController(cfg=self.cfg, timing=self.cfg.dram)
                     if self.cfg.memory == "dram" else ComputeMemory(cfg=self.cfg))

    @staticmethod
    def _ports(cfg: T3Config) -> dict:
        host = MemoryPort(cfg=cfg).flip()
        csr = CsrBus(cfg=cfg).flip()
        return {
            "producer": In(stream.Signature(layouts.producer_request(cfg))),
            "ingress": In(stream.Signature(layouts.link_packet(cfg))),
            "egress": Out(stream.Signature(layouts.link_packet(cfg))),
            "host": host.members["req"],
            "host_resp": host.members["resp"],
            "csr_req": csr.members["req"],
            "csr_resp": csr.members["resp"],
            "irq": Out(1),
            "queue_level": Out(range(cfg.mem_queue_depth + 1)),
            "mem_reqs": Out(COUNTER_BITS),
            "mem_busy_cycles": Out(COUNTER_BITS),
            "queue_full_cycles": Out(COUNTER_BITS),
            "occupancy_sum": Out(COUNTER_BITS),
            "activates": Out(COUNTER_BITS),
            "urgent_cycles": Out(COUNTER_BITS),
            "mem_error": Out(1),
            "gemm_reads_done": Out(COUNTER_BITS),
            "mem_stall": In(1),
            "mem_offered": Out(1),
        }

    @property
    def csr(self):
        """The register bus as one :class:`CsrBus` interface (target side)."""
        return CsrBus(cfg=self.cfg).flip().view(req=self.csr_req, resp=self.csr_resp)

    @property
    def host_port(self):
        """The host's memory port as one :class:`MemoryPort` interface (target side)."""
        return MemoryPort(cfg=self.cfg).flip().view(req=self.host, resp=self.host_resp)

    @property
    def memory(self) -> ComputeMemory | DramController:
        """The memory behind the merge (``cfg.memory``)."""
        return self._mem

    @property
    def tag_depth(self) -> int:
        """Outstanding READs the response router can track (power of two): every READ
        the memory can hold, accepted and not yet answered."""
        if isinstance(self._mem, DramController):
            need = self._mem.max_reads_outstanding
        else:
            need = self.cfg.mem_queue_depth + self._mem.latency + self._mem.resp_fifo_depth + 2
        return 1 << (need - 1).bit_length()

    @property
    def trigger_latency(self) -> int:
        return self._tt.trigger_latency

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.tt = tt = self._tt
        m.submodules.mem = mem = self._mem
        m.submodules.merge = mrg = StreamMerge(payload_shape=layouts.memory_request(cfg), n=2)
        m.submodules.tags = tags = fifo.SyncFIFO(width=TAG_SHAPE.width, depth=self.tag_depth)

        connect(m, wiring.flipped(self.producer), tt.producer)
        connect(m, wiring.flipped(self.ingress), tt.ingress)
        connect(m, tt.egress, wiring.flipped(self.egress))
        connect(m, wiring.flipped(self.csr), tt.csr)
        m.d.comb += self.irq.eq(tt.irq)

        # requests: TrackTrigger (tracker output + DMA reads) and host, merged into the queue
        connect(m, tt.mem, mrg.i0)
        connect(m, wiring.flipped(self.host), mrg.i1)
        is_read = Signal()
        m.d.comb += is_read.eq(mrg.o.payload.op == Op.READ)
        # a READ needs a free tag slot; the tag says who gets the response
        tag = Signal(TAG_SHAPE)
        m.d.comb += tag.eq(Mux(mrg.grant == 1, ReadTag.HOST,
                               Mux(tt.mem_lane == LANE_PRODUCER, ReadTag.DISCARD, ReadTag.DMA)))
        req, level, served = self._memory_front(m, mem)
        # the test hook gates valid and ready together (mem_stall: a closed handshake)
        open_ = Signal()
        m.d.comb += [
            self.mem_offered.eq(mrg.o.valid & (~is_read | tags.w_rdy)),
            open_.eq(~self.mem_stall),
            req.payload.eq(mrg.o.payload),
            req.valid.eq(self.mem_offered & open_),
            mrg.o.ready.eq(req.ready & (~is_read | tags.w_rdy) & open_),
            tags.w_data.eq(tag),
            tags.w_en.eq(mrg.o.valid & mrg.o.ready & is_read),
            self.queue_level.eq(level),
            tt.queue_level.eq(level),
        ]
        self._route_responses(m, mem, tags, tt)
        self._count(m, req, level, served)
        return m

    def _memory_front(self, m: Module, mem) -> tuple:
        """The memory's request side: ``(req, level, served)`` = the stream the merge
        feeds, the queue occupancy the MCA watches, and "a request is served this cycle"
        (the utilisation counters). Also the memory's error and DRAM counters."""
        cfg = self.cfg
        if isinstance(mem, DramController):
            m.d.comb += [self.mem_error.eq(mem.error | mem.mem_error),
                         self.activates.eq(mem.activates),
                         self.urgent_cycles.eq(mem.urgent_cycles)]
            return mem.req, mem.occupancy, mem.issue.valid
        m.submodules.queue = q = fifo.SyncFIFOBuffered(width=layouts.memory_request(cfg).size,
                                                       depth=cfg.mem_queue_depth)
        req = stream.Signature(layouts.memory_request(cfg)).flip().create(path=("queue_in",))
        m.d.comb += [
            q.w_data.eq(req.payload), q.w_en.eq(req.valid), req.ready.eq(q.w_rdy),
            mem.req.payload.eq(q.r_data), mem.req.valid.eq(q.r_rdy), q.r_en.eq(mem.req.ready),
            self.mem_error.eq(mem.error),
        ]
        return req, q.level, mem.req.valid & mem.req.ready

    def _route_responses(self, m: Module, mem, tags, tt: TrackTrigger) -> None:
        """Memory responses back to their issuer (the tag FIFO's head), in order."""
        to_host, to_dma, discard = Signal(), Signal(), Signal()
        m.d.comb += [to_host.eq(tags.r_data == ReadTag.HOST), to_dma.eq(tags.r_data == ReadTag.DMA),
                     discard.eq(tags.r_data == ReadTag.DISCARD)]
        m.d.comb += [
            tt.mem_resp.payload.eq(mem.resp.payload),
            self.host_resp.payload.eq(mem.resp.payload),
            tt.mem_resp.valid.eq(mem.resp.valid & tags.r_rdy & to_dma),
            self.host_resp.valid.eq(mem.resp.valid & tags.r_rdy & to_host),
            mem.resp.ready.eq(tags.r_rdy & (to_host & self.host_resp.ready
                                            | to_dma & tt.mem_resp.ready | discard)),
            tags.r_en.eq(mem.resp.valid & mem.resp.ready),
        ]
        with m.If(mem.resp.valid & mem.resp.ready & discard):
            m.d.sync += self.gemm_reads_done.eq(self.gemm_reads_done + 1)

    def _count(self, m: Module, req, level, served) -> None:
        """The utilisation counters."""
        with m.If(served):
            m.d.sync += [self.mem_reqs.eq(self.mem_reqs + 1),
                         self.mem_busy_cycles.eq(self.mem_busy_cycles + 1)]
        with m.If(~req.ready):
            m.d.sync += self.queue_full_cycles.eq(self.queue_full_cycles + 1)
        m.d.sync += self.occupancy_sum.eq(self.occupancy_sum + level)


designs.register("t3_unit", lambda cfg: T3Unit(cfg=cfg))
