"""`t3 sim`: run one N-device ring scenario on the RTL (Icarus or Verilator) and report.

Builds the workload (sim_models), the golden result, the ring RTL and runs the cocotb
ring testbench (verif/tb_ring.py) in each requested mode: ``t3`` (fused reduce-scatter
and all-gather through tracker, DMA and near-memory compute) and ``baseline`` (the
unfused collective on the same hardware) when the testbench implements it. Prints the
cycles of each mode, the speedup baseline / T3, per-device utilisation and the verdict:
every device's memory equals the golden model bit for bit (checked by the testbench)
and the final output equals the independent numpy fold (checked here).

Exit status: 0 verified, 1 the RTL disagrees (message on stderr), 2 bad arguments.
``--json`` prints the same as one JSON object; ``--dump DIR`` writes partials, final
buffers and chunk metadata (layout in docs/simulation.md). The simulator's own output
goes to ``<workdir>/sim.log`` unless ``--verbose``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

from .cmd_trace import tile_arg
from .common import choice_error, nonneg_int, out_dir, positive_int
from .errors import UsageError

SIMS = ("icarus", "verilator")


def _defaults() -> dict[str, Any]:
    from verif.ring_scenario import RingScenario
    return {f.name: f.default for f in dataclasses.fields(RingScenario)}


def _float_arg(name: str, ok: Callable[[float], bool], allowed: str) -> Callable[[str], float]:
    """An argparse type called ``name`` (argparse and tests/test_cli_fuzz.py know a type
    by its name): a number for which ``ok`` holds, else "'text' must be <allowed>"."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"{text!r} must be {allowed}")
        return v
    parse.__name__ = parse.__qualname__ = name
    return parse


_fraction = _float_arg("_fraction", lambda v: 0.0 <= v < 1.0, "in [0, 1)")
_positive_float = _float_arg("_positive_float", lambda v: v > 0, "> 0")
#: ``--gemm-reads``: 0 (off) or a rate in (0, 1]; the finer limit (>= 1/511, the
#: generator's resolution) is RingScenario's check (its error names --gemm-reads)
_read_rate = _float_arg("_read_rate", lambda v: 0.0 <= v <= 1.0, "in [0, 1] (READs per cycle)")
_unit_interval = _float_arg("_unit_interval", lambda v: 0.0 <= v <= 1.0, "in [0, 1]")


def _tile_text(t: tuple[int, int]) -> str:
    return f"{t[0]}x{t[1]}"


def add_scenario_args(p: argparse.ArgumentParser) -> None:
    """The ring scenario options (defaults: verif.ring_scenario.RingScenario's)."""
    from contract.spec import FORMATS
    d = _defaults()
    p.add_argument("--devices", type=positive_int, default=d["devices"],
                   help=f"ring devices, 2..8 (default {d['devices']})")
    p.add_argument("--m", type=positive_int, default=d["m"], help=f"output rows (default {d['m']})")
    p.add_argument("--n", type=positive_int, default=d["n"], help=f"output columns (default {d['n']})")
    p.add_argument("--k", type=positive_int, default=d["k"],
                   help=f"reduction length, split over the devices (default {d['k']})")
    p.add_argument("--dtype", choices=list(FORMATS), default=d["dtype"],
                   help=f"element type (default {d['dtype']})")
    p.add_argument("--layout", choices=["row", "col"], default=d["layout"],
                   help=f"output layout in memory (default {d['layout']})")
    p.add_argument("--wg-tile", type=tile_arg, default=d["wg_tile"], metavar="RxC",
                   help=f"workgroup tile, elements along M x N (default {_tile_text(d['wg_tile'])})")
    p.add_argument("--wf-tile", type=tile_arg, default=d["wf_tile"], metavar="RxC",
                   help=f"wavefront tile, elements along M x N (default {_tile_text(d['wf_tile'])})")
    p.add_argument("--cus", type=positive_int, default=d["cus"],
                   help=f"compute units = WGs per wave (default {d['cus']})")
    p.add_argument("--wg-cycles", type=positive_int, default=d["wg_cycles"],
                   help=f"cycles a WG computes before it stores (default {d['wg_cycles']})")
    p.add_argument("--line-bytes", type=positive_int, default=d["line_bytes"],
                   help=f"bytes per memory line (default {d['line_bytes']})")
    p.add_argument("--tracker-entries", type=positive_int, default=d["tracker_entries"],
                   help=f"tracker table entries (default {d['tracker_entries']})")
    p.add_argument("--link-latency", type=positive_int, default=d["link_latency"], metavar="CYCLES",
                   help=f"link latency in cycles (default {d['link_latency']})")
    p.add_argument("--link-bw", type=_positive_float, default=d["link_bw"], metavar="LINES",
                   help=f"link bandwidth in lines per cycle, <= 1 (default {d['link_bw']})")
    p.add_argument("--policy", choices=["fifo", "mca"], default=d["policy"],
                   help=f"memory-controller arbiter policy (default {d['policy']})")
    p.add_argument("--jitter", type=nonneg_int, default=d["jitter"], metavar="CYCLES",
                   help="max random extra cycles added to producer issue times (default 0)")
    p.add_argument("--backpressure", type=_fraction, default=d["backpressure"], metavar="P",
                   help="probability the testbench stalls a stream it sinks (default 0)")
    p.add_argument("--stall", type=_fraction, default=d["stall"], metavar="P",
                   help="probability per cycle that each link's delivery and each memory's "
                        "request handshake is held, seeded, during the whole run (default 0)")
    p.add_argument("--gemm-reads", type=_read_rate, default=d["gemm_read_rate"], metavar="RATE",
                   help="background GEMM operand READs per cycle per device in the compute "
                        "stream, over the output buffer (0 = off, else 1/511..1; default 0)")
    p.add_argument("--memory", choices=["ideal", "dram"], default=d["memory"],
                   help="memory model: ideal (one line per cycle, any pattern) or dram (the "
                        "FR-FCFS HBM2 controller, docs/memory.md, with the closed-loop GEMM "
                        f"as producer) (default {d['memory']})")
    p.add_argument("--gemm-intensity", type=_unit_interval, default=d["gemm_intensity"],
                   metavar="X",
                   help="closed-loop GEMM (--memory dram): DRAM read lines per cycle of the "
                        "GEMM at full speed, fraction of peak, 0..1 (default 0: compute only)")
    p.add_argument("--k-steps", type=positive_int, default=d["k_steps"],
                   help=f"closed-loop GEMM: compute steps per wave (default {d['k_steps']})")
    p.add_argument("--gemm-outstanding", type=positive_int, default=d["gemm_outstanding"],
                   metavar="N", help="closed-loop GEMM: READs in flight per device, at most "
                                     f"(default {d['gemm_outstanding']})")
    p.add_argument("--no-allgather", action="store_true",
                   help="program the reduce-scatter only (no fused all-gather)")
    p.add_argument("--seed", type=nonneg_int, default=d["seed"],
                   help="seed of the inputs and of every random choice (default 0)")


def scenario_from_args(args: argparse.Namespace, modes: tuple[str, ...]):
    """A validated RingScenario (ConfigError/UsageError with a one-line message)."""
    from contract.spec import ConfigError
    try:
        return _scenario(args, modes)
    except ConfigError as e:
        raise ConfigError(name_option(e)) from None


def _scenario(args: argparse.Namespace, modes: tuple[str, ...]):
    from hw.env.ring import MAX_DEVICES
    from verif.ring_scenario import RingScenario
    if not 2 <= args.devices <= MAX_DEVICES:
        raise UsageError(f"--devices={args.devices}: the RTL ring has 2..{MAX_DEVICES} devices")
    scn = RingScenario(devices=args.devices, m=args.m, n=args.n, k=args.k, dtype=args.dtype,
                       layout=args.layout, wg_tile=args.wg_tile, wf_tile=args.wf_tile,
                       cus=args.cus, wg_cycles=args.wg_cycles, line_bytes=args.line_bytes,
                       tracker_entries=args.tracker_entries, link_latency=args.link_latency,
                       link_bw=args.link_bw, policy=args.policy,
                       fuse_allgather=not args.no_allgather, seed=args.seed, jitter=args.jitter,
                       backpressure=args.backpressure, stall=args.stall,
                       gemm_read_rate=args.gemm_reads,
                       memory=args.memory, gemm_intensity=args.gemm_intensity,
                       k_steps=args.k_steps, gemm_outstanding=args.gemm_outstanding,
                       modes=modes)
    # every size/field check, before anything is written or built
    from contract.gemm import split_chunks
    from contract.sizing import check_config
    gemm = scn.gemm()
    split_chunks(gemm, check_config(scn.config(), gemm))
    return scn


#: scenario / configuration field -> the `t3 sim` option that sets it (error messages)
FIELD_OPTIONS = {
    "devices": "--devices", "ring_devices": "--devices", "m": "--m", "n": "--n", "k": "--k",
    "dtype": "--dtype", "layout": "--layout", "wg_tile": "--wg-tile", "wf_tile": "--wf-tile",
    "cus": "--cus", "wg_cycles": "--wg-cycles", "line_bytes": "--line-bytes",
    "tracker_entries": "--tracker-entries", "link_latency": "--link-latency",
    "link_latency_cycles": "--link-latency", "link_bw": "--link-bw",
    "link_lines_per_cycle": "--link-bw", "jitter": "--jitter", "backpressure": "--backpressure",
    "stall": "--stall",
    "gemm_read_rate": "--gemm-reads", "memory": "--memory", "gemm_intensity": "--gemm-intensity",
    "k_steps": "--k-steps", "gemm_outstanding": "--gemm-outstanding",
}


def name_option(err: Exception) -> str:
    """A scenario/config error's one-line message with the option that set the named
    field in front (``--link-bw: config: link_lines_per_cycle=4.0: ...``)."""
    import re
    msg = str(err)
    for field in re.findall(r"([a-z_]+)=", msg):
        if field in FIELD_OPTIONS:
            return f"{FIELD_OPTIONS[field]}: {msg}"
    return msg


def register(sub) -> None:
    p = sub.add_parser("sim", help="run a ring scenario on the RTL: cycles, speedup, utilisation")
    add_scenario_args(p)
    p.add_argument("--sim", choices=SIMS, default="verilator", help="simulator (default verilator)")
    p.add_argument("--modes", metavar="LIST",
                   help="comma-separated modes among t3,baseline (default: every mode the "
                        "testbench implements)")
    p.add_argument("--waves", action="store_true", help="record FST waves (slower; path printed)")
    p.add_argument("--workdir", metavar="DIR",
                   help="run directory (default build/sim_runs/<scenario hash>)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--dump", metavar="DIR",
                   help="write DIR/device<i>/{partial,final}.npy and DIR/chunks.json")
    p.add_argument("--verbose", action="store_true",
                   help="show the simulator's output instead of writing it to <workdir>/sim.log")
    p.set_defaults(func=run)


def _modes(text: str | None, allgather: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(modes to run, modes the testbench implements). The baseline is RS + AG, so it is
    left out by default (and refused when asked for) with ``--no-allgather``."""
    from verif.ring_scenario import MODES, available_modes
    avail = available_modes()
    if text is None:
        return tuple(m for m in avail if allgather or m != "baseline"), avail
    want = tuple(m.strip() for m in text.split(",") if m.strip())
    if not want:
        raise UsageError("--modes: empty list")
    for m in want:
        if m not in MODES:
            raise choice_error("--modes", m, MODES)
        if m not in avail:
            raise UsageError(f"--modes: {m!r} is not implemented by verif/tb_ring.py yet "
                             f"(available: {', '.join(avail)})")
        if m == "baseline" and not allgather:
            raise UsageError("--modes: the baseline runs reduce-scatter + all-gather: "
                             "drop --no-allgather")
    return tuple(m for m in MODES if m in want), avail


def default_workdir(scn, sim: str) -> Path:
    from verif.runner import BUILD
    blob = json.dumps({"scenario": scn.to_dict(), "sim": sim}, sort_keys=True)
    return BUILD / "sim_runs" / hashlib.sha256(blob.encode()).hexdigest()[:12]


# ---- results -----------------------------------------------------------------------

def _hit_rate(stats: dict[str, int]) -> float | None:
    """Tracked requests that found their tile in the tracker table, fraction."""
    hits, misses = stats.get("tracker_hits"), stats.get("tracker_misses")
    return hits / (hits + misses) if hits is not None and misses is not None and hits + misses \
        else None


def utilisation(stats: dict[str, int], cycles: int) -> dict[str, Any]:
    """One device's counters of one mode -> busy fractions (of ``cycles``), events and
    the memory figures (verif.report_parts.memory_metrics)."""
    from verif.report_parts import memory_metrics
    frac = (lambda v: v / cycles) if cycles else (lambda v: 0.0)
    out = {"mem_busy": frac(stats["mem_busy_cycles"]),
           "link_busy": frac(stats["link_busy_cycles"]),
           "queue_full": frac(stats["queue_full_cycles"]),
           "tracker_fires": stats["fires"], "stall_cycles": stats["stall_cycles"],
           "occupancy": stats.get("tracker_peak", stats.get("occupancy")),
           "tracker_hit_rate": _hit_rate(stats),
           "tracker_spills": stats.get("tracker_spills"),
           "memory": memory_metrics(stats, cycles),
           "counters": dict(stats)}
    return out


def load_outputs(workdir: Path, mode: str = "t3") -> dict[str, Any]:
    """The run's partials, RTL final buffers (M x N raw bits per device) and chunks, read
    from ``workdir`` (golden.npz, readback_<mode>.npz, expect.json)."""
    import numpy as np
    from verif.ring_scenario import RingScenario
    expect = json.loads((workdir / "expect.json").read_text())
    sd = dict(expect["scenario"])
    sd.update(wg_tile=tuple(sd["wg_tile"]), wf_tile=tuple(sd["wf_tile"]), modes=tuple(sd["modes"]))
    scn = RingScenario(**sd)
    gemm = scn.gemm()
    geo = gemm.geometry(scn.config().lanes)
    lo, hi = expect["out_lines"]
    if (lo, hi) != (gemm.out_base, geo.limit):
        raise AssertionError(f"{workdir}: out_lines {lo, hi} is not the output [{gemm.out_base}, "
                             f"{geo.limit})")
    golden = np.load(workdir / "golden.npz")
    rb = np.load(workdir / f"readback_{mode}.npz")
    n = scn.devices
    return {"scenario": scn, "dtype": scn.dtype, "devices": n, "chunks": expect["chunks"],
            "partials": [golden[f"partial{d}"] for d in range(n)],
            "finals": [geo.from_lines(rb[f"mem{d}"]) for d in range(n)]}


def fold_check(out: dict[str, Any]) -> str | None:
    """Compare the RTL's final buffers with the independent numpy fold (sim_models.fold):
    every device holds the whole result after a fused all-gather, else each owner holds
    its chunk. Returns None when equal, else a one-line message."""
    import numpy as np
    from sim_models.fold import fold_allreduce
    chunks = out["chunks"]
    ref = fold_allreduce(out["dtype"], out["partials"],
                         [(c["row_start"], c["row_stop"], c["col_start"], c["col_stop"])
                          for c in chunks])
    ag = out["scenario"].fuse_allgather
    for d, fin in enumerate(out["finals"]):
        for c in chunks:
            if not ag and c["owner"] != d:
                continue
            win = np.s_[c["row_start"]:c["row_stop"], c["col_start"]:c["col_stop"]]
            bad = np.argwhere(fin[win] != ref[win])
            if len(bad):
                r, col = bad[0] + (c["row_start"], c["col_start"])
                return (f"device {d}: {len(bad)} elements of chunk {c['owner']} differ from the "
                        f"numpy fold; first at row {r} col {col}: got {int(fin[r, col]):#x}, "
                        f"want {int(ref[r, col]):#x}")
    return None


def write_dump(out: dict[str, Any], directory: Path) -> None:
    """DIR/device<i>/partial.npy, DIR/device<i>/final.npy (M x N raw element bits) and
    DIR/chunks.json {dtype, devices, chunks: [{row_start, row_stop, col_start, col_stop,
    owner, order}]}."""
    import numpy as np
    for d in range(out["devices"]):
        dd = directory / f"device{d}"
        dd.mkdir(parents=True, exist_ok=True)
        np.save(dd / "partial.npy", out["partials"][d])
        np.save(dd / "final.npy", out["finals"][d])
    keys = ("row_start", "row_stop", "col_start", "col_stop", "owner", "order")
    doc = {"dtype": out["dtype"], "devices": out["devices"],
           "chunks": [{k: c[k] for k in keys} for c in out["chunks"]]}
    (directory / "chunks.json").write_text(json.dumps(doc, indent=1) + "\n")


def _move_waves(sim: str, scn, since: float, workdir: Path) -> str | None:
    """Move the FST the simulator wrote (build or run directory) into the workdir."""
    from verif.runner import BUILD, params_key
    root = BUILD / "sim" / sim / (params_key("t3_ring", scn.hw_key()) + "-waves")
    found = [p for p in root.rglob("*.fst") if p.stat().st_mtime >= since - 1]
    if not found:
        return None
    src = max(found, key=lambda p: p.stat().st_mtime)
    dest = workdir / f"t3_ring_{sim}.fst"
    src.replace(dest)
    return str(dest)


def simulate(args: argparse.Namespace) -> dict[str, Any]:
    """Run the scenario of ``args``; return the report (JSON-able)."""
    from verif.ring_scenario import ScenarioFailure, load_results, run_scenario
    modes, avail = _modes(args.modes, not args.no_allgather)
    if not modes:
        raise UsageError("verif/tb_ring.py implements no mode")
    scn = scenario_from_args(args, modes)
    workdir = Path(args.workdir) if args.workdir else default_workdir(scn, args.sim)
    workdir = out_dir(str(workdir), "--workdir").resolve()
    dump = out_dir(args.dump, "--dump") if args.dump else None
    log = None if args.verbose else workdir / "sim.log"
    if log is not None:
        log.write_text("")
    t0, started = time.perf_counter(), time.time()
    timings: dict[str, Any] = {}
    error = None
    try:       # sizes that do not fit raise ConfigError in the preparation, before any build
        results = run_scenario(scn, sim=args.sim, workdir=workdir, waves=args.waves,
                               timings=timings, log=log)
    except ScenarioFailure as e:
        results, error = load_results(workdir, modes), str(e)     # the modes that passed
    except RuntimeError as e:       # the simulator build or start-up failed
        where = f"; log: {log}" if log else ""
        raise SimError(f"{args.sim}: {e}{where}") from None
    wall = time.perf_counter() - t0
    out = None
    if (workdir / "readback_t3.npz").exists() and "t3" in modes:
        out = load_outputs(workdir, "t3")
        if error is None:
            error = fold_check(out)
        if dump is not None:
            write_dump(out, dump)
    cycles = {m: results[m]["cycles"] if m in results else None for m in ("baseline", "t3")}
    speedup = (cycles["baseline"] / cycles["t3"]) if cycles["baseline"] and cycles["t3"] else None
    devices = []
    for d in range(scn.devices):
        row: dict[str, Any] = {"device": d}
        for m in modes:
            if m in results:
                row[m] = utilisation(results[m]["devices"][d], results[m]["cycles"])
        devices.append(row)
    report = {
        "scenario": scn.to_dict(), "sim": args.sim, "workdir": str(workdir),
        "modes_run": list(modes), "modes_available": list(avail),
        "baseline_cycles": cycles["baseline"], "t3_cycles": cycles["t3"], "speedup": speedup,
        "tracker_entries": {"configured": scn.tracker_entries, **scn.tracker_sizing()},
        "dma_queue_depth": scn.config().dma_queue_depth,
        "devices": devices, "verified": error is None and all(m in results for m in modes),
        "error": error,
        "lines_checked": {m: r.get("lines_checked") for m, r in results.items()},
        "wall_s": {"total": wall, **{k: v for k, v in timings.items() if k != "tests"},
                   "tests": timings.get("tests", {})},
        "log": str(log) if log else None, "dump": str(dump) if dump else None,
        "waves": _move_waves(args.sim, scn, started, workdir)
        if args.waves else None,
    }
    return report


class SimError(UsageError):
    """The simulator could not build or start (environment, not the design's result)."""


def _pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def print_report(r: dict[str, Any]) -> None:
    s = r["scenario"]
    print(f"ring: {s['devices']} devices, {s['m']}x{s['n']}x{s['k']} {s['dtype']} {s['layout']}-major, "
          f"{s['line_bytes']}-byte lines, WG {s['wg_tile'][0]}x{s['wg_tile'][1]} WF "
          f"{s['wf_tile'][0]}x{s['wf_tile'][1]}, {s['cus']} CUs, tracker {s['tracker_entries']}, "
          f"link {s['link_latency']} cycles {s['link_bw']} lines/cycle, policy {s['policy']}, "
          f"all-gather {'fused' if s['fuse_allgather'] else 'off'}, jitter {s['jitter']}, "
          f"backpressure {s['backpressure']}, stall {s.get('stall', 0.0)}, "
          f"GEMM reads {s.get('gemm_read_rate', 0.0)}/cycle, "
          f"memory {s.get('memory', 'ideal')}, GEMM intensity {s.get('gemm_intensity', 0.0)}, "
          f"seed {s['seed']}, {r['sim']}")
    te = r["tracker_entries"]
    print(f"sizing: tracker {te['configured']} entries ({te['recommended']} recommended for this "
          f"GEMM), DMA queue {r['dma_queue_depth']} (docs/programming.md \"Sizing\")")
    if te["configured"] < te["min"]:
        print(f"note: fewer tracker entries than a chunk's {te['min']} WF tiles: correct, but "
              "tiles spill to the backing counters (see the hit rate below)")
    print(f"workdir: {r['workdir']}")
    for m in ("baseline", "t3"):
        c = r[f"{m}_cycles"]
        if c is not None:
            print(f"  {m:<9} {c:>10} cycles")
        elif m not in r["modes_available"]:
            print(f"  {m:<9} {'-':>10}        (not implemented by verif/tb_ring.py yet)")
        elif m not in r["modes_run"]:
            print(f"  {m:<9} {'-':>10}        (not run)")
        else:
            print(f"  {m:<9} {'-':>10}        (failed)")
    if r["speedup"] is not None:
        print(f"  speedup baseline / t3: {r['speedup']:.3f}x")
    for m in r["modes_run"]:
        rows = [d[m] for d in r["devices"] if m in d]
        if not rows:
            continue
        print(f"{m} per device: mem_busy, link_busy, queue_full = fraction of the run's cycles")
        print("  device  mem_busy  link_busy  queue_full  fires  stall_cycles  occupancy  "
              "table_hits  spills")
        for d, u in enumerate(rows):
            occ = "-" if u["occupancy"] is None else str(u["occupancy"])
            hit = "-" if u.get("tracker_hit_rate") is None else _pct(u["tracker_hit_rate"])
            print(f"  {d:>6}    {_pct(u['mem_busy'])}     {_pct(u['link_busy'])}      "
                  f"{_pct(u['queue_full'])}  {u['tracker_fires']:>5}  {u['stall_cycles']:>12}  "
                  f"{occ:>9}  {hit:>10}  {u.get('tracker_spills')!s:>6}")
        reads = [u["counters"].get("gemm_reads", 0) for u in rows]
        if any(reads):
            print(f"  GEMM READs answered (and discarded) per device: {reads}")
        if s.get("memory") == "dram":
            print("  device  row_hits  mean_queue  read_lat_mean  read_lat_max  gemm_stall  "
                  "mca_threshold")
            for d, u in enumerate(rows):
                mm = u["memory"]
                lat = "-" if mm["gemm_read_latency_mean"] is None \
                    else f"{mm['gemm_read_latency_mean']:.1f}"
                hit = "-" if mm["row_hit_ratio"] is None else _pct(mm["row_hit_ratio"])
                occ = "-" if mm["mean_occupancy"] is None else f"{mm['mean_occupancy']:.2f}"
                thr = f"{mm['mca_threshold']}{' (measured)' if mm['mca_measured'] else ''}"
                print(f"  {d:>6}    {hit}  {occ:>10}  {lat:>13}  {mm['gemm_read_latency_max']!s:>12}"
                      f"  {mm['gemm_stall_cycles']!s:>10}  {thr}")
    w = r["wall_s"]
    print(f"wall: {w['total']:.1f} s (prepare {w.get('prepare_s', 0):.1f} s, Verilog "
          f"{w.get('verilog_s', 0):.1f} s, build + simulation {w.get('cocotb_s', 0):.1f} s)"
          + (f"; simulator log {r['log']}" if r["log"] else ""))
    if r["waves"]:
        print(f"waves: {r['waves']}")
    if r["dump"]:
        print(f"dump: {r['dump']}")
    if r["verified"]:
        checked = ", ".join(f"{m} {n} lines" for m, n in r["lines_checked"].items())
        print(f"PASS: every device's memory equals the golden model bit for bit ({checked}); "
              f"the final output equals the numpy fold")
    else:
        print(f"FAIL: {r['error']}")


def run(args: argparse.Namespace) -> int:
    report = simulate(args)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_report(report)
    if not report["verified"]:
        print(f"t3 sim: FAIL: {report['error']}", file=sys.stderr)
        return 1
    return 0
