"""`t3 bench` (`make bench`): simulator speed of the 4-device ring RTL under Icarus and
Verilator, in simulated ring cycles per wall second, build time apart. A benchmark, not
a test: it prints a table and writes build/bench/bench.json (verif/bench.py); the
figures measured on the project machine are recorded in docs/simulation.md."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import choice_error
from .errors import UsageError

DEFAULT_SIZES = "small,medium"


def register(sub) -> None:
    p = sub.add_parser("bench", help="simulator speed of the ring RTL (cycles/s per simulator)")
    p.add_argument("--sizes", default=DEFAULT_SIZES, metavar="LIST",
                   help="comma-separated among small, medium, large (large = 1 MiB output "
                        f"per device, the issue's end-to-end target; default {DEFAULT_SIZES})")
    p.add_argument("--sim", default="icarus,verilator", metavar="LIST",
                   help="comma-separated simulators (default icarus,verilator)")
    p.add_argument("--rebuild", action="store_true",
                   help="delete the cached Verilog and simulator builds first (cold build time)")
    p.add_argument("--out", metavar="FILE", help="JSON output (default build/bench/bench.json)")
    p.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    p.set_defaults(func=run)


def _list(text: str, allowed, name: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise UsageError(f"{name}: empty list")
    for x in items:
        if x not in allowed:
            raise choice_error(name, x, allowed)
    return items


def run(args: argparse.Namespace) -> int:
    from verif.bench import BENCH_DIR, SIZES, format_table, run_bench
    from verif.runner import SIMULATORS
    sizes = _list(args.sizes, list(SIZES), "--sizes")
    sims = _list(args.sim, SIMULATORS, "--sim")
    out = Path(args.out) if args.out else BENCH_DIR / "bench.json"
    if out.exists() and out.is_dir():
        raise UsageError(f"--out {out}: is a directory")
    doc = run_bench(sizes, sims, rebuild=args.rebuild, out=out,
                    progress=None if args.json else lambda m: print(m, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print(format_table(doc))
        print(f"(written to {out}; simulator logs next to it)")
    return 0 if all(e["verified"] for e in doc["entries"]) else 1
