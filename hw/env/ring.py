"""N T3 units joined in a ring by link models: one Verilog design (``N`` = 2..8).

Unit ``i``'s egress goes through link ``i`` to unit ``(i + 1) % N``'s ingress. Link
latency (cycles) and bandwidth (``link_num / link_den`` lines per cycle, token bucket)
are input ports shared by all links, so one build serves every link setting; the link
FIFO depth is fixed at generation from ``cfg`` (:meth:`LinkModel.depth_for`) and a larger
bandwidth x latency product than that depth simply backpressures.

Per-device ports are arrays: ``producer[i]``, ``host[i]``/``host_resp[i]``,
``csr_req[i]``/``csr_resp[i]``, ``irq[i]``, utilisation counters ``mem_reqs[i]``,
``mem_busy_cycles[i]``, ``queue_full_cycles[i]``, ``link_busy_cycles[i]`` (cycles link
``i`` delivered a packet) and ``queue_level[i]``.

Background GEMM reads (issue #5; environment traffic, not T3 hardware): in front of each
unit's ``producer`` port, a :class:`hw.env.readgen.GemmReadGenerator` is merged round-robin
(:class:`hw.merge.StreamMerge`) with the testbench's ``producer[i]`` stream, so the
unit's memory-controller arbiter sees them in the compute stream. Rate
(``gemm_read_num / gemm_read_den`` READs per cycle) and window (``gemm_read_base``,
``gemm_read_lines``) are shared by all devices; how many to issue is per device
(``gemm_read_count[i]``: the devices' GEMM traces differ in length). Outputs:
``gemm_reads_issued[i]`` (accepted by the unit) and ``gemm_reads_done[i]`` (answered by
the memory and discarded). With every count 0 the generators never present a request
and the merge passes ``producer[i]`` through unchanged, cycle for cycle.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out, connect

from contract.spec import T3Config

from .. import designs, layouts
from ..csr import csr_request, csr_response
from .link import LinkModel
from ..merge import StreamMerge
from .readgen import GemmReadGenerator
from ..unit import COUNTER_BITS, T3Unit

__all__ = ["T3Ring", "MAX_DEVICES"]

MAX_DEVICES = 8
LATENCY_BITS = 20
CREDIT_BITS = 9


class T3Ring(wiring.Component):
    def __init__(self, *, cfg: T3Config, link_depth: int | None = None):
        layouts.check_cfg("T3Ring", cfg)
        n = cfg.ring_devices
        if not 2 <= n <= MAX_DEVICES:
            raise ValueError(f"T3Ring: ring_devices={n}: the RTL ring supports 2..{MAX_DEVICES} devices")
        self._cfg = cfg
        self._link_depth = link_depth or LinkModel.depth_for(cfg.link_latency_cycles,
                                                             cfg.link_lines_per_cycle)
        super().__init__({
            "producer": In(stream.Signature(layouts.producer_request(cfg))).array(n),
            "host": In(stream.Signature(layouts.memory_request(cfg))).array(n),
            "host_resp": Out(stream.Signature(layouts.memory_response(cfg))).array(n),
            "csr_req": In(stream.Signature(csr_request(cfg))).array(n),
            "csr_resp": Out(stream.Signature(csr_response(cfg))).array(n),
            "irq": Out(n),
            "link_latency": In(LATENCY_BITS),
            "link_num": In(CREDIT_BITS),
            "link_den": In(CREDIT_BITS),
            "queue_level": Out(range(cfg.mem_queue_depth + 1)).array(n),
            "mem_reqs": Out(COUNTER_BITS).array(n),
            "mem_busy_cycles": Out(COUNTER_BITS).array(n),
            "queue_full_cycles": Out(COUNTER_BITS).array(n),
            "link_busy_cycles": Out(COUNTER_BITS).array(n),
            "link_in_flight": Out(range(self._link_depth + 1)).array(n),
            "gemm_read_num": In(CREDIT_BITS),
            "gemm_read_den": In(CREDIT_BITS),
            "gemm_read_base": In(cfg.addr_bits),
            "gemm_read_lines": In(cfg.addr_bits + 1),
            "gemm_read_count": In(COUNTER_BITS).array(n),
            "gemm_reads_issued": Out(COUNTER_BITS).array(n),
            "gemm_reads_done": Out(COUNTER_BITS).array(n),
        })

    @property
    def cfg(self) -> T3Config:
        return self._cfg

    @property
    def devices(self) -> int:
        return self._cfg.ring_devices

    @property
    def link_depth(self) -> int:
        return self._link_depth

    def elaborate(self, platform):
        m = Module()
        cfg, n = self._cfg, self._cfg.ring_devices
        units = [T3Unit(cfg=cfg) for _ in range(n)]
        links = [LinkModel(payload_shape=layouts.link_packet(cfg), depth=self._link_depth,
                           latency_bits=LATENCY_BITS, credit_bits=CREDIT_BITS) for _ in range(n)]
        for i, (u, lk) in enumerate(zip(units, links)):
            m.submodules[f"unit{i}"] = u
            m.submodules[f"link{i}"] = lk
            m.submodules[f"gemm_reads{i}"] = gen = GemmReadGenerator(cfg=cfg, credit_bits=CREDIT_BITS)
            m.submodules[f"compute_merge{i}"] = cmerge = StreamMerge(
                payload_shape=layouts.producer_request(cfg), n=2)
            connect(m, wiring.flipped(self.producer[i]), cmerge.i0)
            connect(m, gen.req, cmerge.i1)
            connect(m, cmerge.o, u.producer)
            m.d.comb += [
                gen.num.eq(self.gemm_read_num), gen.den.eq(self.gemm_read_den),
                gen.base.eq(self.gemm_read_base), gen.lines.eq(self.gemm_read_lines),
                gen.count.eq(self.gemm_read_count[i]),
                self.gemm_reads_issued[i].eq(gen.issued),
                self.gemm_reads_done[i].eq(u.gemm_reads_done),
            ]
            connect(m, wiring.flipped(self.host[i]), u.host)
            connect(m, u.host_resp, wiring.flipped(self.host_resp[i]))
            connect(m, wiring.flipped(self.csr_req[i]), u.csr_req)
            connect(m, u.csr_resp, wiring.flipped(self.csr_resp[i]))
            connect(m, u.egress, lk.tx)
            m.d.comb += [
                lk.latency.eq(self.link_latency), lk.num.eq(self.link_num), lk.den.eq(self.link_den),
                self.irq[i].eq(u.irq),
                self.queue_level[i].eq(u.queue_level),
                self.mem_reqs[i].eq(u.mem_reqs),
                self.mem_busy_cycles[i].eq(u.mem_busy_cycles),
                self.queue_full_cycles[i].eq(u.queue_full_cycles),
                self.link_busy_cycles[i].eq(lk.busy_cycles),
                self.link_in_flight[i].eq(lk.in_flight),
            ]
        for i in range(n):
            connect(m, links[i].rx, units[(i + 1) % n].ingress)
        return m


designs.register("t3_ring", lambda cfg: T3Ring(cfg=cfg.replace(ring_devices=min(cfg.ring_devices, MAX_DEVICES))))
