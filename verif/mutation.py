"""Mutation campaign (`make mutants` = ``python -m verif.mutation [MUTANT ...]``): every
registered mutant (:data:`verif.formal.mutants.MUTANT_CLASSES`, a broken variant of a
block) is run against its killing checks, which must all FAIL for the stated reason.

A mutant's killing checks (:data:`KILLERS`) are formal checks of :mod:`verif.formal`
(by check name, run at the check's own mode and depth) and pytest node ids of fast
Amaranth-simulator tests (``tests/test_*_amaranth.py``; never cocotb tests: their
Verilog builds are cached by source digest and would reuse the design's). Each names
its reason: for a formal check a regex naming the property (``prop`` name, the
``assert_<name>`` signal) violated in the counterexample, or None when the harness
leaves its assertions unnamed; for a test, a regex its failure text must match.

Substitution (:func:`substituted`): the block's class itself gets the mutant's method
for the duration (the method the mutant overrides, on the class it derives from), so
every construction of the block -- in a harness, a test, a default argument, a
subclass -- builds the mutant, and the production code knows nothing of mutants. A
pytest process does it when ``T3_MUTANT=<mutant class>`` is set (tests/conftest.py
calls :func:`substitute_from_env` before collection).

Before the mutants, the pytest killers run once on the design (``--no-baseline`` skips
it): each must PASS there, or its failure under a mutant would mean nothing.

Mutants are independent jobs: with ``--jobs N`` (N > 1) they run on a Dask distributed
local cluster of N single-threaded worker processes (a substitution is process-wide),
with a progress bar; ``--scheduler ADDRESS`` sends them to a running Dask scheduler
instead (its workers must run in a checkout of this repository with its venv).

Output: one line per mutant, then ``caught C/T``; exit status 1 unless every mutant is
caught (and the baseline passes); ``--json FILE`` writes the results.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["ENV", "Killer", "formal", "sim_test", "KILLERS", "mutant_classes", "substituted",
           "substitute_from_env", "run_mutant", "run_mutants",
           "run_baseline", "main"]

#: the environment variable that makes a pytest process build a mutant instead of its block
ENV = "T3_MUTANT"
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Killer:
    """One killing check: ``kind`` "formal" (``target`` = a verif.formal check name;
    ``reason`` = a regex one violated property's name must match in full, or None: any
    assertion, for harnesses whose assertions are unnamed) or "pytest"
    (``target`` = a node id; ``reason`` = a regex the failure text must match)."""
    kind: str
    target: str
    reason: str | None


def formal(check: str, prop: str | None) -> Killer:
    """A formal check that must FAIL with a property matching ``prop`` violated."""
    return Killer("formal", check, prop)


def sim_test(node_id: str, match: str) -> Killer:
    """A pytest test (Amaranth simulator) that must fail with a failure text matching ``match``."""
    return Killer("pytest", node_id, match)


_TRACKER = "tests/test_tracker_amaranth.py"
_DRAM_LOCKSTEP = ("tests/test_dram_amaranth.py::"
                  "test_random_traces_are_cycle_exact_and_bit_exact[fast_q4]")
#: the lock-step test's report of a column command the cycle model does not issue
_COLUMN_MISMATCH = r"Mismatch: trace \d+, cycle \d+: RTL \{.*'col': \(\d+, \d+\)"

#: mutant class name -> its killing checks (every one must FAIL)
KILLERS: dict[str, tuple[Killer, ...]] = {
    # tracker (hw/tracker.py)
    "TrackerFiresEarly": (formal("tracker_mutant_fire_early", "inv_k_fire_pending"),),
    "TrackerLosesSpill": (formal("tracker_mutant_loses_spill", "inv_k_count"),),
    "TrackerFireSlotCompareInverted": (formal("tracker_mutant_no_progress", "progress"),),
    "TrackerIgnoresFireSlots": (
        formal("tracker_mutant_ignores_fire_slots", "inv_fire_reserved"),
        sim_test(f"{_TRACKER}::test_fire_slots_hold_tracked_heads_not_dma_reads[design]",
                 r"assert len\(tracked_before\) == FIRE_SLOTS"),),
    # memory-controller arbiter (hw/arbiter.py)
    "ArbiterWithoutHold": (formal("arbiter_streams", "rule_out"),),
    "ArbiterWithoutStarvationGuard": (
        formal("arbiter_starvation", "starvation"),
        sim_test("tests/test_arbiter_amaranth.py::"
                 "test_mca_gives_compute_priority_and_bounds_starvation",
                 r"first_m == limit - 1"),),
    # compute-enhanced memory (hw/nmc.py)
    "MemoryWithoutHazardCheck": (formal("nmc_shadow", "read_returns_shadow"),),
    "MemoryWithoutStoreForwarding": (formal("nmc_shadow", "read_returns_shadow"),),
    "MemoryWithoutSnoop": (formal("nmc_shadow", "read_returns_shadow"),),
    # DRAM controller (hw/dram.py; mutants in verif/formal/dram.py and mutants.py)
    "ControllerAnyRowHit": (formal("dram_mutant_any_hit", "same_line_order"),
                            sim_test(_DRAM_LOCKSTEP, _COLUMN_MISMATCH)),
    "ControllerWithoutAgeCap": (sim_test(_DRAM_LOCKSTEP, _COLUMN_MISMATCH),),
    "ControllerMemoryDeeperAlu": (formal("dram_mutant_deeper_alu", "no_refusal"),),
    "DramShortActivateToRead": (sim_test(_DRAM_LOCKSTEP, _COLUMN_MISMATCH),),
    # DMA, address map, merge, link model
    "DmaWrongDestination": (
        sim_test("tests/test_dma_amaranth.py::test_dma_tiles_random_backpressure[11]",
                 r"packet \d+: got .*'addr'"),),
    "AddrMapWrongRemoteBase": (
        sim_test("tests/test_addrmap_amaranth.py::test_classification_random[21]",
                 r"for p in got_rem\] == rem"),),
    "MergeDropsGrant": (formal("streams_merge", "rule_o"),),
    "LinkDropsUnderBackpressure": (
        formal("streams_link", "rule_rx"),
        sim_test("tests/test_link_amaranth.py::test_backpressure_and_full_fifo_lose_nothing[4]",
                 r"got == list\(range\(200\)\)"),),
}


# ---- substitution -----------------------------------------------------------------------

def mutant_classes() -> dict[str, type]:
    """Every registered mutant class by name (the formal harness modules register some
    of their own, so all of them are imported first)."""
    from verif.formal.__main__ import MODULES
    for name in MODULES:
        importlib.import_module(name)
    from verif.formal.mutants import MUTANT_CLASSES
    return dict(MUTANT_CLASSES)


def _overrides(cls: type) -> tuple[type, dict]:
    """(the block ``cls`` derives from, {method name: the mutant's function})."""
    block = cls.__mro__[1]
    own = {n: f for n, f in vars(cls).items() if inspect.isfunction(f)}
    for n, f in own.items():
        if "__class__" in f.__code__.co_freevars:
            raise TypeError(f"mutant {cls.__name__}.{n} uses super(): it cannot be moved "
                            f"onto {block.__name__}")
    return block, own


def _apply(name: str):
    """Give the block of mutant ``name`` the mutant's methods; returns (the mutant class,
    a function that restores the block)."""
    classes = mutant_classes()
    if name not in classes:
        raise ValueError(f"{ENV}={name!r}: no such mutant; known: {sorted(classes)}")
    block, own = _overrides(classes[name])
    saved = {n: block.__dict__.get(n) for n in own}
    for n, f in own.items():
        setattr(block, n, f)

    def restore():
        for n, f in saved.items():
            if f is None:
                delattr(block, n)
            else:
                setattr(block, n, f)
    return classes[name], restore


@contextlib.contextmanager
def substituted(name: str):
    """While inside, the block of mutant ``name`` has the mutant's methods: every
    instance of the block built (and elaborated) meanwhile is the mutant."""
    cls, restore = _apply(name)
    try:
        yield cls
    finally:
        restore()


def substitute_from_env() -> str | None:
    """If ``T3_MUTANT`` names a mutant, substitute it for the rest of the process
    (pytest plugin hook, tests/conftest.py); returns the name or None."""
    name = os.environ.get(ENV)
    if not name:
        return None
    _apply(name)            # never restored: the process is the mutant's
    return name


# ---- running the killing checks ---------------------------------------------------------

@dataclass
class Outcome:
    """One killing check's run under a mutant."""
    kind: str
    target: str
    reason: str | None
    killed: bool
    detail: str
    seconds: float


def _run_formal(mutant: str, k: Killer) -> Outcome:
    from verif.formal.__main__ import collect
    from verif.formal.runner import run_formal
    proofs, mutants, _ = collect()
    checks = {c[0]: c for c in proofs + mutants}
    t = time.time()
    if k.target not in checks:
        return Outcome(k.kind, k.target, k.reason, False, "no such formal check", 0.0)
    _, factory, mode, depth = checks[k.target]
    with substituted(mutant):
        r = run_formal(factory(), f"mutation_{mutant}_{k.target}", mode=mode, depth=depth)
    failed = r.failed if r.status == "FAIL" else frozenset()
    if r.status != "FAIL":
        ok, detail = False, f"{mode} depth {depth}: {r.status} (survived)"
    else:
        ok = k.reason is None or any(re.fullmatch(k.reason, f) for f in failed)
        detail = f"{mode} depth {depth}: FAIL, violated {', '.join(sorted(failed)) or '(unnamed)'}"
        if not ok:
            detail += f", not {k.reason!r}"
    return Outcome(k.kind, k.target, k.reason, ok, detail, time.time() - t)


def _pytest(node_ids: list[str], mutant: str | None) -> dict[str, tuple[str, str]]:
    """Run ``node_ids`` in one pytest process (the mutant substituted if given):
    node id -> (passed/failed/error/skipped/missing, failure text)."""
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if mutant:
        env[ENV] = mutant
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "results.xml"
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-p", "no:xdist", f"--junitxml={xml}", *sorted(set(node_ids))],
                       cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        root = ET.parse(xml).getroot() if xml.exists() else ET.Element("none")
    got = {}
    for case in root.iter("testcase"):
        path = case.get("classname", "").replace(".", "/") + ".py"
        state, text = "passed", ""
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                state = "failed" if tag == "failure" else tag
                text = f"{el.get('message', '')}\n{el.text or ''}"
                break
        got[f"{path}::{case.get('name')}"] = (state, text)
    return {n: got.get(n, ("missing", "")) for n in node_ids}


def run_mutant(name: str) -> dict:
    """Run every killing check of mutant ``name``; a dict (JSON-ready) with ``caught``
    (every check failed for its reason) and one outcome per check."""
    t = time.time()
    killers = KILLERS.get(name, ())
    outcomes = [_run_formal(name, k) for k in killers if k.kind == "formal"]
    tests = [k for k in killers if k.kind == "pytest"]
    if tests:
        t0 = time.time()
        res = _pytest([k.target for k in tests], name)
        share = (time.time() - t0) / len(tests)
        for k in tests:
            state, text = res[k.target]
            ok = state == "failed" and re.search(k.reason, text) is not None
            detail = state if state != "failed" else (
                "failed" + ("" if ok else f", but not matching {k.reason!r}"))
            outcomes.append(Outcome(k.kind, k.target, k.reason, ok, detail, share))
    caught = bool(outcomes) and all(o.killed for o in outcomes)
    return {"mutant": name, "caught": caught, "seconds": round(time.time() - t, 1),
            "checks": [asdict(o) for o in outcomes]}


def run_mutants(names: list[str], *, jobs: int = 1, scheduler: str | None = None) -> list:
    """:func:`run_mutant` of every name, in order: in this process (``jobs`` 1, no
    ``scheduler``), else as Dask tasks on a local cluster of ``jobs`` worker processes
    or on the scheduler at address ``scheduler``, with a progress bar on a terminal."""
    if jobs == 1 and scheduler is None:
        return [run_mutant(n) for n in names]
    import logging

    from distributed import Client, LocalCluster, progress
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            scheduler = stack.enter_context(LocalCluster(
                n_workers=jobs, threads_per_worker=1, processes=True,
                dashboard_address=None, silence_logs=logging.ERROR))
        client = stack.enter_context(Client(scheduler))
        futures = client.map(run_mutant, names, pure=False)
        if sys.stdout.isatty():             # a bar redrawn in place: terminals only
            progress(futures)
            print()
        return client.gather(futures)


def run_baseline(names) -> dict[str, str]:
    """The pytest killers of mutants ``names`` on the design: node id -> state (each
    must be "passed")."""
    ids = sorted({k.target for n in names for k in KILLERS.get(n, ()) if k.kind == "pytest"})
    return {n: state for n, (state, _) in _pytest(ids, None).items()} if ids else {}


# ---- command line -----------------------------------------------------------------------

def _args(argv):
    p = argparse.ArgumentParser(prog="python -m verif.mutation",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("mutants", nargs="*", help="mutant class names (default: all registered)")
    p.add_argument("--jobs", type=int, default=1,
                   help="Dask local cluster of this many worker processes (1: run here)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler to run on")
    p.add_argument("--no-baseline", action="store_true", help="skip the design run of the tests")
    p.add_argument("--json", type=Path, help="write the results to this file")
    a = p.parse_args(argv)
    if a.jobs < 1:
        p.error(f"--jobs {a.jobs}: must be >= 1")
    return a


def main(argv: list[str] | None = None) -> int:
    a = _args(sys.argv[1:] if argv is None else argv)
    classes = mutant_classes()
    unknown = [n for n in a.mutants if n not in classes]
    if unknown:
        print(f"verif.mutation: unknown mutant(s) {unknown}; known: {sorted(classes)}")
        return 2
    names = a.mutants or sorted(classes)
    t = time.time()
    baseline = {} if a.no_baseline else run_baseline(names)
    bad_base = {n: s for n, s in baseline.items() if s != "passed"}
    for n, s in bad_base.items():
        print(f"baseline: {n} {s} on the design (must pass)")
    results = run_mutants(names, jobs=a.jobs, scheduler=a.scheduler)
    print(f"{'mutant':32} {'block':18} {'result':8} {'time':>6}  killing checks")
    for r in results:
        block = classes[r["mutant"]].__mro__[1].__name__
        checks = "; ".join(f"{c['target']}: {c['detail']}" for c in r["checks"]) or "none listed"
        print(f"{r['mutant']:32} {block:18} {'caught' if r['caught'] else 'SURVIVED':8} "
              f"{r['seconds']:5.0f}s  {checks}")
    caught = sum(r["caught"] for r in results)
    print(f"caught {caught}/{len(results)} ({time.time() - t:.0f} s)")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"caught": caught, "total": len(results),
                                      "baseline": baseline, "mutants": results}, indent=1))
    return 0 if caught == len(results) and not bad_base else 1


if __name__ == "__main__":
    sys.exit(main())
