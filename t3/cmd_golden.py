"""`t3 golden`: run the golden T3 ring on a trace directory and check it against the
independent fold and the unfused baseline."""

from __future__ import annotations

import argparse
import json

from .common import nonneg_int


def register(sub) -> None:
    p = sub.add_parser("golden", help="run the golden ring model on a trace directory")
    p.add_argument("--trace", required=True, metavar="DIR", help="directory written by `t3 trace`")
    p.add_argument("--seed", type=nonneg_int,
                   help="random arrival interleaving seed (default: issue-time order)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def check_directory(directory: str, seed: int | None) -> dict:
    """Load, run golden + fold + baseline, compare. Returns a JSON-able summary."""
    import numpy as np

    from sim_models.baseline import run_baseline
    from sim_models.fold import fold_allreduce
    from contract.gemm import split_chunks
    from sim_models.golden import run_ring
    from sim_models.trace import load_header, load_traces

    cfg, gemm, programs, traces = load_traces(directory)
    fused_ag = bool(load_header(directory)["fuse_allgather"])
    geo = gemm.geometry(cfg.lanes)
    chunks = split_chunks(gemm, geo)
    partials = []
    for t in traces:
        img = np.zeros((geo.total_lines, cfg.lanes), t.data.dtype)
        img[t.addr.astype(np.int64) - gemm.out_base] = t.data
        partials.append(geo.from_lines(img))
    res = run_ring(cfg, programs, traces, seed=seed, gemm=gemm)
    ref = fold_allreduce(gemm.dtype, partials,
                         [(c.row_start, c.row_stop, c.col_start, c.col_stop) for c in chunks])
    base = run_baseline(cfg, gemm, partials, allgather=True)
    checks = {}
    if fused_ag:
        checks["golden == fold (every device)"] = all(
            np.array_equal(res.final_matrix(d), ref) for d in range(gemm.devices))
        checks["golden == baseline (memories)"] = all(
            np.array_equal(res.memories[d], base.memories[d]) for d in range(gemm.devices))
    else:
        def own(mem, c):
            return mem[c.base:c.limit]
        ref_lines = geo.to_lines(ref)
        checks["golden == fold (owner chunks)"] = all(
            np.array_equal(own(res.memories[c.owner], c),
                           ref_lines[c.base - gemm.out_base:c.limit - gemm.out_base]) for c in chunks)
        checks["golden == baseline (owner chunks)"] = all(
            np.array_equal(own(res.memories[c.owner], c), own(base.memories[c.owner], c))
            for c in chunks)
    checks["fold order == ring order"] = [tuple(c.ring_order) for c in chunks] == res.order
    return {"trace": str(directory), "seed": seed, "devices": gemm.devices,
            "fused_allgather": fused_ag, "checks": checks, "pass": all(checks.values()),
            "order": [list(o) for o in res.order], "counts": res.counts,
            "baseline_counts": base.counts}


def run(args: argparse.Namespace) -> int:
    summary = check_directory(args.trace, args.seed)
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"{summary['trace']}: seed={summary['seed']} devices={summary['devices']} "
              f"all-gather {'fused' if summary['fused_allgather'] else 'unfused'}")
        keys = list(summary["counts"][0])
        print("device " + " ".join(f"{k:>15}" for k in keys) + "  base_rd  base_wr")
        for d, (c, b) in enumerate(zip(summary["counts"], summary["baseline_counts"])):
            print(f"{d:>6} " + " ".join(f"{c[k]:>15}" for k in keys)
                  + f" {b['dram_reads']:>8} {b['dram_writes']:>8}")
        t3_dram = sum(c["dram_reads"] + c["dram_writes"] for c in summary["counts"])
        base_dram = sum(b["dram_reads"] + b["dram_writes"] for b in summary["baseline_counts"])
        print(f"  DRAM lines, all devices: T3 {t3_dram} (NMC updates count a read and a write), "
              f"unfused baseline {base_dram} ({100 * (t3_dram / base_dram - 1):+.1f}%)")
        for name, ok in summary["checks"].items():
            print(f"  {'ok  ' if ok else 'FAIL'} {name}")
        print("PASS" if summary["pass"] else "FAIL")
    return 0 if summary["pass"] else 1
