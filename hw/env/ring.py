"""N T3 units joined in a ring by link models: one Verilog design (``N`` = 2..8), the top
of the ring simulations (verif/tb_ring.py)."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out, connect

from contract.spec import COUNTER_BITS, ConfigError, T3Config

from .. import designs, layouts
from ..component import T3Component, check_int
from ..interfaces import CsrBus, MemoryPort
from ..merge import StreamMerge
from ..unit import T3Unit
from .gemm_producer import ClosedLoopGemm, wave_descriptor
from .link import LinkModel
from .readgen import GemmReadGenerator
from .stall import STALL_PROB_BITS, STALL_SEED_BITS, StallSource, StreamStall

__all__ = ["T3Ring", "MAX_DEVICES"]

MAX_DEVICES = 8
LATENCY_BITS = 20
CREDIT_BITS = 9
#: closed-loop GEMM: descriptor/counter width and READs in flight per device, at most
GEMM_COUNT_BITS = 24
GEMM_OUTSTANDING = 64
#: the closed-loop counters passed out per device (ClosedLoopGemm output names)
GEMM_COUNTERS = ("stall_cycles", "compute_cycles", "store_cycles", "waves_done",
                 "read_latency_sum")
#: the unit's memory counters passed out per device
UNIT_MEMORY_COUNTERS = ("occupancy_sum", "activates", "urgent_cycles")
#: stall generators' instance numbers (hw.env.stall): link i's gate is i, device i's
#: memory gate ``STALL_MEM_INDEX + i`` (independent of N, so a link's pattern is the
#: same in every ring)
STALL_MEM_INDEX = MAX_DEVICES


class T3Ring(T3Component):
    """``N = cfg.ring_devices`` T3 units in a ring: unit i's egress goes through link i
    to unit (i + 1) % N's ingress.

    Link latency (cycles) and bandwidth (``link_num / link_den`` lines per cycle, token
    bucket) are inputs shared by all links, so one build serves every link setting; the
    link FIFO depth is fixed at generation (:attr:`link_depth`) and a larger bandwidth x
    latency product than that depth simply backpressures.

    Background GEMM reads (issue #5; environment traffic, not T3 hardware): in front of
    each unit's ``producer`` port a :class:`hw.env.readgen.GemmReadGenerator` is merged
    round-robin (:class:`hw.merge.StreamMerge`) with the testbench's ``producer[i]``
    stream, so the unit's memory-controller arbiter sees them in the compute stream. Rate
    and window are shared by all devices, how many to issue is per device (the devices'
    GEMM traces differ in length). With every count 0 the generators never present a
    request and the merge passes ``producer[i]`` through unchanged, cycle for cycle.

    The port names are those the Verilog testbench binds, so each device's host memory
    port and register bus are listed as their two streams (:mod:`hw.interfaces`).

    Parameters
    ----------
    cfg : T3Config
        The units' configuration; ``ring_devices`` in 2..:data:`MAX_DEVICES`.
    link_depth : int or None
        Each link's FIFO depth (>= 2); None: :meth:`LinkModel.depth_for` the configured
        latency and bandwidth.

    Attributes
    ----------
    producer : In(stream.Signature(layouts.producer_request(cfg))).array(N)
        Each device's GPU requests.
    host : In(stream.Signature(layouts.memory_request(cfg))).array(N)
        ``req`` of each device's host :class:`MemoryPort` (target side).
    host_resp : Out(stream.Signature(layouts.memory_response(cfg))).array(N)
        ``resp`` of each device's host memory port.
    csr_req : In(stream.Signature(layouts.csr_request(cfg))).array(N)
        ``req`` of each device's register bus (:class:`CsrBus`, target side).
    csr_resp : Out(stream.Signature(layouts.csr_response(cfg))).array(N)
        ``resp`` of each device's register bus.
    irq : Out(N)
        Bit i: device i has a sticky error flag set.
    link_latency : In(LATENCY_BITS)
        Every link's latency, cycles (>= 1).
    link_num, link_den : In(CREDIT_BITS)
        Every link's bandwidth, num/den lines per cycle.
    queue_level : Out(range(cfg.mem_queue_depth + 1)).array(N)
        Each device's memory-queue occupancy.
    mem_reqs, mem_busy_cycles, queue_full_cycles : Out(COUNTER_BITS).array(N)
        Each unit's utilisation counters (:class:`T3Unit`).
    link_busy_cycles : Out(COUNTER_BITS).array(N)
        Cycles link i delivered a packet.
    link_in_flight : Out(range(link_depth + 1)).array(N)
        Packets inside link i.
    gemm_read_num, gemm_read_den : In(CREDIT_BITS)
        Background READs per cycle (num/den), every device.
    gemm_read_base : In(cfg.addr_bits)
        First line of the background READs' window, every device.
    gemm_read_lines : In(cfg.addr_bits + 1)
        Length of that window, lines.
    gemm_read_count : In(COUNTER_BITS).array(N)
        Background READs device i issues (0: none).
    gemm_reads_issued : Out(COUNTER_BITS).array(N)
        Background READs accepted by unit i.
    gemm_reads_done : Out(COUNTER_BITS).array(N)
        Producer-port READs (background or closed-loop) answered by unit i's memory.
    occupancy_sum, activates, urgent_cycles : Out(COUNTER_BITS).array(N)
        Each unit's memory counters (:class:`T3Unit`: mean occupancy, row activations,
        cycles with an urgent request).

    Closed-loop GEMM (issue #15; environment): between ``producer[i]`` and the merge sits
    a :class:`hw.env.gemm_producer.ClosedLoopGemm`: with ``gemm_enable`` set, device i's
    stores (``producer[i]``, presented as fast as taken) are released wave by wave
    (``waves[i]``: one descriptor per wave), each wave after its operand READs (walking
    ``gemm_read_base``/``gemm_read_lines``) have come back and its compute steps are done;
    with it clear ``producer[i]`` passes straight through. The background read generator
    and the closed loop are not meant to run together (their READs share
    ``gemm_reads_done``).

    waves : In(stream.Signature(ClosedLoopGemm waves layout)).array(N)
        Each device's wave descriptors ``{lines, reads}``.
    gemm_enable : In(1)
    gemm_k_steps, gemm_step_cycles : In(16)
        Compute steps per wave and cycles per step, every device.
    gemm_outstanding : In(range(GEMM_OUTSTANDING + 1))
        READs in flight per device, at most.
    gemm_stall_cycles, gemm_compute_cycles, gemm_store_cycles, gemm_waves_done,
    gemm_read_latency_sum : Out(COUNTER_BITS).array(N)
        Each device's closed-loop counters (:class:`ClosedLoopGemm`).
    gemm_read_latency_max : Out(GEMM_COUNT_BITS).array(N)
        Longest READ latency of device i's closed loop, cycles.

    Random stalls (issue #18; environment): link i's packets reach unit (i + 1) % N
    through a :class:`StreamStall`, and unit i's memory request handshake is held by its
    ``mem_stall`` hook from a :class:`StallSource`, each closed in random cycles with
    probability ``stall_prob / 2**16`` from its own seeded generator. ``stall_prob`` = 0
    (the reset value of a testbench that never sets it) makes every gate a wire.

    stall_seed : In(STALL_SEED_BITS)
        The stall generators' seed (read in the first cycle after reset).
    stall_prob : In(STALL_PROB_BITS)
        Stall probability per cycle of every gate, units of 2**-16 (:func:`stall_prob_code`).
    link_stall_cycles : Out(COUNTER_BITS).array(N)
        Cycles a packet of link i was held back by its gate.
    mem_stall_cycles : Out(COUNTER_BITS).array(N)
        Cycles a request to unit i's memory was held back by its gate.
    devices : int
        N.
    link_depth : int
        Each link's FIFO depth.
    """

    def __init__(self, *, cfg: T3Config, link_depth: int | None = None):
        if link_depth is not None:
            check_int("T3Ring", "link_depth", link_depth, lo=2)
        self._link_depth_arg = link_depth
        super().__init__(cfg, self._ports)

    def _ports(self, cfg: T3Config) -> dict:
        n = cfg.ring_devices
        if not 2 <= n <= MAX_DEVICES:
            raise ConfigError(f"T3Ring: ring_devices={n}: the RTL ring supports "
                              f"2..{MAX_DEVICES} devices")
        host = MemoryPort(cfg=cfg).flip()
        csr = CsrBus(cfg=cfg).flip()
        return {
            "producer": In(stream.Signature(layouts.producer_request(cfg))).array(n),
            "host": host.members["req"].array(n),
            "host_resp": host.members["resp"].array(n),
            "csr_req": csr.members["req"].array(n),
            "csr_resp": csr.members["resp"].array(n),
            "irq": Out(n),
            "link_latency": In(LATENCY_BITS),
            "link_num": In(CREDIT_BITS),
            "link_den": In(CREDIT_BITS),
            "queue_level": Out(range(cfg.mem_queue_depth + 1)).array(n),
            "mem_reqs": Out(COUNTER_BITS).array(n),
            "mem_busy_cycles": Out(COUNTER_BITS).array(n),
            "queue_full_cycles": Out(COUNTER_BITS).array(n),
            "link_busy_cycles": Out(COUNTER_BITS).array(n),
            "link_in_flight": Out(range(self.link_depth + 1)).array(n),
            "gemm_read_num": In(CREDIT_BITS),
            "gemm_read_den": In(CREDIT_BITS),
            "gemm_read_base": In(cfg.addr_bits),
            "gemm_read_lines": In(cfg.addr_bits + 1),
            "gemm_read_count": In(COUNTER_BITS).array(n),
            "gemm_reads_issued": Out(COUNTER_BITS).array(n),
            "gemm_reads_done": Out(COUNTER_BITS).array(n),
            **{name: Out(COUNTER_BITS).array(n) for name in UNIT_MEMORY_COUNTERS},
            "waves": In(stream.Signature(wave_descriptor(GEMM_COUNT_BITS))).array(n),
            "gemm_enable": In(1),
            "gemm_k_steps": In(16),
            "gemm_step_cycles": In(16),
            "gemm_outstanding": In(range(GEMM_OUTSTANDING + 1)),
            **{f"gemm_{name}": Out(COUNTER_BITS).array(n) for name in GEMM_COUNTERS},
            "gemm_read_latency_max": Out(GEMM_COUNT_BITS).array(n),
            "stall_seed": In(STALL_SEED_BITS),
            "stall_prob": In(STALL_PROB_BITS),
            "link_stall_cycles": Out(COUNTER_BITS).array(n),
            "mem_stall_cycles": Out(COUNTER_BITS).array(n),
        }

    @staticmethod
    def _closed_loop(cfg: T3Config) -> ClosedLoopGemm:
        return ClosedLoopGemm(cfg=cfg, count_bits=GEMM_COUNT_BITS, max_outstanding=GEMM_OUTSTANDING)

    @property
    def devices(self) -> int:
        return self.cfg.ring_devices

    @property
    def link_depth(self) -> int:
        return self._link_depth_arg or LinkModel.depth_for(self.cfg.link_latency_cycles,
                                                           self.cfg.link_lines_per_cycle)

    def elaborate(self, platform):
        m = Module()
        cfg, n = self.cfg, self.cfg.ring_devices
        units = [T3Unit(cfg=cfg) for _ in range(n)]
        links = [LinkModel(payload_shape=layouts.link_packet(cfg), depth=self.link_depth,
                           latency_bits=LATENCY_BITS, credit_bits=CREDIT_BITS) for _ in range(n)]
        host = MemoryPort(cfg=cfg).flip()
        csr = CsrBus(cfg=cfg).flip()
        for i, (u, lk) in enumerate(zip(units, links)):
            m.submodules[f"unit{i}"] = u
            m.submodules[f"link{i}"] = lk
            m.submodules[f"gemm_reads{i}"] = gen = GemmReadGenerator(cfg=cfg, credit_bits=CREDIT_BITS)
            m.submodules[f"compute_merge{i}"] = cmerge = StreamMerge(
                payload_shape=layouts.producer_request(cfg), n=2)
            m.submodules[f"gemm{i}"] = clg = self._closed_loop(cfg)
            connect(m, wiring.flipped(self.producer[i]), clg.stores)
            connect(m, wiring.flipped(self.waves[i]), clg.waves)
            connect(m, clg.out, cmerge.i0)
            connect(m, gen.req, cmerge.i1)
            connect(m, cmerge.o, u.producer)
            m.d.comb += [
                gen.num.eq(self.gemm_read_num), gen.den.eq(self.gemm_read_den),
                gen.base.eq(self.gemm_read_base), gen.lines.eq(self.gemm_read_lines),
                gen.count.eq(self.gemm_read_count[i]),
                clg.enable.eq(self.gemm_enable), clg.k_steps.eq(self.gemm_k_steps),
                clg.step_cycles.eq(self.gemm_step_cycles),
                clg.outstanding.eq(self.gemm_outstanding),
                clg.read_base.eq(self.gemm_read_base), clg.read_lines.eq(self.gemm_read_lines),
                clg.reads_done.eq(u.gemm_reads_done),
                self.gemm_reads_issued[i].eq(gen.issued + clg.reads_issued),
                self.gemm_reads_done[i].eq(u.gemm_reads_done),
                self.gemm_read_latency_max[i].eq(clg.read_latency_max),
                *(getattr(self, f"gemm_{name}")[i].eq(getattr(clg, name)) for name in GEMM_COUNTERS),
                *(getattr(self, name)[i].eq(getattr(u, name)) for name in UNIT_MEMORY_COUNTERS),
            ]
            connect(m, wiring.flipped(host.view(req=self.host[i], resp=self.host_resp[i])),
                    u.host_port)
            connect(m, wiring.flipped(csr.view(req=self.csr_req[i], resp=self.csr_resp[i])),
                    u.csr)
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
        self._stalls(m, units, links)
        return m

    def _stalls(self, m: Module, units: list[T3Unit], links: list[LinkModel]) -> None:
        """Link i's ``rx`` into unit (i + 1) % N's ingress through a :class:`StreamStall`
        (instance i), and unit i's ``mem_stall`` from a :class:`StallSource` (instance
        ``STALL_MEM_INDEX + i``); every one seeded by ``stall_seed`` at ``stall_prob``."""
        cfg, n = self.cfg, len(units)
        for i in range(n):
            m.submodules[f"link_stall{i}"] = gate = StreamStall(
                payload_shape=layouts.link_packet(cfg), index=i)
            m.submodules[f"mem_stall{i}"] = src = StallSource(index=STALL_MEM_INDEX + i)
            connect(m, links[i].rx, gate.i)
            connect(m, gate.o, units[(i + 1) % n].ingress)
            m.d.comb += [
                gate.seed.eq(self.stall_seed), gate.prob.eq(self.stall_prob),
                src.seed.eq(self.stall_seed), src.prob.eq(self.stall_prob),
                src.active.eq(units[i].mem_offered), units[i].mem_stall.eq(src.stall),
                self.link_stall_cycles[i].eq(gate.stalled),
                self.mem_stall_cycles[i].eq(src.stalled),
            ]


designs.register("t3_ring", lambda cfg: T3Ring(cfg=cfg.replace(ring_devices=min(cfg.ring_devices, MAX_DEVICES))))
