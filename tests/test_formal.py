"""Formal checks in the regular suite: every proof passes, every deliberately broken
variant is caught -- its proof, at the proof's mode and depth, fails with the assertion
the mutant entry names (another assertion failing is not a catch).

Checks a harness module lists in SUITE_SKIP (minutes of solver time) are skipped here
unless T3_FORMAL_ALL=1; `make formal` (python -m verif.formal) always runs them all."""

import importlib
import os

import pytest
from amaranth.hdl import Assert, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from verif.formal.__main__ import MODULES, Mutant, _resolve, collect, collect_checks
from verif.formal.runner import failed_assertions, run_formal
from verif.formal.streams import prop

PROOFS, MUTANTS, SUITE_SKIP = collect_checks()
ALL = os.environ.get("T3_FORMAL_ALL") == "1"


def _marks(name):
    return ([pytest.mark.slow, pytest.mark.skipif(
        not ALL, reason="make formal only (set T3_FORMAL_ALL=1)")] if name in SUITE_SKIP else [])


@pytest.mark.parametrize("name,factory,mode,depth",
                         [pytest.param(*p, id=p[0], marks=_marks(p[0])) for p in PROOFS])
def test_proof_passes(name, factory, mode, depth):
    r = run_formal(factory(), name, mode=mode, depth=depth)
    assert r.status == "PASS", f"{r.summary()}\n{r.log[-2000:]}"


@pytest.mark.parametrize("mt", [pytest.param(mt, id=mt.name, marks=_marks(mt.name))
                                for mt in MUTANTS])
def test_mutant_is_caught(mt):
    r = run_formal(mt.factory(), mt.name, mode=mt.mode, depth=mt.depth)
    want = f"assert_{mt.expect}" if mt.expect else "any assertion"
    assert mt.caught(r), f"mutant not caught ({want} must fail): {r.summary()}\n{r.log[-2000:]}"


def test_mutants_name_their_proof_and_assertion():
    """Every mutant runs at its proof's mode and depth and names the assertion it must
    violate (no legacy (name, factory, mode, depth) entry, which would pass on any
    failure)."""
    legacy = sorted(mt.name for mt in MUTANTS if mt.expect is None)
    assert not legacy, f"mutant entries naming no proof and assertion: {legacy}"
    proofs = {p[0]: p for p in PROOFS}
    for mt in MUTANTS:
        assert (mt.mode, mt.depth) == proofs[mt.proof][2:], mt


def test_covers_are_no_deeper_than_the_checks_they_show_non_vacuous():
    for module in MODULES:
        covers = getattr(importlib.import_module(module), "COVERS", {})
        depth = {p[0]: (p[2], p[3]) for p in PROOFS}
        for cover, check in covers.items():
            assert depth[cover][0] == "cover" and depth[check][0] != "cover", (cover, check)
            assert depth[cover][1] <= depth[check][1], (
                f"{cover} (depth {depth[cover][1]}) is deeper than {check} "
                f"(depth {depth[check][1]})")


class _TwoAsserts(wiring.Component):
    """A tiny harness for the runner itself: a free-running counter; ``assert_small``
    (counter < 3) fails at step 3, ``assert_even_or_odd`` never does."""

    def __init__(self):
        super().__init__({"unused": In(1)})

    def elaborate(self, platform):
        m = Module()
        c = Signal(4)
        m.d.sync += c.eq(c + 1)
        prop(m, Assert, c < 3, "small")
        prop(m, Assert, (c[0] == 0) | (c[0] == 1), "even_or_odd")
        return m


def test_a_mutant_failing_another_assertion_is_not_caught():
    r = run_formal(_TwoAsserts(), "runner_two_asserts", mode="bmc", depth=5)
    assert r.status == "FAIL" and r.failed == {"small"}, r.summary()
    assert Mutant("m", _TwoAsserts, "bmc", 5, "p", "small").caught(r)
    assert not Mutant("m", _TwoAsserts, "bmc", 5, "p", "even_or_odd").caught(r)
    assert Mutant("m", _TwoAsserts, "bmc", 5, None, None).caught(r)     # legacy: any


def test_a_check_that_passes_catches_no_mutant():
    r = run_formal(_TwoAsserts(), "runner_two_asserts_short", mode="bmc", depth=3)
    assert r.status == "PASS" and not r.failed, r.summary()
    assert not Mutant("m", _TwoAsserts, "bmc", 3, "p", "small").caught(r)


def test_failed_assertions_reads_the_last_step(tmp_path):
    vcd = tmp_path / "trace.vcd"
    vcd.write_text("$var wire 1 n0 assert_good $end\n$var wire 1 n1 assert_bad $end\n"
                   "$var wire 1 n2 assert_healed $end\n$var wire 4 n3 assert_wide $end\n"
                   "#0\nb1 n0\nb1 n1\n0n2\nb0000 n3\n#5\nb0 n1\n1n2\n")
    assert failed_assertions([vcd]) == {"bad"}


def test_mutant_entries_are_validated():
    proofs = {p[0]: p for p in PROOFS}
    with pytest.raises(ValueError, match=r"m: mutant 'x': proof 'nope' is not in any PROOFS"):
        _resolve(("x", None, "nope", "a"), proofs, "m")
    with pytest.raises(ValueError, match=r"'tracker_cover' is a cover, not a proof"):
        _resolve(("x", None, "tracker_cover", "a"), proofs, "m")
    with pytest.raises(ValueError, match=r"assertion='': must name the assert_<name>"):
        _resolve(("x", None, "tracker_progress", ""), proofs, "m")
    with pytest.raises(ValueError, match=r"must be \(name, factory, proof, assertion\)"):
        _resolve(("x", None, "tracker_progress"), proofs, "m")
    with pytest.raises(ValueError, match=r"run_formal: depth=0: must be a positive integer"):
        run_formal(_TwoAsserts(), "bad", depth=0)
    with pytest.raises(ValueError, match=r"run_formal: mode='prov': must be one of"):
        run_formal(_TwoAsserts(), "bad", mode="prov")


def test_collect_keeps_the_four_field_form():
    """verif/mutation.py runs checks from collect(): (name, factory, mode, depth), the
    mutants at their proofs' mode and depth."""
    proofs, mutants, _ = collect()
    assert all(len(c) == 4 for c in proofs + mutants)
    assert [c[0] for c in mutants] == [mt.name for mt in MUTANTS]


def test_suite_skip_names_exist():
    names = {p[0] for p in PROOFS} | {mt.name for mt in MUTANTS}
    assert SUITE_SKIP <= names, f"SUITE_SKIP names no check: {sorted(SUITE_SKIP - names)}"


def test_mutants_override_existing_design_methods():
    """A broken variant overrides a design-decision method of its block: a renamed hook,
    changed parameters or nothing overridden is an error at import, never a "mutant"
    that silently is the design."""
    from hw.tracker import TrackerTable
    from verif.formal.mutants import MUTANT_CLASSES, mutant
    # the formal harnesses' mutants of verif/formal/mutants.py (it registers more, for
    # the mutation campaign; verif/formal/dram.py registers the DRAM controller's)
    assert {"TrackerFiresEarly", "TrackerLosesSpill", "TrackerIgnoresFireSlots",
            "TrackerFireSlotCompareInverted",
            "ArbiterWithoutHold", "ArbiterWithoutStarvationGuard", "MemoryWithoutHazardCheck",
            "MemoryWithoutStoreForwarding", "MemoryWithoutSnoop"} <= set(MUTANT_CLASSES)
    for cls in MUTANT_CLASSES.values():
        block = cls.__mro__[1]
        own = [name for name, v in vars(cls).items() if callable(v)]
        assert len(own) == 1 and getattr(block, own[0]) is not getattr(cls, own[0]), cls
    with pytest.raises(TypeError, match=r"TrackerTable has no method '_fires' to override"):
        @mutant
        class Renamed(TrackerTable):
            def _fires(self, count_after, threshold):
                return 0
    with pytest.raises(TypeError, match=r"parameters differ from TrackerTable._completes"):
        @mutant
        class Reshaped(TrackerTable):
            def _completes(self, count):
                return 0
    with pytest.raises(TypeError, match=r"overrides nothing of TrackerTable"):
        @mutant
        class Same(TrackerTable):
            pass
    assert not {"Renamed", "Reshaped", "Same"} & set(MUTANT_CLASSES)
