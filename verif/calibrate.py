"""Measure the RTL ring's cycle counts on the calibration scenarios and store them in
``sim_models/perf/rtl_calibration.json`` (read by tests/test_calibration.py, which checks
``sim_models.perf.rtl_model`` against them; docs/system_model.md shows the table).

::

    .venv/bin/python -m verif.calibrate                 # measure all, rewrite the JSON
    .venv/bin/python -m verif.calibrate --only n4-bw1-lat4  # re-measure some, keep the rest
    .venv/bin/python -m verif.calibrate --table         # print the markdown table only

Lives in verif/ because it builds and simulates the HDL (sim_models imports none).
Scenarios sharing a hardware key (``RingScenario.hw_key()``: devices, dtype, memory
depth, ...) share one Verilator build: they run in one work directory per key, one after
the other. Cycle counts are deterministic (no jitter; backpressure only touches the
read-back after the measured interval), so the stored numbers are exact.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sim_models.perf.rtl_model import CALIBRATION_FILE, load_calibration, markdown_table

from .ring_scenario import RingScenario, run_scenario
from .runner import BUILD, REPO, _source_digest, params_key

#: name -> RingScenario arguments. Four builds (2 x fp16, 4 x fp16, 3 x fp32, 8 x fp16);
#: within a build only run-time knobs vary (link latency and bandwidth with
#: latency x bandwidth <= 14 so the link FIFO depth, part of the build, stays 16; shape
#: within the same memory depth; tiles, CUs, WG cycles, fused or unfused all-gather).
_COMMON = dict(line_bytes=8, tracker_entries=16, seed=1, jitter=0, backpressure=0.0)
SCENARIOS: dict[str, dict[str, Any]] = {
    # 2 devices, 512 lines (one build): fused AG, and unfused AG with link-, port- and
    # compute-bound producers
    "n2-bw05": dict(devices=2, dtype="fp16", m=32, n=64, k=16, wg_tile=(16, 16), wf_tile=(8, 8),
                    cus=2, wg_cycles=16, link_latency=20, link_bw=0.5),
    "n2-bw1-noag": dict(devices=2, dtype="fp16", m=64, n=32, k=16, wg_tile=(16, 16),
                        wf_tile=(8, 8), cus=2, wg_cycles=64, link_latency=8, link_bw=1.0,
                        fuse_allgather=False),
    "n2-bw01-lat100-noag": dict(devices=2, dtype="fp16", m=32, n=64, k=16, wg_tile=(16, 16),
                                wf_tile=(8, 8), cus=2, wg_cycles=16, link_latency=100,
                                link_bw=0.1, fuse_allgather=False),
    "n2-bw025-lat40-noag": dict(devices=2, dtype="fp16", m=64, n=32, k=32, wg_tile=(16, 16),
                                wf_tile=(8, 8), cus=1, wg_cycles=128, link_latency=40,
                                link_bw=0.25, fuse_allgather=False),
    "n2-bw05-lat2-noag": dict(devices=2, dtype="fp16", m=32, n=64, k=16, wg_tile=(16, 16),
                              wf_tile=(16, 16), cus=4, wg_cycles=32, link_latency=2,
                              link_bw=0.5, fuse_allgather=False),
    "n2-bw075-lat16-noag": dict(devices=2, dtype="fp16", m=128, n=16, k=16, wg_tile=(16, 16),
                                wf_tile=(8, 16), cus=2, wg_cycles=48, link_latency=16,
                                link_bw=0.75, fuse_allgather=False),
    # 4, 3 and 8 devices: the reduce-scatter through tracker + DMA + NMC and the fused AG.
    # Only links of 1 line/cycle here: with a slower link and longer transfers the RTL
    # ring hangs (n4 at 0.25, n2 at 0.5 with the fused AG; see docs/system_model.md).
    # WF tiles of 16-32 lines keep the live tiles under the 16 tracker entries (the model
    # has no tracker capacity term; with 4-line tiles the ring thrashes the table).
    "n4-bw1-lat4": dict(devices=4, dtype="fp16", m=64, n=16, k=16, wg_tile=(8, 16),
                        wf_tile=(8, 8), cus=1, wg_cycles=24, link_latency=4, link_bw=1.0),
    "n4-bw1-lat12": dict(devices=4, dtype="fp16", m=32, n=32, k=8, wg_tile=(8, 8),
                         wf_tile=(8, 8), cus=2, wg_cycles=8, link_latency=12, link_bw=1.0),
    "n3-fp32-bw1-lat10": dict(devices=3, dtype="fp32", m=44, n=16, k=8, wg_tile=(8, 8),
                              wf_tile=(8, 8), cus=2, wg_cycles=8, link_latency=10, link_bw=1.0),
    "n3-fp32-bw1-lat6": dict(devices=3, dtype="fp32", m=48, n=16, k=12, wg_tile=(16, 8),
                             wf_tile=(8, 8), cus=4, wg_cycles=16, link_latency=6, link_bw=1.0),
    "n8-bw1-lat8": dict(devices=8, dtype="fp16", m=64, n=32, k=16, wg_tile=(8, 8),
                        wf_tile=(8, 8), cus=2, wg_cycles=8, link_latency=8, link_bw=1.0),
}


#: measurements the model is known to miss by more than 10%, with the reason (kept in
#: the data and the docs table rather than dropped; checked within 25%)
OUTLIERS: dict[str, dict[str, str]] = {
    "n3-fp32-bw1-lat10": {"t3": "RTL 18% slower than predicted, cause not yet isolated "
                                "(candidates: its uneven chunks of 128/128/96 lines, one WF "
                                "tile per WG with 2 CUs)"},
}


def scenario(name: str, modes: tuple[str, ...]) -> RingScenario:
    return RingScenario(**_COMMON, **SCENARIOS[name], modes=modes)


def from_entry(entry: dict[str, Any], modes: tuple[str, ...] | None = None) -> RingScenario:
    """The RingScenario of a stored calibration entry (its measured modes by default)."""
    d = dict(entry["scenario"])
    d["wg_tile"], d["wf_tile"] = tuple(d["wg_tile"]), tuple(d["wf_tile"])
    return RingScenario(**d, modes=modes or tuple(entry["measured"]))


def workdir_for(scn: RingScenario) -> Path:
    """One work directory per hardware key, so scenarios of one key share a build."""
    return BUILD / "calibration" / params_key("t3_ring", scn.hw_key())


def baseline_available() -> bool:
    """The unfused baseline mode of the ring bench exists (added separately)."""
    return "async def ring_baseline" in (REPO / "verif" / "tb_ring.py").read_text()


def measure(scn: RingScenario, *, sim: str = "verilator") -> dict[str, int]:
    """Cycles of every mode of ``scn`` on the RTL (bit-exact check included)."""
    res = run_scenario(scn, sim=sim, workdir=workdir_for(scn))
    return {m: int(res[m]["cycles"]) for m in scn.modes}


def _commit() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                             capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "hw", "verif", "contract/spec.py"],
                               cwd=REPO, text=True, capture_output=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m verif.calibrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim", default="verilator", choices=("verilator", "icarus"))
    ap.add_argument("--only", nargs="+", metavar="NAME", choices=sorted(SCENARIOS),
                    help="measure only these scenarios; keep the others' stored numbers")
    ap.add_argument("--modes", default=None,
                    help="comma-separated modes (default: t3, plus baseline when the bench has "
                         "it and the scenario fuses the all-gather)")
    ap.add_argument("--out", type=Path, default=CALIBRATION_FILE)
    ap.add_argument("--table", action="store_true", help="print the stored table and exit")
    args = ap.parse_args(argv)
    if args.table:
        print(markdown_table(load_calibration(args.out)))
        return 0
    def modes_of(name: str) -> tuple[str, ...]:
        if args.modes:
            return tuple(args.modes.split(","))
        # the baseline runs RS + AG, so only scenarios with the fused all-gather have one
        both = baseline_available() and SCENARIOS[name].get("fuse_allgather", True)
        return ("t3", "baseline") if both else ("t3",)
    old = {e["name"]: e for e in load_calibration(args.out)["scenarios"]} if args.out.exists() else {}
    names = args.only or list(SCENARIOS)
    entries = dict(old)
    for name in names:
        scn = scenario(name, modes_of(name))
        t0 = time.monotonic()
        cycles = measure(scn, sim=args.sim)
        print(f"{name}: {cycles} ({time.monotonic() - t0:.0f} s)", flush=True)
        d = scn.to_dict()
        d.pop("modes")
        entries[name] = {"name": name, "scenario": d, "measured": cycles}
        if name in OUTLIERS:
            entries[name]["outlier"] = OUTLIERS[name]
    data = {
        "about": "RTL ring cycle counts (verif/tb_ring.py, start of the producer traces to every "
                 "device idle with all requests applied) for sim_models.perf.rtl_model; "
                 "regenerate with `python -m verif.calibrate`",
        "measured_with": {"sim": args.sim, "commit": _commit(), "hw_digest": _source_digest(),
                          "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")},
        "scenarios": [entries[n] for n in SCENARIOS if n in entries],
    }
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(markdown_table(load_calibration(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
