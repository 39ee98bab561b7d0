"""Formal harness of the DramController (hw/dram.py): same-line order, no refused
request, and the no-starvation bound of the age cap.

Configuration (small enough for the solver, every mechanism present): :data:`CFG` = the
package's TINY one with a 2-stage ALU (so ComputeMemory's same-line UPDATE hazard exists)
and a queue of 4; :data:`TIMING` = 2 bank groups x 2 banks, rows of 2 lines, 2 rows per
bank (16 lines), every constraint of a few cycles, ``t_cl + 1`` equal to ComputeMemory's
READ latency (the return-buffer bypass), ``t_rmw`` equal to ``fp_adder_stages``, age cap
3; 16 return slots.

Free inputs every cycle: the request stream (valid, op, address, mask; data is 0: no
property looks at it), the response sink's ready, and ``watch``. Nothing is assumed
about the request stream (any valid/payload sequence); no reset after the start. The
harness reads the controller's registers through ``dut._state``.

Checks (:data:`PROOFS`):

* ``dram_order`` (k-induction, depth 7: an unbounded proof; 7 so that its cover
  ``dram_cover_order`` is reached within it): a column command never issues while an
  older waiting request has the same line address (``same_line_order``), so the memory
  contents are those of the in-order model; with the table's shape (the valid entries
  are the first ``count``) as the inductive strengthening;
* ``dram_no_refusal`` (BMC, 30 cycles): ``error`` stays 0 -- ComputeMemory takes every
  request in the cycle of its column command (its UPDATE hazard and READ credits never
  hold one back) and its READ data arrives exactly when the return path expects it
  (ComputeMemory's internal state is not visible to an induction, hence bounded);
* ``dram_urgent_service`` (``resp.ready`` high, BMC, :data:`URGENT_DEPTH` cycles): the
  oldest request, once urgent, issues within ``U`` =
  :func:`contract.dram_bounds.urgent_service_bound` = 10 cycles -- the lemma from which
  the bound follows (contract/dram_bounds.py);
* ``dram_starvation`` (``resp.ready`` high, BMC, :data:`STARVATION_DEPTH` cycles): the
  solver marks (``watch``) any one accepted request; the harness follows its place in
  the age order and counts the cycles since its acceptance; it must issue within
  :func:`contract.dram_bounds.starvation_bound` = ``age_cap + Q (U + 1) - 1`` = 46.
  The depth covers requests accepted in the first 3 cycles only (the solver stalls one
  step further); the lemma above and tests/test_dram_bounds.py (long adversarial runs
  of the cycle model) carry the rest.
* ``dram_cover_order``: a column command from the youngest position (depth 7);
  ``dram_cover``: a request served after waiting twice the age cap, an urgent request
  served late (depth 24, within the bounds' depths).

Both bounded checks use the controller with its ComputeMemory stubbed out
(``stub_memory``): the schedule never looks at the memory. Unbounded proofs of the two
bounds were tried (k-induction of the lemma with invariants over the waiting table, the
timing counters and the READ return state; ABC PDR): the solver did not finish within
tens of minutes.

Mutants (broken variants of hw.dram.DramController's design decisions): no age cap (the
bound fails: a stream of row hits starves an older row miss), any row hit as its bank's
candidate (same-line order fails), the memory built with a deeper ALU than the schedule
assumes (``no_refusal`` fails). Each must FAIL, at its proof's mode and depth, with that
assertion violated.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cat, Const, Cover, Module, Mux, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from contract.dram import DramTiming
from contract.dram_bounds import starvation_bound, urgent_service_bound
from contract.spec import OP_BITS
from hw.dram import DramController
from hw.nmc import ComputeMemory

from .mutants import mutant
from .streams import TINY, prop

__all__ = ["CFG", "TIMING", "DramHarness", "PROOFS", "MUTANTS", "SUITE_SKIP", "COVERS",
           "ControllerMemoryDeeperAlu",
           "ControllerWithoutAgeCap", "ControllerAnyRowHit"]

CFG = TINY.replace(fp_adder_stages=2, mem_queue_depth=4)
TIMING = DramTiming(bank_groups=2, banks_per_group=2, row_lines=2, t_rcd=2, t_rcd_wr=1,
                    t_cl=3, t_cwl=1, t_rp=2, t_ras=3, t_ccd_s=1, t_ccd_l=2, t_wr=1, t_rtp=1,
                    t_wtr_s=1, t_wtr_l=2, t_rtw=2, t_rrd_s=1, t_rrd_l=2, t_faw=4, t_rmw=2,
                    age_cap=3)
BOUND = starvation_bound(TIMING, CFG.mem_queue_depth)
assert urgent_service_bound(TIMING) == 10 and BOUND == 46
#: BMC depths of the two bounded checks (module doc)
URGENT_DEPTH = 25
STARVATION_DEPTH = 50


class _NoMemory(ComputeMemory):
    """Stands in for ComputeMemory in the harnesses of the schedule (which never looks at
    the memory): the same ports; takes every request, answers none."""

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.req.ready.eq(1)
        return m


def _stub_memory(self):
    """``DramController._memory`` of the bound harnesses: the solver need not carry the
    storage and the adders, which the schedule never sees."""
    return _NoMemory(cfg=self.cfg)


@mutant
class ControllerWithoutAgeCap(DramController):
    """No request ever becomes urgent: pure FR-FCFS, whose row hits can starve an older
    row miss. Caught by ``dram_mutant_no_age_cap`` (starvation bound)."""

    def _urgent(self, oldest):
        return Const(0)


@mutant
class ControllerAnyRowHit(DramController):
    """Every row hit is a column candidate, not only its bank's oldest: a younger
    request to a line can pass an older one whose timing is not met yet. Caught by
    ``dram_mutant_any_hit`` (same-line order)."""

    def _column_candidate(self, hit, older_hit):
        return hit


@mutant
class ControllerMemoryDeeperAlu(DramController):
    """The storage behind the schedule is built with an ALU one stage deeper than the
    configuration the schedule's timing (``t_rmw``, the READ return) is derived from: an
    UPDATE is still in flight when the schedule issues the next one, a READ's data comes
    late. Caught by ``dram_mutant_deeper_alu`` (``no_refusal``)."""

    def _memory(self):
        return ComputeMemory(cfg=self.cfg.replace(fp_adder_stages=self.cfg.fp_adder_stages + 1))


class DramHarness(wiring.Component):
    """The controller with free inputs, its properties and covers (module doc)."""

    CHECKS = ("order", "refusal", "urgent", "starvation")

    def __init__(self, *, controller_cls=DramController, checks=CHECKS,
                 always_ready: bool = False, stub_memory: bool = False):
        if stub_memory:
            controller_cls = type(f"{controller_cls.__name__}_without_memory",
                                  (controller_cls,), {"_memory": _stub_memory})
        self._dut = controller_cls(cfg=CFG, timing=TIMING)
        self._checks = set(checks)
        self._always_ready = always_ready
        super().__init__({"req_valid": In(1), "req_op": In(OP_BITS),
                          "req_addr": In(CFG.addr_bits), "req_mask": In(CFG.lanes),
                          "resp_ready": In(1), "watch": In(1)})

    def elaborate(self, platform):
        m = Module()
        dut = self._dut
        m.submodules.dut = dut
        st = dut._state               # its registers, named in the properties
        m.d.comb += [dut.req.valid.eq(self.req_valid), dut.req.payload.op.eq(self.req_op),
                     dut.req.payload.addr.eq(self.req_addr),
                     dut.req.payload.mask.eq(self.req_mask), dut.resp.ready.eq(self.resp_ready),
                     Assume(~ResetSignal())]
        if self._always_ready:
            m.d.comb += Assume(self.resp_ready)
        if "refusal" not in self._checks:         # only ComputeMemory's hazard sees masks
            m.d.comb += Assume(self.req_mask == 0)
        if "order" in self._checks:
            self._order(m, dut, st)
        if "refusal" in self._checks:
            prop(m, Assert, ~dut.error, "no_refusal")
        if "urgent" in self._checks:
            self._urgent_service(m, dut, st)
        if "starvation" in self._checks:
            self._starvation(m, dut, st)
        return m

    def _order(self, m: Module, dut, st) -> None:
        """same_line_order, and the table's shape the proof leans on."""
        q = st.q
        valid_ok, order_ok = [], []
        for k in range(len(q)):
            at_k = dut.issue.valid & (dut.issue.position == k)
            valid_ok.append(~at_k | q[k].valid)
            order_ok += [~(at_k & q[j].valid & (q[j].addr == q[k].addr)) for j in range(k)]
        prop(m, Assert, Cat(*valid_ok).all(), "issue_valid")
        prop(m, Assert, Cat(*order_ok).all(), "same_line_order")
        self._table_shape(m, st)
        prop(m, Cover, dut.issue.valid & (dut.issue.position == len(q) - 1), "issue_youngest")

    def _table_shape(self, m: Module, st) -> None:
        """The valid entries are the first ``count``."""
        q = st.q
        prop(m, Assert, st.count <= len(q), "count_in_range")
        for k in range(len(q)):
            prop(m, Assert, q[k].valid == (k < st.count), f"table_shape_{k}")

    def _urgent_service(self, m: Module, dut, st) -> None:
        """Lemma U: ``uw``, the cycles the oldest request has been urgent without
        issuing, never exceeds ``U`` = :func:`contract.dram_bounds.urgent_service_bound`."""
        U = urgent_service_bound(TIMING)
        uw = Signal(range(U + 2))
        head_issues = dut.issue.valid & (dut.issue.position == 0)
        with m.If(st.urgent & ~head_issues):
            m.d.sync += uw.eq(Mux(uw > U, uw, uw + 1))
        with m.Else():
            m.d.sync += uw.eq(0)
        prop(m, Assert, uw <= U, "urgent_service")
        prop(m, Cover, st.urgent & head_issues & (uw >= 4), "urgent_served_late")

    def _starvation(self, m: Module, dut, st) -> None:
        """Follow one watched request (marked by the solver at acceptance) through the
        age order to its column command; its wait must stay within the bound."""
        Q, cap = CFG.mem_queue_depth, TIMING.age_cap
        active = Signal()
        pos = Signal(range(Q))
        w = Signal(range(BOUND + 2))
        accepted = dut.req.valid & dut.req.ready
        fire, at = dut.issue.valid, dut.issue.position
        with m.If(active):
            with m.If(fire & (at == pos)):
                m.d.sync += active.eq(0)
            with m.Else():
                with m.If(fire & (at < pos)):
                    m.d.sync += pos.eq(pos - 1)
                with m.If(w <= BOUND):
                    m.d.sync += w.eq(w + 1)
        with m.Elif(accepted & self.watch):
            m.d.sync += [active.eq(1), w.eq(1), pos.eq(st.count - fire)]
        with m.If(active):
            prop(m, Assert, w <= BOUND, "starvation")
        prop(m, Cover, active & fire & (at == pos) & (w >= 2 * cap), "served_after_urgency")


#: (name, harness factory, mode, depth)
PROOFS = [
    # depth 7: its cover (a column command from the youngest position) is reached at step 6
    ("dram_order", lambda: DramHarness(checks=("order",)), "prove", 7),
    ("dram_cover_order", lambda: DramHarness(checks=("order",)), "cover", 7),
    ("dram_no_refusal", lambda: DramHarness(checks=("refusal",)), "bmc", 30),
    ("dram_urgent_service", lambda: DramHarness(checks=("urgent",), always_ready=True,
                                                stub_memory=True), "bmc", URGENT_DEPTH),
    ("dram_starvation", lambda: DramHarness(checks=("starvation",), always_ready=True,
                                            stub_memory=True), "bmc", STARVATION_DEPTH),
    # the two bounds' covers, within the shallower bound's depth
    ("dram_cover", lambda: DramHarness(checks=("urgent", "starvation"), always_ready=True,
                                       stub_memory=True), "cover", 24),
]

#: cover -> the check it shows non-vacuous (the cover's depth is no greater)
COVERS = {"dram_cover_order": "dram_order", "dram_cover": "dram_urgent_service"}

#: deliberately broken variants: (name, harness factory, the proof it breaks -- its mode
#: and depth --, the assertion that must fail)
MUTANTS = [
    ("dram_mutant_any_hit", lambda: DramHarness(controller_cls=ControllerAnyRowHit,
                                                checks=("order",)), "dram_order",
     "same_line_order"),
    ("dram_mutant_no_age_cap",
     lambda: DramHarness(controller_cls=ControllerWithoutAgeCap, checks=("starvation",),
                         always_ready=True, stub_memory=True), "dram_starvation", "starvation"),
    ("dram_mutant_deeper_alu",
     lambda: DramHarness(controller_cls=ControllerMemoryDeeperAlu, checks=("refusal",)),
     "dram_no_refusal", "no_refusal"),
]

#: minutes of solver time: `make formal` / T3_FORMAL_ALL=1 only
SUITE_SKIP = {"dram_urgent_service", "dram_starvation", "dram_mutant_no_age_cap"}
