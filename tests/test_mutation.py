"""The mutation campaign's machinery (verif/mutation.py; the campaign itself is
`make mutants`): every registered mutant has killing checks that exist, substitution
builds the mutant and restores the block, and one mutant end to end is caught by a
formal check and a test for the stated reasons."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from verif import mutation
from verif.formal.__main__ import collect

REPO = Path(__file__).resolve().parent.parent


def test_every_mutant_has_killing_checks_and_every_listed_one_is_registered():
    registered = set(mutation.mutant_classes())
    assert len(registered) >= 12
    missing = sorted(n for n in registered if not mutation.KILLERS.get(n))
    assert not missing, f"mutants without killing checks in verif.mutation.KILLERS: {missing}"
    stale = sorted(set(mutation.KILLERS) - registered)
    assert not stale, f"KILLERS names mutants nobody registers: {stale}"


def test_formal_killers_name_existing_checks_and_test_killers_are_fast_amaranth_tests():
    proofs, mutants, _ = collect()
    checks = {c[0]: c[2] for c in proofs + mutants}
    node_ids = set()
    for name, killers in mutation.KILLERS.items():
        for k in killers:
            re.compile(k.reason or "")
            if k.kind == "formal":
                assert k.target in checks, f"{name}: no formal check {k.target!r}"
                assert checks[k.target] != "cover", f"{name}: {k.target} is a cover"
            else:
                assert k.kind == "pytest", k
                assert re.fullmatch(r"tests/test_\w+_amaranth\.py::\w+(\[[^\]]+\])?",
                                    k.target), f"{name}: {k.target} is not an Amaranth test"
                node_ids.add(k.target)
    # every node id is collectable (pytest refuses the whole list if one is unknown)
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                        "-p", "no:cacheprovider", "-p", "no:xdist", *sorted(node_ids)],
                       cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"{len(node_ids)} test" in r.stdout.splitlines()[-1], r.stdout[-1000:]


def test_substitution_builds_the_mutant_and_restores_the_block():
    from hw.merge import StreamMerge
    from verif.formal.mutants import MergeDropsGrant
    design = StreamMerge.__dict__["_holds_grant"]
    with mutation.substituted("MergeDropsGrant") as cls:
        assert cls is MergeDropsGrant
        assert StreamMerge._holds_grant is MergeDropsGrant.__dict__["_holds_grant"]
    assert StreamMerge.__dict__["_holds_grant"] is design
    with pytest.raises(ValueError, match=r"T3_MUTANT='NoSuchMutant': no such mutant; known: "):
        with mutation.substituted("NoSuchMutant"):
            pass


def test_a_mutant_using_super_is_refused():
    from hw.merge import StreamMerge

    class UsesSuper(StreamMerge):
        def _holds_grant(self):
            return super()._holds_grant()
    with pytest.raises(TypeError, match=r"UsesSuper._holds_grant uses super\(\)"):
        mutation._overrides(UsesSuper)


def test_one_mutant_end_to_end_is_caught_for_its_reasons():
    """LinkDropsUnderBackpressure: the formal stream rule on ``rx`` and the simulator
    test of backpressure both fail, each for its stated reason (a pytest process with
    T3_MUTANT set, through tests/conftest.py)."""
    r = mutation.run_mutant("LinkDropsUnderBackpressure")
    assert r["caught"], r
    kinds = {c["kind"]: c for c in r["checks"]}
    assert set(kinds) == {"formal", "pytest"}
    assert "violated rule_rx" in kinds["formal"]["detail"]
    assert kinds["pytest"]["detail"] == "failed"
    # the same test passes on the design: the failure is the mutant's
    assert mutation.run_baseline(["LinkDropsUnderBackpressure"]) == {
        kinds["pytest"]["target"]: "passed"}


def test_mutants_run_as_dask_tasks_on_a_local_cluster():
    """The campaign's parallel path: a Dask local cluster of two worker processes runs
    the mutants (each substitution inside its own worker) and returns the results in
    the order asked."""
    results = mutation.run_mutants(["MergeDropsGrant", "MemoryWithoutSnoop"], jobs=2)
    assert [r["mutant"] for r in results] == ["MergeDropsGrant", "MemoryWithoutSnoop"]
    assert all(r["caught"] for r in results), results
