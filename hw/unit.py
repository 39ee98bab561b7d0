"""The T3 unit: one device's memory-side hardware.

::

    producer ──► ┌──────────────┐ ──mem──► merge ──► memory queue ──► ComputeMemory
    ingress  ──► │ TrackTrigger │             ▲      (FIFO, MCA        │ (storage + NMC ALU)
    egress   ◄── │ (addr map,   │      host ──┘       watches level)   │
    csr      ◄─► │ tracker, DMA,│ ◄──mem_resp─── response router ◄─────┘
                 │ CSRs, MCA)   │                       └──► host_resp
                 └──────────────┘

``host``/``host_resp`` is the host's direct path to memory (READ and STORE, untracked,
bypassing the address map): what a driver uses to load inputs and read results back.
READ responses are routed back to their issuer by a FIFO of 2-bit source tags pushed
when the READ enters the memory queue: the DMA engine, the host, or nobody -- a READ from
the producer port (background GEMM operand traffic, hw/env/readgen.py; told apart from DMA
READs by TrackTrigger's ``mem_lane``) has its response discarded and counted in
``gemm_reads_done``. Nothing else is dropped: a full queue or a full tag FIFO
backpressures.

Counters for utilisation reports (32-bit, wrapping): ``mem_reqs`` (requests accepted by
the memory), ``mem_busy_cycles`` (cycles the memory accepted a request),
``queue_full_cycles``, ``gemm_reads_done`` (producer READs answered and discarded).
"""

from __future__ import annotations

import enum

from amaranth.hdl import Module, Mux, Shape, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out, connect

from contract.spec import Op, T3Config

from . import designs, layouts
from .addrmap import COUNTER_BITS
from .csr import csr_request, csr_response
from .merge import StreamMerge
from .nmc import ComputeMemory
from .track_trigger import TrackTrigger
from .tracker import LANE_PRODUCER

__all__ = ["T3Unit", "ReadTag", "COUNTER_BITS"]


class ReadTag(enum.IntEnum):
    """Who gets a READ's response (the response router's tag FIFO)."""
    DMA = 0
    HOST = 1
    DISCARD = 2     # a producer (background GEMM) READ: nobody needs the data


TAG_SHAPE = Shape.cast(ReadTag)


class T3Unit(wiring.Component):
    """One device's T3 unit (see the module doc). Keyword-only ``cfg``."""

    def __init__(self, *, cfg: T3Config):
        self._cfg = layouts.check_cfg("T3Unit", cfg)
        self._tt = TrackTrigger(cfg=cfg)
        self._mem = ComputeMemory(cfg=cfg)
        super().__init__({
            "producer": In(stream.Signature(layouts.producer_request(cfg))),
            "ingress": In(stream.Signature(layouts.link_packet(cfg))),
            "egress": Out(stream.Signature(layouts.link_packet(cfg))),
            "host": In(stream.Signature(layouts.memory_request(cfg))),
            "host_resp": Out(stream.Signature(layouts.memory_response(cfg))),
            "csr_req": In(stream.Signature(csr_request(cfg))),
            "csr_resp": Out(stream.Signature(csr_response(cfg))),
            "irq": Out(1),
            "queue_level": Out(range(cfg.mem_queue_depth + 1)),
            "mem_reqs": Out(COUNTER_BITS),
            "mem_busy_cycles": Out(COUNTER_BITS),
            "queue_full_cycles": Out(COUNTER_BITS),
            "mem_error": Out(1),
            "gemm_reads_done": Out(COUNTER_BITS),
        })

    @property
    def cfg(self) -> T3Config:
        return self._cfg

    @property
    def tag_depth(self) -> int:
        """Outstanding READs the response router can track (power of two)."""
        need = self._cfg.mem_queue_depth + self._mem.latency + self._mem.resp_fifo_depth + 2
        return 1 << (need - 1).bit_length()

    @property
    def trigger_latency(self) -> int:
        return self._tt.trigger_latency

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        m.submodules.tt = tt = self._tt
        m.submodules.mem = mem = self._mem
        m.submodules.merge = mrg = StreamMerge(payload_shape=layouts.memory_request(cfg), n=2)
        m.submodules.queue = q = fifo.SyncFIFOBuffered(width=layouts.memory_request(cfg).size,
                                                       depth=cfg.mem_queue_depth)
        m.submodules.tags = tags = fifo.SyncFIFO(width=TAG_SHAPE.width, depth=self.tag_depth)

        connect(m, wiring.flipped(self.producer), tt.producer)
        connect(m, wiring.flipped(self.ingress), tt.ingress)
        connect(m, tt.egress, wiring.flipped(self.egress))
        connect(m, wiring.flipped(self.csr_req), tt.csr_req)
        connect(m, tt.csr_resp, wiring.flipped(self.csr_resp))
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
        m.d.comb += [
            q.w_data.eq(mrg.o.payload),
            q.w_en.eq(mrg.o.valid & (~is_read | tags.w_rdy)),
            mrg.o.ready.eq(q.w_rdy & (~is_read | tags.w_rdy)),
            tags.w_data.eq(tag),
            tags.w_en.eq(mrg.o.valid & mrg.o.ready & is_read),
        ]
        m.d.comb += [
            mem.req.payload.eq(q.r_data),
            mem.req.valid.eq(q.r_rdy),
            q.r_en.eq(mem.req.ready),
            self.queue_level.eq(q.level),
            tt.queue_level.eq(q.level),
            self.mem_error.eq(mem.error),
        ]
        # responses back to their issuer, in order
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
        accepted = Signal()
        m.d.comb += accepted.eq(mem.req.valid & mem.req.ready)
        with m.If(accepted):
            m.d.sync += [self.mem_reqs.eq(self.mem_reqs + 1),
                         self.mem_busy_cycles.eq(self.mem_busy_cycles + 1)]
        with m.If(~q.w_rdy):
            m.d.sync += self.queue_full_cycles.eq(self.queue_full_cycles + 1)
        return m


designs.register("t3_unit", lambda cfg: T3Unit(cfg=cfg))
