"""`t3 trace`: generate a GEMM's store traces and the ring programming into a directory."""

from __future__ import annotations

import argparse
import time

from .common import add_config_arg, config_from_args, nonneg_int, out_dir, positive_int


def tile_arg(text: str) -> tuple[int, int]:
    """``RxC`` (elements along M x along N), e.g. ``64x64``."""
    parts = text.lower().split("x")
    try:
        if len(parts) != 2:
            raise ValueError
        r, c = int(parts[0]), int(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not ROWSxCOLS (e.g. 64x64)") from None
    if r < 1 or c < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: sizes must be >= 1")
    return r, c


def register(sub) -> None:
    from contract.spec import FORMATS
    p = sub.add_parser("trace", help="generate GEMM store traces + ring programming")
    p.add_argument("--devices", type=positive_int, default=4, help="ring devices (default 4)")
    p.add_argument("--m", type=positive_int, required=True, help="output rows (elements)")
    p.add_argument("--n", type=positive_int, required=True, help="output columns (elements)")
    p.add_argument("--k", type=positive_int, required=True, help="reduction length (elements)")
    p.add_argument("--dtype", choices=list(FORMATS), help="element type (default: the config's)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="input RNG seed (default 0)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--layout", choices=["row", "col"], default="row", help="output layout")
    p.add_argument("--wg-tile", type=tile_arg, default=(64, 64), metavar="RxC",
                   help="workgroup tile, elements along M x N (default 64x64)")
    p.add_argument("--wf-tile", type=tile_arg, default=(32, 32), metavar="RxC",
                   help="wavefront tile, elements along M x N (default 32x32)")
    p.add_argument("--cus", type=positive_int, default=80, help="compute units (default 80)")
    p.add_argument("--wg-cycles", type=positive_int, default=64,
                   help="cycles a WG computes before emitting (default 64)")
    p.add_argument("--out-base", type=nonneg_int, default=0, help="output's first line address")
    p.add_argument("--line-bytes", type=positive_int, help="bytes per memory line (overrides config)")
    p.add_argument("--no-allgather", action="store_true", help="program the RS only (unfused AG)")
    add_config_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim_models.collective import schedule_rows
    from contract.gemm import GemmSpec
    from contract.sizing import config_for
    from contract.spec import ConfigError
    from sim_models.workload import make_workload
    from sim_models.trace import save_traces
    base = config_from_args(args)
    out_dir(args.out, "--out")          # fail before the (possibly long) generation
    dtype = args.dtype or base.dtype
    changes = {"dtype": dtype}
    if args.line_bytes is not None:
        changes["line_bytes"] = args.line_bytes
    base = base.replace(**changes)
    gemm = GemmSpec(m=args.m, n=args.n, k=args.k, devices=args.devices, dtype=dtype,
                    layout=args.layout, wg_tile=args.wg_tile, wf_tile=args.wf_tile, cus=args.cus,
                    wg_cycles=args.wg_cycles, seed=args.seed, out_base=args.out_base)
    t0 = time.perf_counter()
    try:
        cfg = config_for(gemm, base)
    except ConfigError as e:    # name the options config_for sized the configuration from
        raise ConfigError(f"no T3 configuration fits --devices {args.devices}, --out-base "
                          f"{args.out_base} and the --m x --n output: {e}") from None
    w = make_workload(cfg, gemm, fuse_allgather=not args.no_allgather)
    path = save_traces(args.out, w)
    dt = time.perf_counter() - t0
    print(f"{path}: {gemm.devices} devices, {gemm.m}x{gemm.n} {dtype} {gemm.layout.value}-major, "
          f"{cfg.lanes} lanes/line, {w.geometry.total_lines} lines/device, mem_depth_lines="
          f"{cfg.mem_depth_lines}, all-gather {'fused' if w.fuse_allgather else 'unfused'} ({dt:.2f} s)")
    for c in w.chunks:
        print(f"  chunk {c.index}: rows {c.row_start}:{c.row_stop} cols {c.col_start}:{c.col_stop} "
              f"lines [{c.base}, {c.limit}) ring order {list(c.ring_order)}")
    for d, t in enumerate(w.traces):
        print(f"  device {d}: {len(t)} requests, last at cycle {int(t.time[-1])}, "
              f"{int(t.route.sum())} remote")
    if args.devices <= 4:
        for r in schedule_rows(gemm.devices, fuse_allgather=w.fuse_allgather):
            print(f"  dev {r['device']} stage {r['stage']}: chunk {r['chunk']}: {r['sends']}")
    return 0
