"""`t3 verilog`: generate Verilog for every block, optionally lint / compile / synthesise."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_config_arg, config_from_args
from .errors import UsageError


def register(sub) -> None:
    p = sub.add_parser("verilog", help="generate Verilog for the T3 blocks")
    p.add_argument("--out", default="build/verilog", help="output directory (default: build/verilog)")
    p.add_argument("--design", action="append", metavar="NAME",
                   help="only this design (repeatable); default: all")
    p.add_argument("--check", action="store_true",
                   help="also lint (verilator -Wall + waivers), compile (iverilog -g2012) and "
                        "synthesise (yosys) each file")
    p.add_argument("--list", action="store_true", help="list the design names and exit")
    add_config_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hw.designs import load_all
    from flow.verilog import generate
    cfg = config_from_args(args)
    designs = load_all()
    if args.list:
        print("\n".join(designs))
        return 0
    names = args.design or list(designs)
    for n in names:
        if n not in designs:
            raise UsageError(f"--design {n!r}: unknown (known: {', '.join(designs)})")
    out = Path(args.out)
    failed = 0
    for n in names:
        path = generate(designs[n](cfg), n, out)
        line = f"{path}"
        if args.check:
            ok, msg = check_verilog(path, n)
            line += "  lint+iverilog+yosys: " + ("ok" if ok else "FAILED")
            if not ok:
                failed += 1
                print(msg, file=sys.stderr)
        print(line)
    return 1 if failed else 0


def check_verilog(path: Path, top: str) -> tuple[bool, str]:
    """Lint, compile and synthesise one generated file. Returns (ok, messages).

    Synthesis is Yosys' generic ``synth`` through the report flow (flow/eda.py): memories
    of SRAM size (>= SRAM_MIN_DEPTH words) are kept as memory macros instead of being
    expanded to flip-flops, as a real implementation would use SRAM."""
    from flow.lint import iverilog_compile, lint
    from flow.eda import EdaError, generic_synth
    ok1, m1 = lint(path, top)
    ok2, m2 = iverilog_compile(path, top, path.with_suffix(".vvp"))
    work = path.parent / f".{top}.synth"
    work.mkdir(exist_ok=True)
    try:
        generic_synth(path, top, work, sram_min_depth=SRAM_MIN_DEPTH)
        ok3, m3 = True, ""
    except EdaError as e:
        ok3, m3 = False, str(e)
    msgs = [m for ok, m in ((ok1, "lint: " + m1), (ok2, "iverilog: " + m2), (ok3, "yosys: " + m3))
            if not ok]
    return ok1 and ok2 and ok3, "\n".join(msgs)


#: memories at least this deep are synthesised as SRAM macros (see docs/area.md)
SRAM_MIN_DEPTH = 1024
