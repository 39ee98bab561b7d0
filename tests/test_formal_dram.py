"""The DRAM controller's formal checks (verif/formal/dram.py) in the regular suite: every
proof passes, every deliberately broken variant is caught. Checks the harness lists in
SUITE_SKIP (minutes of solver time) run only with T3_FORMAL_ALL=1.

(Kept apart from tests/test_formal.py until verif.formal.__main__.MODULES lists
"verif.formal.dram"; then this file can go.)"""

import os

import pytest

from verif.formal.dram import MUTANTS, PROOFS, SUITE_SKIP
from verif.formal.runner import run_formal

ALL = os.environ.get("T3_FORMAL_ALL") == "1"


def _params(items):
    return [pytest.param(*item, id=item[0],
                         marks=[pytest.mark.slow, pytest.mark.skipif(
                             not ALL, reason="make formal only (set T3_FORMAL_ALL=1)")]
                         if item[0] in SUITE_SKIP else [])
            for item in items]


@pytest.mark.parametrize("name,factory,mode,depth", _params(PROOFS))
def test_proof_passes(name, factory, mode, depth):
    r = run_formal(factory(), name, mode=mode, depth=depth)
    assert r.status == "PASS", f"{r.summary()}\n{r.log[-2000:]}"


@pytest.mark.parametrize("name,factory,mode,depth", _params(MUTANTS))
def test_mutant_is_caught(name, factory, mode, depth):
    r = run_formal(factory(), name, mode=mode, depth=depth)
    assert r.status == "FAIL", f"mutant not caught: {r.summary()}\n{r.log[-2000:]}"


def test_suite_skip_names_exist():
    names = {p[0] for p in PROOFS + MUTANTS}
    assert SUITE_SKIP <= names
