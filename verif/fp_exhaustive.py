"""Large-volume verification of the FloatAdder under Verilator with a C++ harness
(verif/fp_exhaustive.cpp): all 2^32 operand pairs of fp16 or bf16, or many random pairs
of any format. Not a test (minutes of CPU); run by hand:

    .venv/bin/python -m verif.fp_exhaustive fp16 [--stages N] [--a-range LO HI]
    .venv/bin/python -m verif.fp_exhaustive fp32 --random 100000000 [--seed S]

Prints the harness' summary and the wall time; exit status 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from contract.spec import DEFAULT_CONFIG, ConfigError

HERE = Path(__file__).resolve().parent
BUILD = HERE.parent / "build" / "fp_exhaustive"
FLAGS = {"fp16": "-DFMT_FP16", "bf16": "-DFMT_BF16", "fp32": "-DFMT_FP32"}


def build(fmt: str, stages: int) -> Path:
    from hw.fp import FloatAdder
    from flow.lint import ensure_tool_path, waiver_args
    from flow.verilog import generate
    ensure_tool_path()
    top = f"fp_exhaustive_{fmt}_s{stages}"
    mdir = BUILD / top
    src = generate(FloatAdder(fmt, stages=stages), top, mdir)
    cmd = ["verilator", "--cc", "--exe", "--build", "-O3", "--x-assign", "fast",
           "--x-initial", "fast", "-Wno-fatal", *waiver_args(), "--top-module", top,
           "--prefix", "Vdut", "-Mdir", str(mdir / "obj"), "-o", "vfp",
           "-CFLAGS", f"-O2 {FLAGS[fmt]} -DLATENCY={stages}",
           str(src), str(HERE / "fp_exhaustive.cpp")]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        sys.exit(f"verilator build failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return mdir / "obj" / "vfp"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("fmt", choices=sorted(FLAGS))
    p.add_argument("--stages", type=int, default=DEFAULT_CONFIG.fp_adder_stages)
    p.add_argument("--a-range", type=lambda s: int(s, 0), nargs=2, default=(0, 1 << 16),
                   metavar=("LO", "HI"), help="exhaustive: first operands to sweep (default: all)")
    p.add_argument("--random", type=int, metavar="COUNT",
                   help="check COUNT random pairs instead (the only mode for fp32)")
    p.add_argument("--seed", type=int, default=2024, help="seed of --random (default: 2024)")
    args = p.parse_args(argv)
    if args.random is None and args.fmt == "fp32":
        p.error("fp32 has 2^64 pairs: use --random COUNT")
    try:
        exe = build(args.fmt, args.stages)
    except ConfigError as e:
        p.error(str(e))
    if args.random is None:
        # slices of 4096 first operands (2^28 pairs), each reported as it finishes, so an
        # interrupted sweep still says what it covered
        lo, hi = args.a_range
        runs = [(["all", str(a), str(min(a + 4096, hi))],
                 f"all pairs, a in [{a:#06x}, {min(a + 4096, hi):#06x})")
                for a in range(lo, hi, 4096)]
    else:
        runs = [(["random", str(args.seed), str(args.random)],
                 f"{args.random} random pairs, seed={args.seed}")]
    status = 0
    for run_args, what in runs:
        t0 = time.perf_counter()
        r = subprocess.run([str(exe), *run_args], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        print(f"{args.fmt} stages={args.stages} {what}: {wall:.1f} s: "
              f"{r.stdout.strip()}{r.stderr.strip()}", flush=True)
        status = status or r.returncode
    return status

if __name__ == "__main__":
    sys.exit(main())
