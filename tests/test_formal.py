"""Formal checks in the regular suite: every proof passes, every deliberately broken
variant is caught (its proof fails with a counterexample)."""

import pytest

from verif.formal.__main__ import collect
from verif.formal.runner import run_formal

PROOFS, MUTANTS = collect()


@pytest.mark.parametrize("name,factory,mode,depth", PROOFS, ids=[p[0] for p in PROOFS])
def test_proof_passes(name, factory, mode, depth):
    r = run_formal(factory(), name, mode=mode, depth=depth)
    assert r.status == "PASS", f"{r.summary()}\n{r.log[-2000:]}"


@pytest.mark.parametrize("name,factory,mode,depth", MUTANTS, ids=[p[0] for p in MUTANTS])
def test_mutant_is_caught(name, factory, mode, depth):
    r = run_formal(factory(), name, mode=mode, depth=depth)
    assert r.status == "FAIL", f"mutant not caught: {r.summary()}\n{r.log[-2000:]}"
