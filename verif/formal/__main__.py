"""`python -m verif.formal [NAME ...]`: run every proof (must PASS) and every mutant (must
FAIL); exit 1 otherwise. Used by `make formal`."""

from __future__ import annotations

import importlib
import sys
import time

from .runner import run_formal

#: harness modules; each defines PROOFS and MUTANTS lists of (name, factory, mode, depth)
MODULES = ["verif.formal.arbiter", "verif.formal.nmc", "verif.formal.tracker"]


def collect():
    proofs, mutants = [], []
    for name in MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        proofs += getattr(mod, "PROOFS", [])
        mutants += getattr(mod, "MUTANTS", [])
    return proofs, mutants


def main(argv: list[str]) -> int:
    proofs, mutants = collect()
    bad = 0
    print(f"{'check':34} {'mode':6} {'depth':>5} {'expect':6} {'got':7} {'time':>6}")
    for items, expect in ((proofs, "PASS"), (mutants, "FAIL")):
        for name, factory, mode, depth in items:
            if argv and name not in argv:
                continue
            t = time.time()
            r = run_formal(factory(), name, mode=mode, depth=depth)
            ok = r.status == expect
            bad += not ok
            print(f"{name:34} {mode:6} {depth:5} {expect:6} {r.status:7} {time.time() - t:5.1f}s"
                  + ("" if ok else f"   <-- see {r.workdir}"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
