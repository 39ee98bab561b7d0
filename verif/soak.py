"""Soak: many seeds of random ring scenarios on the RTL, each checked bit for bit against
the golden model by the ring testbench (verif/tb_ring.py via verif.ring_scenario).

    python -m verif.soak [--sim verilator] [--seeds 200] [--start 0] [--devices 2,3,4,5,6,7,8]

Seed ``s`` fully determines its scenario (:func:`draw`) and the testbench's random
choices, so a failure reproduces with ``python -m verif.soak --seeds 1 --start s``
(printed with the equivalent ``t3 sim`` command). Prints one line per seed and a
summary; writes ``build/soak/soak.json``.

Run-time knobs vary freely (layout, GEMM and tile sizes, CUs, WG compute time, k,
producer jitter, sink backpressure, link latency and bandwidth, arbiter policy (the ARB
register, which the ring testbench writes and reads back in every mode), fused or unfused
all-gather, and the random stalls on every link and memory handshake during the whole run
(:data:`STALLS`, drawn last so the other knobs of a seed are those drawn before stalls
existed)). Hardware knobs select a build (RingScenario.hw_key), so they come
from a small fixed set of profiles (:data:`PROFILE_DTYPES`: N = 2..8, every dtype for
N = 2, 3, 4 and 8, two for N = 5, 6 and 7), each (devices, dtype) with 8-byte lines and a
16-entry tracker, one build per simulator; a seed draws its N uniformly, then one of that
N's dtypes. A profile's shape (:func:`profile`) is also the ring tests'
(verif/test_ring.py ``ring_profile``), so the builds are shared (except N = 2 fp32: the
ring tests' has the DRAM memory, the soak's the ideal one). A drawn scenario whose
hardware key differs from its profile's (e.g. a larger output needs deeper memory) is
redrawn.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from contract.spec import FORMATS, ConfigError
from verif.ring_scenario import RingScenario, run_scenario
from verif.runner import BUILD, SIMULATORS

SOAK_DIR = BUILD / "soak"
DTYPES = tuple(FORMATS)
#: devices -> the element types the soak draws for that ring size, each pair one build per
#: simulator (18 in all): every dtype for N = 2, 3, 4 and 8, two for N = 5, 6 and 7 (the
#: first is the ring tests' build of that N, verif/test_ring.py MATRIX; each dtype runs on
#: two of the three)
PROFILE_DTYPES = {2: DTYPES, 3: DTYPES, 4: DTYPES, 5: ("fp16", "fp32"), 6: ("fp32", "bf16"),
                  7: ("bf16", "fp16"), 8: DTYPES}
DEFAULT_DEVICES = tuple(PROFILE_DTYPES)     # 2..8: every ring size of the RTL
#: ring sizes whose profile output (M = 8 N + 4 rows in 8-row WG tiles) splits into uneven
#: chunks (the first two WG rows, the last a clipped half one); the others have M = 8 N
UNEVEN_DEVICES = (3, 5, 6, 7)
LINE_BYTES = 8
TRACKER_ENTRIES = 16
MEM_DEPTH_LINES = 256                # fixed memory depth and link FIFO: one build per
LINK_FIFO = 128                      # (devices, dtype), as in verif/test_ring.py
#: fixed DMA queue depth, >= contract.sizing.fire_queue_needed of every scenario draw()
#: can make (75 at most: 8 devices, 2 x 2 WF tiles), shared with verif/test_ring.py
DMA_QUEUE_DEPTH = 80
#: the stall probabilities a seed draws from (RingScenario.stall: every link's delivery and
#: every memory's request handshake held in random cycles through the whole run)
STALLS = (0.0, 0.1, 0.3)


def profile(devices: int, dtype: str) -> RingScenario:
    """The hardware profile of (devices, dtype), also verif/test_ring.py's ring shape (so
    the hw_key, and the build, is shared): M = 8 N (+ 4 for :data:`UNEVEN_DEVICES`) rows by
    16 columns, K = 8 (elements), 8x8 WG and 4x4 WF tiles, 8-byte lines, 2 CUs, link 10
    cycles at 0.5 lines per cycle, a 16-entry tracker, and the fixed memory depth (lines),
    link FIFO and DMA queue depth (entries) below."""
    m = 8 * devices + (4 if devices in UNEVEN_DEVICES else 0)
    scn = RingScenario(devices=devices, dtype=dtype, m=m, n=16, k=8, wg_tile=(8, 8),
                       wf_tile=(4, 4), line_bytes=LINE_BYTES, cus=2, wg_cycles=8,
                       link_latency=10, link_bw=0.5, tracker_entries=TRACKER_ENTRIES,
                       modes=("t3",), link_fifo=LINK_FIFO, dma_queue_depth=DMA_QUEUE_DEPTH)
    # at least MEM_DEPTH_LINES, more when this profile's own output needs it
    depth = max(MEM_DEPTH_LINES, scn.config().mem_depth_lines)
    return dataclasses.replace(scn, mem_depth_lines=depth)


def _valid(scn: RingScenario) -> bool:
    from contract.gemm import split_chunks
    from contract.sizing import check_config
    try:
        gemm = scn.gemm()
        split_chunks(gemm, check_config(scn.config(), gemm))
        return True
    except (ConfigError, ValueError):
        return False


def profiles(devices: tuple[int, ...] = DEFAULT_DEVICES,
             dtypes: tuple[str, ...] = DTYPES) -> dict[int, tuple[str, ...]]:
    """The profiles a soak of ``devices`` x ``dtypes`` draws from, ``{N: dtypes}``: the
    pairs of :data:`PROFILE_DTYPES` within both (a size left with no dtype is left out).
    ConfigError when no pair is left."""
    out = {n: tuple(d for d in PROFILE_DTYPES.get(n, ()) if d in dtypes) for n in devices}
    out = {n: ds for n, ds in out.items() if ds}
    if not out:
        have = "; ".join(f"{n}: {'/'.join(ds)}" for n, ds in PROFILE_DTYPES.items())
        raise ConfigError(f"devices={','.join(map(str, devices))} dtypes={','.join(dtypes)}: "
                          f"no soak profile (the profiles, devices: dtypes: {have})")
    return out


def draw(seed: int, devices: tuple[int, ...] = DEFAULT_DEVICES,
         dtypes: tuple[str, ...] = DTYPES) -> RingScenario:
    """Seed -> a valid random scenario on one of the fixed hardware profiles
    (:func:`profiles`): N uniform among the sizes, then one of that N's dtypes."""
    rng = random.Random(seed)
    avail = profiles(devices, dtypes)
    n_dev = rng.choice(sorted(avail))
    dtype = rng.choice(avail[n_dev])
    prof = profile(n_dev, dtype)
    key = prof.hw_key()
    lanes = LINE_BYTES // FORMATS[dtype].bytes
    for _ in range(500):
        wf = (rng.choice((2, 4, 8)), rng.choice((2, 4, 8)))
        wg = (wf[0] * rng.choice((1, 2)), wf[1] * rng.choice((1, 2)))
        lat = rng.randint(1, 28)
        scn = RingScenario(
            devices=n_dev, dtype=dtype, layout=rng.choice(("row", "col")),
            m=lanes * rng.randint(1, 8 * n_dev // lanes + 2),
            n=lanes * rng.randint(1, 32 // lanes),
            k=n_dev * rng.randint(1, 4), wg_tile=wg, wf_tile=wf,
            cus=rng.randint(1, 4), wg_cycles=rng.randint(1, 24), line_bytes=LINE_BYTES,
            tracker_entries=TRACKER_ENTRIES, link_latency=lat,
            link_bw=rng.choice((0.125, 0.25, 0.5, 1.0)), policy=rng.choice(("fifo", "mca")),
            fuse_allgather=rng.random() < 0.8, seed=seed, jitter=rng.randint(0, 6),
            backpressure=rng.choice((0.0, 0.1, 0.3, 0.6)), modes=("t3",),
            mem_depth_lines=prof.mem_depth_lines, link_fifo=LINK_FIFO,
            dma_queue_depth=DMA_QUEUE_DEPTH)
        if _valid(scn) and scn.hw_key() == key:
            return dataclasses.replace(scn, stall=rng.choice(STALLS))
    raise RuntimeError(f"seed {seed}: no valid scenario for profile {n_dev}x{dtype} in 500 draws")


def sim_command(scn: RingScenario, sim: str) -> str:
    """The `t3 sim` command line that runs ``scn`` (same scenario and results; its build
    sizes the memory and link FIFO for the scenario, so the cycle counts may differ
    slightly where the soak's fixed link FIFO backpressures; the soak's own reproduce
    command is exact)."""
    args = ["t3", "sim", "--sim", sim, "--modes", ",".join(scn.modes)]
    for name, val in (("devices", scn.devices), ("m", scn.m), ("n", scn.n), ("k", scn.k),
                      ("dtype", scn.dtype), ("layout", scn.layout),
                      ("wg-tile", f"{scn.wg_tile[0]}x{scn.wg_tile[1]}"),
                      ("wf-tile", f"{scn.wf_tile[0]}x{scn.wf_tile[1]}"), ("cus", scn.cus),
                      ("wg-cycles", scn.wg_cycles), ("line-bytes", scn.line_bytes),
                      ("tracker-entries", scn.tracker_entries),
                      ("link-latency", scn.link_latency), ("link-bw", scn.link_bw),
                      ("policy", scn.policy), ("jitter", scn.jitter),
                      ("backpressure", scn.backpressure), ("stall", scn.stall),
                      ("seed", scn.seed)):
        args += [f"--{name}", str(val)]
    if not scn.fuse_allgather:
        args.append("--no-allgather")
    return shlex.join(args)


def _describe(scn: RingScenario) -> str:
    return (f"N={scn.devices} {scn.dtype} {scn.layout} {scn.m}x{scn.n}x{scn.k} "
            f"wg={scn.wg_tile[0]}x{scn.wg_tile[1]} wf={scn.wf_tile[0]}x{scn.wf_tile[1]} "
            f"cus={scn.cus} lat={scn.link_latency} bw={scn.link_bw} {scn.policy} "
            f"jit={scn.jitter} bp={scn.backpressure} stall={scn.stall}"
            f"{'' if scn.fuse_allgather else ' RS-only'}")


def run_seed(seed: int, sim: str, devices: tuple[int, ...] = DEFAULT_DEVICES,
             keep: bool = False, out: Path = SOAK_DIR,
             dtypes: tuple[str, ...] = DTYPES) -> dict[str, Any]:
    """Run one seed; returns its record (never raises for an RTL failure)."""
    scn = draw(seed, devices, dtypes)
    workdir = out / "runs" / f"{sim}-seed{seed}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    rec: dict[str, Any] = {"seed": seed, "sim": sim, "scenario": scn.to_dict(),
                           "reproduce": _reproduce(seed, sim, devices, dtypes),
                           "t3_sim": sim_command(scn, sim), "describe": _describe(scn)}
    t0 = time.perf_counter()
    tm: dict[str, Any] = {}
    try:
        res = run_scenario(scn, sim=sim, workdir=workdir, log=workdir / "sim.log",
                           timings=tm)["t3"]
        expect = json.loads((workdir / "expect.json").read_text())
        rec.update(ok=True, cycles=int(res["cycles"]),
                   requests=sum(int(e["mem_reqs"]) for e in expect["t3"]),
                   producer_requests=sum(int(e["producer"]) for e in expect["t3"]),
                   lines_checked=int(res.get("lines_checked", 0)),
                   held={k: sum(int(d[k]) for d in res["devices"])
                         for k in ("link_stall_cycles", "mem_stall_cycles")})
    except AssertionError as e:                 # ScenarioFailure and other check failures
        rec.update(ok=False, error=" ".join(str(e).split())[:500])
    except Exception as e:                      # noqa: BLE001 - a soak reports, then goes on
        rec.update(ok=False, error=f"{type(e).__name__}: {' '.join(str(e).split())[:400]}",
                   traceback=traceback.format_exc())
    rec["wall_s"] = round(time.perf_counter() - t0, 3)
    # the simulation alone (cocotb test time), without prepare/Verilog/build
    rec["test_s"] = round(sum(tm.get("tests", {}).values()), 3)
    rec["log"] = str(workdir / "sim.log")
    if rec["ok"] and not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return rec


def run_seed_isolated(seed: int, sim: str, devices: tuple[int, ...] = DEFAULT_DEVICES,
                      keep: bool = False, out: Path = SOAK_DIR,
                      dtypes: tuple[str, ...] = DTYPES, timeout: float = 900) -> dict[str, Any]:
    """:func:`run_seed` in a child process (its own session) killed after ``timeout``
    seconds: a deadlocked ring (the testbench waits on a ready that never comes) becomes
    a failed seed instead of a hung soak."""
    rec_path = out / "runs" / f"{sim}-seed{seed}.record.json"
    rec_path.unlink(missing_ok=True)
    rec_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "verif.soak", "--child", str(rec_path), "--sim", sim,
           "--seeds", "1", "--start", str(seed), "--devices", ",".join(map(str, devices)),
           "--dtypes", ",".join(dtypes), "--out", str(out)] + (["--keep"] if keep else [])
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)      # the child and its simulator
        proc.wait()
    if rec_path.exists():
        rec = json.loads(rec_path.read_text())
        rec_path.unlink()
        return rec
    scn = draw(seed, devices, dtypes)
    reason = (f"no result after {timeout:.0f} s (killed: a hang, e.g. a deadlocked ring?)"
              if proc.returncode in (-signal.SIGKILL,) else f"child exited {proc.returncode}")
    return {"seed": seed, "sim": sim, "scenario": scn.to_dict(), "ok": False, "error": reason,
            "reproduce": _reproduce(seed, sim, devices, dtypes), "t3_sim": sim_command(scn, sim),
            "describe": _describe(scn), "wall_s": round(time.perf_counter() - t0, 3),
            "test_s": 0.0, "log": str(out / "runs" / f"{sim}-seed{seed}" / "sim.log")}


def _reproduce(seed: int, sim: str, devices, dtypes) -> str:
    return (f"{sys.executable} -m verif.soak --sim {sim} --seeds 1 --start {seed} "
            f"--devices {','.join(map(str, devices))} --dtypes {','.join(dtypes)}")


def soak(seeds: int, start: int, sim: str, devices: tuple[int, ...] = DEFAULT_DEVICES,
         keep: bool = False, out: Path = SOAK_DIR, echo=None,
         dtypes: tuple[str, ...] = DTYPES, timeout: float = 900) -> dict[str, Any]:
    echo = echo or (lambda text: print(text, flush=True))
    out.mkdir(parents=True, exist_ok=True)
    records = []
    t0 = time.perf_counter()
    for s in range(start, start + seeds):
        r = run_seed_isolated(s, sim, devices, keep, out, dtypes, timeout)
        records.append(r)
        if r["ok"]:
            echo(f"seed {s:5d} ok   {r['cycles']:7d} cycles {r['requests']:6d} reqs "
                 f"{r['wall_s']:6.1f} s (sim {r['test_s']:5.1f} s)  {r['describe']}")
        else:
            echo(f"seed {s:5d} FAIL {r['wall_s']:6.1f} s  {r['describe']}\n"
                 f"    {r['error']}\n    reproduce: {r['reproduce']}\n    or: {r['t3_sim']}")
    ok = [r for r in records if r["ok"]]
    wall = time.perf_counter() - t0
    summary = {"sim": sim, "seeds": seeds, "start": start, "passed": len(ok),
               "failed": seeds - len(ok), "total_cycles": sum(r["cycles"] for r in ok),
               "total_requests": sum(r["requests"] for r in ok),
               "total_producer_requests": sum(r["producer_requests"] for r in ok),
               "wall_s": round(wall, 1), "seconds_per_seed": round(wall / max(seeds, 1), 2),
               "sim_s": round(sum(r["test_s"] for r in records), 1),
               "devices": list(devices), "dtypes": list(dtypes),
               "failures": [{"seed": r["seed"], "error": r["error"], "reproduce": r["reproduce"],
                             "t3_sim": r["t3_sim"], "log": r["log"]}
                            for r in records if not r["ok"]]}
    doc = {"summary": summary, "records": records}
    (out / "soak.json").write_text(json.dumps(doc, indent=1))
    echo(f"soak {sim}: {len(ok)}/{seeds} seeds passed (seeds {start}..{start + seeds - 1}), "
         f"{summary['total_cycles']} cycles, {summary['total_requests']} memory requests "
         f"({summary['total_producer_requests']} producer stores), {wall:.0f} s wall "
         f"({summary['seconds_per_seed']} s/seed, {summary['sim_s']} s in the simulator); "
         f"{out / 'soak.json'}")
    for f in summary["failures"]:
        echo(f"  FAILED seed {f['seed']}: {f['error'][:200]}\n    reproduce: {f['reproduce']}")
    return doc


def _devices(text: str) -> tuple[int, ...]:
    from hw.env.ring import MAX_DEVICES
    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: comma-separated integers") from None
    if not vals or any(not 2 <= v <= MAX_DEVICES for v in vals):
        raise argparse.ArgumentTypeError(f"{text!r}: each must be in 2..{MAX_DEVICES}")
    return vals


def _dtypes(text: str) -> tuple[str, ...]:
    vals = tuple(x.strip() for x in text.split(",") if x.strip())
    if not vals or any(v not in FORMATS for v in vals):
        raise argparse.ArgumentTypeError(f"{text!r}: each must be one of {', '.join(FORMATS)}")
    return vals


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m verif.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--sim", choices=SIMULATORS, default="verilator")
    p.add_argument("--seeds", type=int, default=200, help="number of seeds (default 200)")
    p.add_argument("--start", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--devices", type=_devices, default=DEFAULT_DEVICES,
                   help="ring sizes to draw from (default 2..8; each (size, dtype) "
                        "profile is one build)")
    p.add_argument("--dtypes", type=_dtypes, default=DTYPES,
                   help=f"element types to draw from (default {','.join(DTYPES)}; sizes 5, 6 "
                        "and 7 have two each: " + ", ".join(
                            f"{n}: {'/'.join(d)}" for n, d in PROFILE_DTYPES.items()
                            if d != DTYPES) + ")")
    p.add_argument("--timeout", type=float, default=900,
                   help="seconds per seed, build included, before it counts as a hang "
                        "(default 900)")
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)   # run_seed_isolated's child
    p.add_argument("--keep", action="store_true", help="keep passing seeds' run directories")
    p.add_argument("--out", type=Path, default=SOAK_DIR, help="output directory (default build/soak)")
    a = p.parse_args(argv)
    if a.seeds < 1 or a.start < 0:
        p.error("--seeds must be >= 1 and --start >= 0")
    try:
        profiles(a.devices, a.dtypes)
    except ConfigError as e:
        p.error(f"--devices/--dtypes: {e}")
    if a.child:
        rec = run_seed(a.start, a.sim, a.devices, a.keep, a.out, a.dtypes)
        a.child.write_text(json.dumps(rec))
        return 0
    doc = soak(a.seeds, a.start, a.sim, a.devices, a.keep, a.out, dtypes=a.dtypes,
               timeout=a.timeout)
    return 0 if doc["summary"]["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
