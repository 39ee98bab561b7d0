"""Formal harness of the ComputeMemory against a one-line shadow model.

Configuration: :data:`CFG` = the package's TINY one with a 2-stage ALU (so the
operand-stage forwarding from s[1] and the same-line UPDATE hazard exist): 16 lines of
2 fp16 lanes.

The solver picks one line address ``A`` (a stable free input). The harness keeps the
shadow value of line A, applying every accepted request to A in program (acceptance)
order: STORE merges its data into the masked lanes, UPDATE merges ``shadow + data``
computed by :class:`verif.formal.golden_fp.GoldenFloatAdd` -- an independent adder
written from the bit-level golden model (exact fixed-point sum, one rounding), not the
design's NearMemoryAlu/FloatAdder, so a wrong sum from the design's ALU is a wrong line.
The solver may mark ("watch") any accepted READ of A; the harness remembers the shadow
value at its acceptance and its place in the response order, and asserts that the
response, when it is popped, carries exactly that value.

So: every READ of A returns the line as left by all older requests, whatever the mix of
back-to-back STOREs, UPDATEs (overlapping masks or not) and READs to A and to other
lines, and whatever the response backpressure. Assumed: the request stream obeys
valid/ready, ops are READ/STORE/UPDATE (invalid ops are the error path, tested in
tests/test_nmc_amaranth.py), no reset; by default (``data="small"``) every data element
is +0, 1.0 or 2.0 -- the forwarding and hazard logic never looks at data, and these
values keep a stale operand visible in the result while the solver's adder work stays
small; ``nmc_shadow_rich_data`` (``data="rich"``) draws every element from
:data:`RICH_VALUES` instead: signed zeros, the smallest subnormal, 1.0 and 1.0 + ulp with
half an ulp of 1.0 (rounding ties to even, both ways), -1.0 (cancellation), the largest
normal (overflow), both infinities and NaN -- so the design's rounding and special
values are compared with the golden add. Unrestricted data is not a check: with both
adders free it is an equivalence of two adder architectures, which did not finish in
600 s (step 6 of 7).
BMC to the depths in :data:`PROOFS` (storage is unbounded-lifetime state: k-induction
does not converge).

The shadow's adder is itself checked against :func:`sim_models.fparith.add_bits` in the
Amaranth simulator (tests/test_golden_fp.py: every special pair and seeded random
pairs, fp16/bf16/fp32). A formal equivalence with hw.fp.FloatAdder (a combinational
miter, fp16) did not finish in 600 s of yices and is not a check.

Mutants (verif/formal/mutants.py, each overriding one design-decision method of
hw.nmc.ComputeMemory): no UPDATE hazard hold (``_update_hazard``), no STORE forwarding to
the operand stage (``_forward_stores``), no write-stage snoop (``_snoop``): each must FAIL.
Wrong references (must FAIL, so the data-path comparison is not vacuous): the shadow
adder rounding ties away from zero (``nmc_wrong_ref_ties_away``, any data).
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cat, Cover, Module, Mux, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from hw.nmc import ComputeMemory
from hw.layouts import Op

from .golden_fp import GoldenFloatAdd
from .mutants import MemoryWithoutHazardCheck, MemoryWithoutSnoop, MemoryWithoutStoreForwarding
from .streams import TINY, StreamRulesHarness, pass_through, prop

__all__ = ["CFG", "NmcShadowHarness", "PROOFS", "MUTANTS", "SUITE_SKIP"]

CFG = TINY.replace(fp_adder_stages=2)
#: fp16 data values of ``data="small"``: +0, 1.0, 2.0
SMALL_VALUES = (0x0000, 0x3C00, 0x4000)
#: fp16 data values of ``data="rich"``: +0, -0, smallest subnormal, half an ulp of 1.0
#: (2**-11), 1.0, 1.0 + ulp, -1.0, largest normal, +inf, -inf, NaN
RICH_VALUES = (0x0000, 0x8000, 0x0001, 0x1000, 0x3C00, 0x3C01, 0xBC00, 0x7BFF, 0x7C00,
               0xFC00, 0x7E00)
DATA_VALUES = {"small": SMALL_VALUES, "rich": RICH_VALUES}


class NmcShadowHarness(wiring.Component):
    """The shadow harness (module doc). ``memory_cls``: the block or a mutant of it;
    ``data``: the values every data element is drawn from (:data:`DATA_VALUES`:
    ``"small"`` or ``"rich"``); ``rounding``: the shadow adder's (``"rna"`` = a wrong
    reference, must FAIL)."""

    def __init__(self, *, memory_cls=ComputeMemory, data: str = "small",
                 rounding: str = "rne"):
        self._dut = memory_cls(cfg=CFG)
        if data not in DATA_VALUES:
            raise ValueError(f"NmcShadowHarness: data={data!r}: must be one of "
                             f"{', '.join(DATA_VALUES)}")
        self._values = DATA_VALUES[data]
        self._rounding = rounding
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
        # every element from the chosen value set (small: sums stay distinct small
        # integers, so a stale operand still gives a different line, and the adders are
        # cheap to solve; rich: rounding ties, subnormals, overflow, specials)
        for i in range(cfg.lanes):
            e = req.data.word_select(i, cfg.elem_bits)
            prop(m, Assume, Cat(*(e == v for v in self._values)).any(), f"data_values{i}")
        accepted = dut.req.valid & dut.req.ready
        to_a = accepted & (req.addr == self.watch_addr)

        def merge(base, new, sel):
            """lane i of ``new`` where ``sel[i]``, else of ``base`` (written here, not
            taken from hw.nmc: the shadow model must not share the block's helpers)"""
            eb = cfg.elem_bits
            return Cat(*(Mux(sel[i], new.word_select(i, eb), base.word_select(i, eb))
                         for i in range(cfg.lanes)))

        # ---- shadow of line A (program order), golden adder per lane ------------------
        cur = Signal(cfg.line_bits)             # line A after every accepted request
        summed = Signal(cfg.line_bits)          # cur + req.data, lane by lane
        eb = cfg.elem_bits
        for i in range(cfg.lanes):
            m.submodules[f"golden{i}"] = add = GoldenFloatAdd(cfg.dtype, rounding=self._rounding)
            m.d.comb += [add.a.eq(cur.word_select(i, eb)), add.b.eq(req.data.word_select(i, eb)),
                         summed.word_select(i, eb).eq(add.result)]
        with m.If(to_a & (req.op == Op.STORE)):
            m.d.sync += cur.eq(merge(cur, req.data, req.mask))
        with m.If(to_a & (req.op == Op.UPDATE)):
            m.d.sync += cur.eq(merge(cur, summed, req.mask))

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
    ("nmc_shadow_rich_data", lambda: NmcShadowHarness(data="rich"), "bmc", 7),
]

#: `make formal` only (minutes of solver time)
SUITE_SKIP = {"nmc_shadow_deep"}

#: deliberately broken variants that must FAIL (verif/formal/mutants.py)
MUTANTS = [
    (f"nmc_mutant_{name}", lambda cls=cls: NmcShadowHarness(memory_cls=cls), "nmc_shadow",
     "read_returns_shadow")
    for name, cls in (("no_hazard", MemoryWithoutHazardCheck),
                      ("no_store_forward", MemoryWithoutStoreForwarding),
                      ("no_snoop", MemoryWithoutSnoop))
] + [
    # a wrong reference (the shadow adder rounds ties away): the data comparison is live
    ("nmc_wrong_ref_ties_away", lambda: NmcShadowHarness(data="rich", rounding="rna"),
     "nmc_shadow_rich_data", "read_returns_shadow"),
]
