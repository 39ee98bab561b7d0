"""Formal harness of the ComputeMemory against a one-line shadow model.

Configuration: :data:`CFG` = the package's TINY one with a 2-stage ALU (so the
operand-stage forwarding from s[1] and the same-line UPDATE hazard exist): 16 lines of
2 fp16 lanes.

The solver picks one line address ``A`` (a stable free input). The harness keeps the
shadow value of line A, applying every accepted request to A in program (acceptance)
order: STORE merges its data into the masked lanes, UPDATE merges ``shadow + data``
(computed by the harness's own NearMemoryAlu, a 1-stage FloatAdder per lane -- the
adder itself is proved bit-exact separately by the exhaustive fp tests). The solver
may mark ("watch") any accepted READ of A; the harness remembers the shadow value at
its acceptance and its place in the response order, and asserts that the response, when
it is popped, carries exactly that value.

So: every READ of A returns the line as left by all older requests, whatever the mix of
back-to-back STOREs, UPDATEs (overlapping masks or not) and READs to A and to other
lines, and whatever the response backpressure. Assumed: the request stream obeys
valid/ready, ops are READ/STORE/UPDATE (invalid ops are the error path, tested in
tests/test_nmc_amaranth.py), no reset; by default (``small_data``) every data element is
+0, 1.0 or 2.0 -- the forwarding and hazard logic never looks at data, and these values
keep a stale operand visible in the result while the solver's adder work stays small;
``nmc_shadow_any_data`` drops that assumption (shallower: the four fp16 adders cost).
BMC to the depths in :data:`PROOFS` (storage is unbounded-lifetime state: k-induction
does not converge).

Mutants (verif/formal/mutants.py, each overriding one design-decision method of
hw.nmc.ComputeMemory): no UPDATE hazard hold (``_update_hazard``), no STORE forwarding to
the operand stage (``_forward_stores``), no write-stage snoop (``_snoop``): each must FAIL.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cat, Cover, Module, Mux, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from hw.nmc import ComputeMemory, NearMemoryAlu
from hw.layouts import Op

from .mutants import MemoryWithoutHazardCheck, MemoryWithoutSnoop, MemoryWithoutStoreForwarding
from .streams import TINY, StreamRulesHarness, pass_through, prop

__all__ = ["CFG", "NmcShadowHarness", "PROOFS", "MUTANTS", "SUITE_SKIP"]

CFG = TINY.replace(fp_adder_stages=2)
SMALL_ONE, SMALL_TWO = 0x3C00, 0x4000     # fp16 1.0 and 2.0


class NmcShadowHarness(wiring.Component):
    def __init__(self, *, memory_cls=ComputeMemory, small_data: bool = True):
        self._dut = memory_cls(cfg=CFG)
        self._small_data = small_data
        super().__init__({"watch_addr": In(CFG.addr_bits), "watch": In(1),
                          **dict(self._dut.signature.members.items())})

    def elaborate(self, platform):
        m = Module()
        cfg = CFG
        m.submodules.rules = rules = StreamRulesHarness(lambda: self._dut)
        pass_through(m, rules, self)
        dut = self._dut
        m.d.comb += Assume(~ResetSignal())
        started = Signal()
        m.d.sync += started.eq(1)
        past_a = Signal(cfg.addr_bits)
        m.d.sync += past_a.eq(self.watch_addr)
        with m.If(started):
            prop(m, Assume, self.watch_addr == past_a, "stable_addr")

        req = dut.req.payload
        prop(m, Assume, Cat(*(req.op == op for op in Op)).any(), "valid_op")
        if self._small_data:
            # every element is +0, 1.0 or 2.0: sums stay distinct small integers (a stale
            # operand still gives a different line) and the adders are cheap to solve
            for i in range(cfg.lanes):
                e = req.data[i * cfg.elem_bits:(i + 1) * cfg.elem_bits]
                prop(m, Assume, (e == 0) | (e == SMALL_ONE) | (e == SMALL_TWO), f"small_data{i}")
        accepted = dut.req.valid & dut.req.ready
        to_a = accepted & (req.addr == self.watch_addr)

        def merge(base, new, sel):
            """lane i of ``new`` where ``sel[i]``, else of ``base`` (written here, not
            taken from hw.nmc: the shadow model must not share the block's helpers)"""
            eb = cfg.elem_bits
            return Cat(*(Mux(sel[i], new.word_select(i, eb), base.word_select(i, eb))
                         for i in range(cfg.lanes)))

        # ---- shadow of line A (program order) ------------------------------------------
        m.submodules.alu = alu = NearMemoryAlu(cfg=cfg.replace(fp_adder_stages=1))
        base = Signal(cfg.line_bits)            # memory starts all zeros
        pend = Signal()                         # an UPDATE of A is in the harness ALU
        pmask = Signal(cfg.lanes)
        cur = Signal(cfg.line_bits)             # line A after every accepted request
        m.d.comb += [cur.eq(Mux(pend, merge(base, alu.result, pmask), base)),
                     alu.a.eq(cur), alu.b.eq(req.data),
                     alu.valid.eq(to_a & (req.op == Op.UPDATE))]
        m.d.sync += [base.eq(cur), pend.eq(0)]
        with m.If(to_a & (req.op == Op.STORE)):
            m.d.sync += base.eq(merge(cur, req.data, req.mask))
        with m.If(to_a & (req.op == Op.UPDATE)):
            m.d.sync += [pend.eq(1), pmask.eq(req.mask)]

        # ---- one watched READ of A -----------------------------------------------------
        pop = dut.resp.valid & dut.resp.ready
        took_read = accepted & (req.op == Op.READ)
        outstanding = Signal(range(16))         # READs accepted, responses not popped
        m.d.sync += outstanding.eq(outstanding + took_read - pop)
        watching = Signal()
        expected = Signal(cfg.line_bits)
        ahead = Signal(range(16))               # responses to pop before the watched one
        with m.If(watching & pop):
            with m.If(ahead == 0):
                prop(m, Assert, dut.resp.payload.data == expected, "read_returns_shadow")
                m.d.sync += watching.eq(0)
            with m.Else():
                m.d.sync += ahead.eq(ahead - 1)
        with m.If(to_a & (req.op == Op.READ) & self.watch & ~watching):
            m.d.sync += [watching.eq(1), expected.eq(cur), ahead.eq(outstanding - pop)]
        prop(m, Assert, ~pop | (outstanding != 0), "no_spurious_response")
        prop(m, Assert, ~dut.error, "no_error")
        prop(m, Cover, watching & pop & (ahead == 0) & (expected != 0), "checked_read")
        return m


#: (name, harness factory, mode, depth)
PROOFS = [
    ("nmc_shadow", lambda: NmcShadowHarness(), "bmc", 8),
    ("nmc_cover", lambda: NmcShadowHarness(), "cover", 8),
    ("nmc_shadow_deep", lambda: NmcShadowHarness(), "bmc", 10),
    ("nmc_shadow_any_data", lambda: NmcShadowHarness(small_data=False), "bmc", 7),
]

#: `make formal` only (minutes of solver time)
SUITE_SKIP = {"nmc_shadow_deep", "nmc_shadow_any_data"}

#: deliberately broken variants that must FAIL (verif/formal/mutants.py)
MUTANTS = [
    (f"nmc_mutant_{name}", lambda cls=cls: NmcShadowHarness(memory_cls=cls), "bmc", 8)
    for name, cls in (("no_hazard", MemoryWithoutHazardCheck),
                      ("no_store_forward", MemoryWithoutStoreForwarding),
                      ("no_snoop", MemoryWithoutSnoop))
]
