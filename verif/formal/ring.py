"""Ring-level liveness: two T3 units and their links run a tiny fused reduce-scatter.

Two :class:`hw.unit.T3Unit` (configuration :data:`CFG`: the package's TINY one) in a
ring through two :class:`hw.env.link.LinkModel` (depth 2, latency 1, one line per cycle):
unit i's ``egress`` -> link i -> unit (i + 1) % 2's ``ingress``. The harness programs
both units at reset through their register buses -- the writes of
:func:`contract.regmap.program_writes` for :func:`sim_models.collective.ring_programs`
of chunk 0 of a 4 x 2 output (2 chunks of 2 lines, WF tiles of 1 line), skipping the
writes of a register's reset value -- then each producer sends its GEMM trace: one
UPDATE per line of chunk 0 (wf id from the region: ``Region.tile_of_addr``).

Fused reduce-scatter + all-gather of chunk 0 (owner: unit 0): unit 1's UPDATEs are
REMOTE (2 packets on link 1); unit 0 counts its own and the remote UPDATE of each tile
(threshold 2), fires, and its DMA sends the reduced line as a STORE (2 packets on
link 0); unit 1 counts each STORE (threshold 1) and completes the tile (fire NONE).
So every unit completes :data:`TILES` = 2 fired tiles (its ``DMA_TILES`` counter) and
receives 2 packets.

Free (the solver's choices): when each producer offers its next request (once offered,
held with the same payload until taken: the stream rule), each unit's ``mem_stall``
(the memory handshake held closed) and a stall of each link's ``rx`` into the next
unit's ``ingress`` (both ``valid`` and ``ready`` held low: link backpressure), in any
cycle -- within a total budget of :data:`STALL_BUDGET` cycles in which any of these
delays anything (a producer holding back a ready request, or a stall input high).
After programming, the harness reads each unit's ``DMA_TILES`` register in a loop (its
last response is ``tiles_seen``).

Properties, checked at cycle :data:`BOUND` (the unstalled run + the stall budget + one
register access): ``every_tile_fires`` (every unit's last ``DMA_TILES`` read is 2),
``every_packet_arrives`` (every unit took 2 packets on ``ingress``), ``no_extra_tile``,
``no_extra_packet`` and ``no_error`` (no ``irq``, no memory error). At the bound only:
the packet counts saturate, ``DMA_TILES`` only grows and the error flags are sticky, so
the bound's values hold for every earlier cycle too, and the solver's earlier steps stay
trivial. Cover ``reduce_scatter_done`` (both reads 2, all packets in at the bound) is
hit in simulation (tests/test_ring_liveness_harness.py); as a formal cover at the
proof's depth it did not finish in 600 s, so there is no ring_cover check. BMC to
``BOUND + 1`` cycles: the bound holds on every path of producer timing and stalls within
the budget. Bounded, not proved.

Mutants (must FAIL with the named assertion; the mutant is substituted for its block
while the whole ring is elaborated, verif.mutation.substituted):
``ring_mutant_link_drop`` (LinkDropsUnderBackpressure: a packet offered while the link's
``rx`` is stalled is lost, so the tile waiting for it never completes:
``every_packet_arrives``), ``ring_mutant_fire_early`` (TrackerFiresEarly: a tile fires
one count early, on unit 0's first contribution; the second one then arrives for a
fired key and raises the tracker's sticky ``refire`` flag: ``no_error``).
"""

from __future__ import annotations

from amaranth.hdl import (Array, Assert, Assume, Cat, Const, Cover, Fragment, Module,
                          ResetSignal, Signal)
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from contract import latency, regmap
from contract.gemm import GemmSpec, split_chunks
from contract.spec import Op
from hw.env.link import LinkModel
from hw.layouts import link_packet
from hw.unit import T3Unit
from sim_models.collective import ring_programs

from .mutants import MUTANT_CLASSES, LinkDropsUnderBackpressure, TrackerFiresEarly
from .streams import TINY, prop

__all__ = ["CFG", "DEVICES", "TILES", "STALL_BUDGET", "BOUND", "RingLivenessHarness",
           "ring_program", "PROOFS", "MUTANTS", "SUITE_SKIP"]

CFG = TINY
DEVICES = 2
#: the producers' data in every lane: 1.0 (fp16; data never steers control)
ONE = 0x3C00
#: fired tiles (and packets received) per unit in the tiny reduce-scatter
TILES = 2
#: cycles in which the free inputs may delay anything (producer, memory, links)
STALL_BUDGET = 2
#: the unstalled run, programming included: the value of the harness's cycle counter
#: when the last DMA_TILES read returns TILES with every input at its fastest (Amaranth
#: simulation of this harness, tests/test_ring_liveness_harness.py)
RUN_CYCLES = 73
#: the liveness bound (cycle counter value): the unstalled run, plus the stall budget,
#: plus one register access (a delay can make the DMA_TILES read loop miss a change by
#: one access)
BOUND = RUN_CYCLES + STALL_BUDGET + latency.CSR


def ring_program():
    """(programs, producer traces): per unit its DeviceProgram and its producer's
    requests as (addr, wf_id) UPDATEs, for the fused reduce-scatter of chunk 0."""
    gemm = GemmSpec(m=4, n=CFG.lanes, k=2, devices=DEVICES, dtype=CFG.dtype,
                    wg_tile=(2, CFG.lanes), wf_tile=(1, CFG.lanes), cus=1, wg_cycles=1)
    chunk = split_chunks(gemm, gemm.geometry(CFG.lanes))[0]
    programs = ring_programs(CFG, gemm, [chunk])
    traces = [[(a, p.regions[0].tile_of_addr(CFG, a)) for a in range(chunk.base, chunk.limit)]
              for p in programs]
    return programs, traces


def _writes(program) -> list[tuple[int, int]]:
    """The register writes of ``program``, without those of a register's reset value."""
    reset = {r.addr: r.reset for r in regmap.registers(CFG)}
    return [(a, v) for a, v in regmap.program_writes(CFG, program) if v != reset[a]]


class RingLivenessHarness(wiring.Component):
    """The two-unit ring and its environment (module doc). ``stall_budget``: cycles the
    free inputs may delay anything; ``bound``: the cycle at which every tile must have
    fired and every packet arrived."""

    def __init__(self, *, stall_budget: int = STALL_BUDGET, bound: int = BOUND,
                 mutant: type | None = None):
        for name, v, lo in (("stall_budget", stall_budget, 0), ("bound", bound, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"RingLivenessHarness: {name}={v!r}: must be an integer >= {lo}")
        registered = MUTANT_CLASSES.get(getattr(mutant, "__name__", None))
        if mutant is not None and registered is not mutant:
            raise ValueError(f"RingLivenessHarness: mutant={mutant!r}: must be a registered "
                             f"mutant class (verif/formal/mutants.py)")
        self._budget, self._bound, self._mutant = stall_budget, bound, mutant
        self._programs, self._traces = ring_program()
        super().__init__({"offer": In(DEVICES), "mem_stall": In(DEVICES),
                          "link_stall": In(DEVICES)})

    def elaborate(self, platform):
        if self._mutant is None:
            return self._ring()
        # the units build their blocks inside: while the whole ring is elaborated, every
        # instance of the mutant's block is the mutant (verif.mutation's substitution)
        from verif.mutation import substituted
        with substituted(self._mutant.__name__):
            return Fragment.get(self._ring(), platform)

    def _ring(self) -> Module:
        m = Module()
        m.d.comb += Assume(~ResetSignal())
        cycle = Signal(range(self._bound + 2))
        with m.If(cycle <= self._bound):
            m.d.sync += cycle.eq(cycle + 1)
        units = [T3Unit(cfg=CFG) for _ in range(DEVICES)]
        links = [LinkModel(payload_shape=link_packet(CFG), depth=2, latency_bits=3,
                           credit_bits=3) for _ in range(DEVICES)]
        delays = []                           # per cycle: a free input delays something
        tiles, packets, errors = [], [], []   # per unit: last DMA_TILES read, packets in
        for d, (unit, link) in enumerate(zip(units, links)):
            m.submodules[f"unit{d}"] = unit
            m.submodules[f"link{d}"] = link
            m.d.comb += [link.latency.eq(1), link.num.eq(1), link.den.eq(1),
                         unit.host.valid.eq(0), unit.host_resp.ready.eq(1),
                         unit.mem_stall.eq(self.mem_stall[d])]
            wiring.connect(m, unit.egress, link.tx)
            nxt = units[(d + 1) % DEVICES]
            stall = self.link_stall[d]
            m.d.comb += [nxt.ingress.valid.eq(link.rx.valid & ~stall),
                         nxt.ingress.payload.eq(link.rx.payload),
                         link.rx.ready.eq(nxt.ingress.ready & ~stall)]
            programmed, tiles_seen = self._registers(m, d, unit)
            held_back = self._producer(m, d, unit, programmed)
            delays += [held_back, self.mem_stall[d], stall]
            # packets taken by the next unit (saturating)
            arrived = Signal(range(TILES + 2), name=f"arrived_at{(d + 1) % DEVICES}")
            with m.If(nxt.ingress.valid & nxt.ingress.ready & (arrived <= TILES)):
                m.d.sync += arrived.eq(arrived + 1)
            tiles += [tiles_seen]
            packets += [arrived]
            errors += [unit.irq, unit.mem_error]

        # every property over both units (one name each: a mutant names the one it
        # breaks), checked at the bound only: the packet counts saturate, DMA_TILES only
        # grows and the error flags are sticky, so "no more than expected" and "no
        # error" at the bound hold at every earlier cycle too (and the solver's earlier
        # steps stay trivial)
        all_tiles = Cat(*(n == TILES for n in tiles)).all()
        all_packets = Cat(*(n == TILES for n in packets)).all()
        with m.If(cycle == self._bound):
            prop(m, Assert, Cat(*(n <= TILES for n in packets)).all(), "no_extra_packet")
            prop(m, Assert, Cat(*(n <= TILES for n in tiles)).all(), "no_extra_tile")
            prop(m, Assert, ~Cat(*errors).any(), "no_error")
            prop(m, Assert, all_tiles, "every_tile_fires")
            prop(m, Assert, all_packets, "every_packet_arrives")

        spent = Signal(range(len(delays) * (self._bound + 2) + 1))
        m.d.sync += spent.eq(spent + sum(delays))
        prop(m, Assume, spent + sum(delays) <= self._budget, "stall_budget")
        # the whole reduce-scatter done at the bound (done stays done). Not a formal
        # check: as a cover at depth BOUND + 1 yices did not finish in 600 s (three
        # variants); tests/test_ring_liveness_harness.py hits it in simulation.
        prop(m, Cover, all_tiles & all_packets & (cycle == self._bound), "reduce_scatter_done")
        return m

    def _registers(self, m: Module, d: int, unit: T3Unit):
        """Program unit ``d`` through its register bus, then read DMA_TILES in a loop;
        a request is offered in the cycle the previous one's response is taken (the
        bus's fastest rate: one access per ``contract.latency.CSR`` cycles). Returns
        (the last write's response was taken, the last DMA_TILES read)."""
        writes = _writes(self._programs[d])
        steps = writes + [(regmap.reg(CFG, "DMA_TILES").addr, None)]   # the read repeats
        last = len(steps) - 1
        step = Signal(range(len(steps)), name=f"csr_step{d}")          # the next request
        in_flight = Signal(range(len(steps)), name=f"csr_in_flight{d}")  # the answered one
        waiting = Signal(name=f"csr_waiting{d}")   # a request was taken, its response not
        req, resp = unit.csr_req, unit.csr_resp
        addrs = Array(Const(a, len(req.payload.addr)) for a, _ in steps)
        datas = Array(Const(v or 0, len(req.payload.wdata)) for _, v in steps)
        taken = resp.valid & resp.ready
        m.d.comb += [req.valid.eq(~waiting | taken), req.payload.addr.eq(addrs[step]),
                     req.payload.wdata.eq(datas[step]), req.payload.write.eq(step != last),
                     resp.ready.eq(1)]
        with m.If(taken):
            m.d.sync += waiting.eq(0)
        with m.If(req.valid & req.ready):
            m.d.sync += [waiting.eq(1), in_flight.eq(step)]
            with m.If(step != last):
                m.d.sync += step.eq(step + 1)
        programmed = Signal(name=f"programmed{d}")
        tiles_seen = Signal(len(resp.payload.rdata), name=f"tiles_seen{d}")
        with m.If(taken & (in_flight == last)):
            m.d.sync += tiles_seen.eq(resp.payload.rdata)
        with m.If(taken & (in_flight == last - 1)):
            m.d.sync += programmed.eq(1)
        return programmed, tiles_seen

    def _producer(self, m: Module, d: int, unit: T3Unit, programmed):
        """Unit ``d``'s producer: its trace as UPDATEs, each offered when the solver says
        (``offer[d]``) and then held until taken. Returns "a request is held back"."""
        trace = self._traces[d]
        idx = Signal(range(len(trace) + 1), name=f"prod_idx{d}")
        offered = Signal(name=f"prod_offered{d}")
        pending = programmed & (idx < len(trace))
        p = unit.producer
        m.d.comb += [p.valid.eq(pending & (offered | self.offer[d])),
                     p.payload.op.eq(Op.UPDATE),
                     p.payload.addr.eq(Array(a for a, _ in trace)[idx]),
                     p.payload.wf_id.eq(Array(w for _, w in trace)[idx]),
                     p.payload.data.eq(sum(ONE << (i * CFG.elem_bits) for i in range(CFG.lanes)))]
        with m.If(p.valid & ~p.ready):
            m.d.sync += offered.eq(1)
        with m.If(p.valid & p.ready):
            m.d.sync += [offered.eq(0), idx.eq(idx + 1)]
        held_back = Signal(name=f"held_back{d}")
        m.d.comb += held_back.eq(pending & ~p.valid)
        return held_back


#: (name, harness factory, mode, depth)
PROOFS = [
    ("ring_liveness", lambda: RingLivenessHarness(), "bmc", BOUND + 1),
]

#: minutes of solver time: `make formal` only
SUITE_SKIP = {"ring_liveness", "ring_mutant_link_drop", "ring_mutant_fire_early"}

#: deliberately broken variants that must FAIL (verif/formal/mutants.py)
MUTANTS = [
    ("ring_mutant_link_drop", lambda: RingLivenessHarness(mutant=LinkDropsUnderBackpressure),
     "ring_liveness", "every_packet_arrives"),
    # the tile fires on its first contribution; the second one, arriving for a fired
    # key, raises the tracker's sticky `refire` flag (irq)
    ("ring_mutant_fire_early", lambda: RingLivenessHarness(mutant=TrackerFiresEarly),
     "ring_liveness", "no_error"),
]
