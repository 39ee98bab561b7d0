"""`python -m verif.formal [NAME ...]`: run every proof (must PASS) and every mutant (must
FAIL); exit 1 otherwise. Used by `make formal`. Known hardware bugs (each harness
module's KNOWN_BUGS, expected to FAIL until fixed) are run and reported, not counted.

Each harness module defines PROOFS and MUTANTS, lists of (name, factory, mode, depth);
optionally SUITE_SKIP (names too slow for the regular pytest suite: `make formal` only)
and KNOWN_BUGS."""

from __future__ import annotations

import importlib
import sys
import time

from .runner import run_formal

#: harness modules
MODULES = ["verif.formal.arbiter", "verif.formal.streams", "verif.formal.nmc",
           "verif.formal.tracker", "verif.formal.dram"]


def collect(*, with_known_bugs: bool = False):
    """(proofs, mutants, suite_skip names[, known_bugs]) over every harness module."""
    proofs, mutants, skip, bugs = [], [], set(), []
    for name in MODULES:
        mod = importlib.import_module(name)
        proofs += getattr(mod, "PROOFS", [])
        mutants += getattr(mod, "MUTANTS", [])
        skip |= set(getattr(mod, "SUITE_SKIP", ()))
        bugs += getattr(mod, "KNOWN_BUGS", [])
    names = [c[0] for c in proofs + mutants + bugs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"verif.formal: duplicate check names {sorted(dup)}")
    return (proofs, mutants, skip, bugs) if with_known_bugs else (proofs, mutants, skip)


def main(argv: list[str]) -> int:
    proofs, mutants, _, bugs = collect(with_known_bugs=True)
    known = {c[0] for c in proofs + mutants + bugs}
    unknown = [a for a in argv if a not in known]
    if unknown:
        print(f"verif.formal: unknown check(s) {unknown}; known: {sorted(known)}")
        return 2
    bad = 0
    print(f"{'check':34} {'mode':6} {'depth':>5} {'expect':6} {'got':7} {'time':>7}")
    for items, expect, counted in ((proofs, "PASS", True), (mutants, "FAIL", True),
                                   (bugs, "FAIL", False)):
        for name, factory, mode, depth in items:
            if argv and name not in argv:
                continue
            t = time.time()
            r = run_formal(factory(), name, mode=mode, depth=depth)
            ok = r.status == expect
            note = ""
            if not counted:
                note = "   known bug, still present" if ok else "   known bug FIXED? move it to PROOFS"
            elif not ok:
                bad += 1
                note = f"   <-- see {r.workdir}"
            print(f"{name:34} {mode:6} {depth:5} {expect:6} {r.status:7} {time.time() - t:6.1f}s"
                  + note, flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
