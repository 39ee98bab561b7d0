"""`python -m verif.formal [NAME ...]`: run every proof (must PASS) and every mutant (must
FAIL with its named assertion violated); exit 1 otherwise. Used by `make formal`. Known
hardware bugs (each harness module's KNOWN_BUGS, expected to FAIL until fixed) are run
and reported, not counted.

Each harness module defines PROOFS, a list of (name, factory, mode, depth), and
MUTANTS, a list of (name, factory, proof, assertion): the mutant's harness, the name of
the proof it breaks (the mutant runs at that proof's mode and depth, never deeper) and
the ``<name>`` of the ``assert_<name>`` the counterexample must violate (another
assertion failing = not caught). A legacy entry (name, factory, mode, depth) names no
assertion: it must FAIL, for any reason. Optionally SUITE_SKIP (names too slow for the
regular pytest suite: `make formal` only) and KNOWN_BUGS."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Callable

from .runner import run_formal

#: harness modules
MODULES = ["verif.formal.arbiter", "verif.formal.streams", "verif.formal.nmc",
           "verif.formal.tracker", "verif.formal.dram", "verif.formal.ring"]


@dataclass(frozen=True)
class Mutant:
    """A mutant check resolved against its proof: run ``factory()`` at ``mode``/``depth``
    (the proof's); caught when it FAILS with ``assert_<expect>`` violated (``expect``
    None: a legacy entry, any failure)."""
    name: str
    factory: Callable
    mode: str
    depth: int
    proof: str | None
    expect: str | None

    def caught(self, result) -> bool:
        """The verdict on ``result`` (a :class:`FormalResult` of this check)."""
        if self.expect is None:
            return result.status == "FAIL"
        return result.caught(self.expect)


def _resolve(entry, proofs: dict, module: str) -> Mutant:
    """A module's MUTANTS entry as a :class:`Mutant` (its proof's mode and depth)."""
    if len(entry) != 4:
        raise ValueError(f"{module}: MUTANTS entry {entry[0]!r}: must be (name, factory, proof,"
                         f" assertion) or (name, factory, mode, depth)")
    name, factory, third, fourth = entry
    if isinstance(fourth, int):                       # legacy (name, factory, mode, depth)
        return Mutant(name, factory, third, fourth, None, None)
    if third not in proofs:
        raise ValueError(f"{module}: mutant {name!r}: proof {third!r} is not in any PROOFS")
    _, _, mode, depth = proofs[third]
    if mode == "cover":
        raise ValueError(f"{module}: mutant {name!r}: {third!r} is a cover, not a proof")
    if not isinstance(fourth, str) or not fourth:
        raise ValueError(f"{module}: mutant {name!r}: assertion={fourth!r}: must name the "
                         f"assert_<name> that fails")
    return Mutant(name, factory, mode, depth, third, fourth)


def collect_checks(*, with_known_bugs: bool = False):
    """(proofs, mutants as :class:`Mutant`, suite_skip names[, known_bugs]) over every
    harness module."""
    modules = [importlib.import_module(name) for name in MODULES]
    proofs, skip, bugs = [], set(), []
    for mod in modules:
        proofs += getattr(mod, "PROOFS", [])
        skip |= set(getattr(mod, "SUITE_SKIP", ()))
        bugs += getattr(mod, "KNOWN_BUGS", [])
    by_name = {p[0]: p for p in proofs}
    mutants = [_resolve(e, by_name, mod.__name__) for mod in modules
               for e in getattr(mod, "MUTANTS", [])]
    names = [c[0] for c in proofs + bugs] + [mt.name for mt in mutants]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"verif.formal: duplicate check names {sorted(dup)}")
    return (proofs, mutants, skip, bugs) if with_known_bugs else (proofs, mutants, skip)


def collect(*, with_known_bugs: bool = False):
    """(proofs, mutants, suite_skip names[, known_bugs]), every check a tuple (name,
    factory, mode, depth) -- the mutants at their proofs' mode and depth (what
    verif/mutation.py runs)."""
    proofs, mutants, skip, bugs = collect_checks(with_known_bugs=True)
    flat = [(mt.name, mt.factory, mt.mode, mt.depth) for mt in mutants]
    return (proofs, flat, skip, bugs) if with_known_bugs else (proofs, flat, skip)


def main(argv: list[str]) -> int:
    proofs, mutants, _, bugs = collect_checks(with_known_bugs=True)
    known = {c[0] for c in proofs + bugs} | {mt.name for mt in mutants}
    unknown = [a for a in argv if a not in known]
    if unknown:
        print(f"verif.formal: unknown check(s) {unknown}; known: {sorted(known)}")
        return 2
    bad = 0
    print(f"{'check':34} {'mode':6} {'depth':>5} {'expect':6} {'got':7} {'time':>7}")
    rows = [(c, "PASS", True, None) for c in proofs]
    rows += [((mt.name, mt.factory, mt.mode, mt.depth), "FAIL", True, mt) for mt in mutants]
    rows += [(c, "FAIL", False, None) for c in bugs]
    for (name, factory, mode, depth), expect, counted, mt in rows:
        if argv and name not in argv:
            continue
        r = run_formal(factory(), name, mode=mode, depth=depth)
        ok = mt.caught(r) if mt is not None else r.status == expect
        note = ""
        if r.failed:
            note = f"   violated: {', '.join(sorted(r.failed))}"
        elif r.induction_failed:
            note = f"   induction step violates: {', '.join(sorted(r.induction_failed))}"
        if mt is not None and mt.expect is not None:
            note += f" (must: {mt.expect})"
        if not counted:
            note += "   known bug, still present" if ok else "   known bug FIXED? move it to PROOFS"
        elif not ok:
            bad += 1
            note += f"   <-- see {r.workdir}"
        print(f"{name:34} {mode:6} {depth:5} {expect:6} {r.status:7} {r.seconds:6.1f}s"
              + note, flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
