"""Formal harness of the MemoryArbiter.

Assumed: both input streams obey valid/ready (a stalled valid stays valid with the same
payload); policy, threshold and starve_limit are stable; no reset after start.
Proved by k-induction (depth 20 > the largest starve_limit of 15):
  * out obeys valid/ready: a stalled grant keeps its valid and payload;
  * conservation: a transfer on out is exactly one input transfer, with its payload;
  * starvation bound (out.ready held high): under MCA a communication request waits at
    most max(starve_limit, 1) - 1 cycles; under round-robin at most 1 cycle.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cover, Module, Mux, ResetSignal, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from hw.arbiter import MemoryArbiter, Policy

from .mutants import ArbiterWithoutHold, ArbiterWithoutStarvationGuard
from .streams import prop

PAYLOAD_BITS = 4
LEVEL_BITS = 3
STARVE_BITS = 4


class ArbiterHarness(wiring.Component):
    def __init__(self, *, arbiter_cls=MemoryArbiter, always_ready: bool = False):
        self._cls = arbiter_cls
        self._always_ready = always_ready
        super().__init__({
            "c_valid": In(1), "c_payload": In(PAYLOAD_BITS),
            "m_valid": In(1), "m_payload": In(PAYLOAD_BITS),
            "o_ready": In(1), "policy": In(1), "queue_level": In(LEVEL_BITS),
            "threshold": In(LEVEL_BITS), "starve_limit": In(STARVE_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self._cls(payload_shape=unsigned(PAYLOAD_BITS),
                                           level_bits=LEVEL_BITS, starve_bits=STARVE_BITS)
        m.d.comb += [
            dut.compute.valid.eq(self.c_valid), dut.compute.payload.eq(self.c_payload),
            dut.comm.valid.eq(self.m_valid), dut.comm.payload.eq(self.m_payload),
            dut.out.ready.eq(self.o_ready), dut.policy.eq(self.policy),
            dut.queue_level.eq(self.queue_level), dut.threshold.eq(self.threshold),
            dut.starve_limit.eq(self.starve_limit),
        ]
        m.d.comb += Assume(~ResetSignal())
        if self._always_ready:
            m.d.comb += Assume(self.o_ready)

        started = Signal()
        m.d.sync += started.eq(1)
        # one-cycle history
        p = {n: Signal.like(s, name=f"past_{n}") for n, s in (
            ("c_valid", self.c_valid), ("c_ready", dut.compute.ready), ("c_payload", self.c_payload),
            ("m_valid", self.m_valid), ("m_ready", dut.comm.ready), ("m_payload", self.m_payload),
            ("o_valid", dut.out.valid), ("o_ready", self.o_ready), ("o_payload", dut.out.payload),
            ("policy", self.policy), ("threshold", self.threshold), ("limit", self.starve_limit))}
        m.d.sync += [p["c_valid"].eq(self.c_valid), p["c_ready"].eq(dut.compute.ready),
                     p["c_payload"].eq(self.c_payload), p["m_valid"].eq(self.m_valid),
                     p["m_ready"].eq(dut.comm.ready), p["m_payload"].eq(self.m_payload),
                     p["o_valid"].eq(dut.out.valid), p["o_ready"].eq(self.o_ready),
                     p["o_payload"].eq(dut.out.payload), p["policy"].eq(self.policy),
                     p["threshold"].eq(self.threshold), p["limit"].eq(self.starve_limit)]

        with m.If(started):
            # input stream rules and stable configuration (assumptions)
            with m.If(p["c_valid"] & ~p["c_ready"]):
                m.d.comb += Assume(self.c_valid & (self.c_payload == p["c_payload"]))
            with m.If(p["m_valid"] & ~p["m_ready"]):
                m.d.comb += Assume(self.m_valid & (self.m_payload == p["m_payload"]))
            m.d.comb += Assume((self.policy == p["policy"]) & (self.threshold == p["threshold"])
                               & (self.starve_limit == p["limit"]))
            # output stream rule
            with m.If(p["o_valid"] & ~p["o_ready"]):
                prop(m, Assert, dut.out.valid & (dut.out.payload == p["o_payload"]), "rule_out")

        # conservation: one output transfer == exactly one input transfer, same payload
        c_fire = dut.compute.valid & dut.compute.ready
        m_fire = dut.comm.valid & dut.comm.ready
        o_fire = dut.out.valid & dut.out.ready
        prop(m, Assert, (o_fire == (c_fire ^ m_fire)) & ~(c_fire & m_fire), "one_transfer")
        with m.If(c_fire):
            prop(m, Assert, dut.out.payload == self.c_payload, "payload_compute")
        with m.If(m_fire):
            prop(m, Assert, dut.out.payload == self.m_payload, "payload_comm")

        # starvation bound
        waited = Signal(STARVE_BITS + 2)
        with m.If(self.m_valid & ~m_fire):
            m.d.sync += waited.eq(waited + 1)
        with m.Else():
            m.d.sync += waited.eq(0)
        if self._always_ready:
            limit = Signal(STARVE_BITS + 1)
            m.d.comb += limit.eq(self.starve_limit)
            bound = Mux(self.policy == Policy.MCA, Mux(limit == 0, 0, limit - 1), 1)
            prop(m, Assert, waited <= bound, "starvation")
            prop(m, Cover, (self.policy == Policy.MCA) & m_fire & (waited == 5) & self.c_valid,
                 "mca_forced_after_wait")
        prop(m, Cover, c_fire & p["m_valid"] & started, "compute_first")
        return m


#: (name, harness factory, mode, depth) -- the proofs `make formal` and the tests run
PROOFS = [
    ("arbiter_streams", lambda: ArbiterHarness(), "prove", 8),
    ("arbiter_starvation", lambda: ArbiterHarness(always_ready=True), "prove", 2 ** STARVE_BITS + 4),
    # non-vacuity at the shallower proof's depth
    ("arbiter_cover", lambda: ArbiterHarness(always_ready=True), "cover", 8),
]

#: cover -> the check it shows non-vacuous (the cover's depth is no greater)
COVERS = {"arbiter_cover": "arbiter_streams"}

#: deliberately broken variants (verif/formal/mutants.py): (name, harness factory, the
#: proof it breaks -- its mode and depth --, the assertion that must fail). The
#: conservation group (one_transfer, payload_*) has no mutant: the arbiter's grant mux
#: and handshakes are structural, no design-decision method shapes them.
MUTANTS = [
    ("arbiter_mutant_nohold", lambda: ArbiterHarness(arbiter_cls=ArbiterWithoutHold),
     "arbiter_streams", "rule_out"),
    ("arbiter_mutant_starve",
     lambda: ArbiterHarness(arbiter_cls=ArbiterWithoutStarvationGuard, always_ready=True),
     "arbiter_starvation", "starvation"),
]
