"""The technology model behind the µm² estimates: an area-only Liberty library and an
SRAM macro model.

No standard-cell Liberty file can be obtained from the package registries (see the
project's toolchain notes), so the project writes its own, with only what Yosys needs
to map and count: each cell's published area, its pins and its boolean function. There
is no timing, power or capacitance data: the library is good for ``dfflibmap``,
``abc -liberty`` and ``stat -liberty`` and for nothing else. The numbers it gives are
ESTIMATES of a 45 nm implementation before placement (no routing overhead, no
utilisation factor, no clock tree).

Cell areas: the X1 (smallest drive) cells of the NanGate FreePDK45 Open Cell Library,
``NangateOpenCellLibrary_typical.lib``, release PDKv1_3_v2010_12 (Si2 / NanGate, 2010;
also shipped as ``platforms/nangate45`` of The OpenROAD Project's OpenROAD-flow-scripts).
All its cells are 1.4 µm tall; the area is that height times the cell width.

SRAM: large memories are not built from flip-flops but counted as SRAM macros (see
docs/area.md): ``SRAM_BITCELL_UM2`` is the 6T cell of Intel's 45 nm high-k/metal-gate
process (0.346 µm², K. Mistry et al., "A 45nm Logic Technology with High-k+Metal Gate
Transistors, Strained Silicon, 9 Cu Interconnect Layers, 193nm Dry Patterning, and 100%
Pb-free Packaging", IEDM 2007); ``SRAM_ARRAY_EFFICIENCY`` (bit-cell area / macro area,
covering decoders, sense amplifiers, column muxes and I/O) is our assumption, a round
conservative value for the few-KiB to few-MiB macros at stake.

ASIC clock estimate: :data:`ASIC_TIMING` (the one place for its constants, sources
beside them) turns a block's logic depth (levels of Yosys generic gates between
registers, :func:`flow.eda.logic_depth`) into a clock: period = (levels x FO4 per level
+ register overhead in FO4) x FO4 delay of the named node (:func:`asic_fmax_mhz`).

The checked-in ``flow/data/t3_area.lib`` is generated from :data:`CELLS` by
:func:`liberty_text` (``python -m flow.liberty`` rewrites it); a test checks the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Cell", "CELLS", "LIBRARY_NAME", "SOURCE", "LIBERTY_PATH", "NAND2_AREA_UM2",
           "TRANSISTORS_PER_NAND2", "SRAM_BITCELL_UM2", "SRAM_ARRAY_EFFICIENCY",
           "SRAM_TRANSISTORS_PER_BIT", "SRAM_MIN_DEPTH", "sram_area_um2", "liberty_text",
           "technology", "ASIC_TIMING", "AsicTiming", "asic_fmax_mhz"]

LIBRARY_NAME = "t3_area_nangate45"
SOURCE = ("NanGate FreePDK45 Open Cell Library, NangateOpenCellLibrary_typical.lib, "
          "PDKv1_3_v2010_12: X1 cell areas")
LIBERTY_PATH = Path(__file__).resolve().parent / "data" / "t3_area.lib"

#: transistors of a static CMOS 2-input NAND (the unit of "NAND2-equivalent gates")
TRANSISTORS_PER_NAND2 = 4

#: µm² of one 6T SRAM bit cell (Intel 45 nm, IEDM 2007)
SRAM_BITCELL_UM2 = 0.346
#: bit-cell area / macro area (our assumption: periphery doubles the array)
SRAM_ARRAY_EFFICIENCY = 0.5
#: transistors per SRAM bit (6T cell; periphery not counted)
SRAM_TRANSISTORS_PER_BIT = 6
#: memories at least this many words deep are SRAM macros; shallower ones are flip-flops
#: (SRAM compilers do not go much below 16-32 words; a register file is denser there)
SRAM_MIN_DEPTH = 32


@dataclass(frozen=True)
class AsicTiming:
    """Constants of the ASIC clock estimate: the FO4 inverter delay of a named node (ps),
    FO4 per level of generic 2-input gates, and the register (flip-flop + clock) overhead
    per cycle (FO4). Sources in :data:`ASIC_TIMING` and docs/area.md."""
    node: str
    fo4_ps: float
    fo4_per_level: float
    register_overhead_fo4: float
    sources: tuple[tuple[str, str], ...]

    def __post_init__(self):
        if not (self.fo4_ps > 0 and self.fo4_per_level > 0 and self.register_overhead_fo4 >= 0):
            raise ValueError(f"AsicTiming: fo4_ps and fo4_per_level must be > 0 and "
                             f"register_overhead_fo4 >= 0, got {self}")


#: THE constants of the estimated ASIC clock (docs/area.md "Estimated ASIC clock").
#: - fo4_ps: "FO4 delay for 90 nm technology is 45 ps" (a paper comparing register files
#:   with FO4 timings, quoted at https://acronyms.thefreedictionary.com/FO4; the same
#:   page quotes 8.7 ps for a 32 nm high-k/metal-gate process). A 90 nm node is slow
#:   next to the 7 nm of a current GPU, so the estimate errs low, never high, on the node.
#: - fo4_per_level: 1. "This fan-out-of-four (FO4) inverter delay ... is a good estimate
#:   of the delay of typical logic gate (fan-in=2) driving a typical load (fan-out=2)
#:   over relatively short wires" (textbook quoted at
#:   https://electronics.stackexchange.com/questions/8603); every Yosys generic cell is a
#:   2-input gate (3 for $_MUX_).
#: - register_overhead_fo4: 3, the high end of "2-3 FO4 latch delay" (Srinivasan et al.,
#:   "Optimizing Pipelines for Power and Performance", MICRO-35, 2002) and above the
#:   "overhead of about 2 FO4" of Hrishikesh et al., "The Optimal Logic Depth per
#:   Pipeline Stage is 6 to 8 FO4 Inverter Delays", ISCA 2002 (custom latches; a
#:   standard-cell flip-flop is slower).
ASIC_TIMING = AsicTiming(
    node="90 nm CMOS",
    fo4_ps=45.0,
    fo4_per_level=1.0,
    register_overhead_fo4=3.0,
    sources=(
        ("fo4_ps", "'FO4 delay for 90 nm technology is 45 ps', quoted at "
                   "https://acronyms.thefreedictionary.com/FO4"),
        ("fo4_per_level", "FO4 ~ a fan-in-2 gate driving fan-out 2 (textbook quoted at "
                          "https://electronics.stackexchange.com/questions/8603)"),
        ("register_overhead_fo4", "Srinivasan et al., MICRO-35 2002: 2-3 FO4 latch delay; "
                                  "Hrishikesh et al., ISCA 2002: about 2 FO4 overhead"),
    ),
)


def asic_fmax_mhz(levels: int, timing: AsicTiming = ASIC_TIMING) -> float:
    """Estimated ASIC clock (MHz) of a block whose longest register-to-register path has
    ``levels`` levels of generic gates: 1e6 / ((levels x fo4_per_level +
    register_overhead_fo4) x fo4_ps). No wire delay and no fan-out buffering: an
    estimate from logic depth alone."""
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 0:
        raise ValueError(f"levels must be an int >= 0, got {levels!r}")
    period_ps = (levels * timing.fo4_per_level + timing.register_overhead_fo4) * timing.fo4_ps
    return 1e6 / period_ps


@dataclass(frozen=True)
class Cell:
    """One library cell: ``area`` in µm²; ``inputs`` pin names; ``outputs`` maps an output
    pin to its Liberty function (``ff`` cells: of the internal state ``IQ``/``IQN``);
    ``ff``: the Liberty ``ff`` group attributes (next_state, clocked_on, clear, preset)."""
    name: str
    area: float
    inputs: tuple[str, ...]
    outputs: tuple[tuple[str, str], ...]
    ff: tuple[tuple[str, str], ...] = ()
    clock: str = ""


def _comb(name: str, area: float, inputs: str, out: str, function: str) -> Cell:
    return Cell(name, area, tuple(inputs.split()), ((out, function),))


def _dff(name: str, area: float, extra: tuple[tuple[str, str], ...], pins: str) -> Cell:
    return Cell(name, area, ("D", *pins.split(), "CK"), (("Q", "IQ"), ("QN", "IQN")),
                ff=(("next_state", "D"), ("clocked_on", "CK"), *extra), clock="CK")


#: the library: Nangate45 X1 cells, pin names and functions as in the original
CELLS: tuple[Cell, ...] = (
    _comb("INV_X1", 0.532, "A", "ZN", "!A"),
    _comb("BUF_X1", 0.798, "A", "Z", "A"),
    _comb("NAND2_X1", 0.798, "A1 A2", "ZN", "!(A1 & A2)"),
    _comb("NOR2_X1", 0.798, "A1 A2", "ZN", "!(A1 | A2)"),
    _comb("AND2_X1", 1.064, "A1 A2", "ZN", "(A1 & A2)"),
    _comb("OR2_X1", 1.064, "A1 A2", "ZN", "(A1 | A2)"),
    _comb("NAND3_X1", 1.064, "A1 A2 A3", "ZN", "!((A1 & A2) & A3)"),
    _comb("NOR3_X1", 1.064, "A1 A2 A3", "ZN", "!((A1 | A2) | A3)"),
    _comb("XOR2_X1", 1.596, "A B", "Z", "(A ^ B)"),
    _comb("XNOR2_X1", 1.596, "A B", "ZN", "!(A ^ B)"),
    _comb("AOI21_X1", 1.064, "A B1 B2", "ZN", "!(A | (B1 & B2))"),
    _comb("OAI21_X1", 1.064, "A B1 B2", "ZN", "!(A & (B1 | B2))"),
    _comb("AOI22_X1", 1.330, "A1 A2 B1 B2", "ZN", "!((A1 & A2) | (B1 & B2))"),
    _comb("OAI22_X1", 1.330, "A1 A2 B1 B2", "ZN", "!((A1 | A2) & (B1 | B2))"),
    _comb("MUX2_X1", 1.862, "A B S", "Z", "((S & B) | (A & !S))"),
    _dff("DFF_X1", 4.522, (), ""),
    _dff("DFFR_X1", 5.320, (("clear", "!RN"),), "RN"),
    _dff("DFFS_X1", 5.320, (("preset", "!SN"),), "SN"),
)

NAND2_AREA_UM2 = next(c.area for c in CELLS if c.name == "NAND2_X1")


def sram_area_um2(bits: int) -> float:
    """Estimated µm² of SRAM macros holding ``bits`` bits (bit cells / array efficiency)."""
    return bits * SRAM_BITCELL_UM2 / SRAM_ARRAY_EFFICIENCY


def technology() -> dict:
    """The constants of the model, for the report's JSON (units in the names)."""
    return {
        "liberty": LIBRARY_NAME,
        "liberty_source": SOURCE,
        "cell_area_um2": {c.name: c.area for c in CELLS},
        "transistors_per_nand2": TRANSISTORS_PER_NAND2,
        "sram_bitcell_um2": SRAM_BITCELL_UM2,
        "sram_bitcell_source": "Intel 45 nm HK+MG 6T cell, Mistry et al., IEDM 2007",
        "sram_array_efficiency": SRAM_ARRAY_EFFICIENCY,
        "sram_min_depth_words": SRAM_MIN_DEPTH,
        "sram_transistors_per_bit": SRAM_TRANSISTORS_PER_BIT,
        "asic_timing": {"node": ASIC_TIMING.node, "fo4_ps": ASIC_TIMING.fo4_ps,
                        "fo4_per_level": ASIC_TIMING.fo4_per_level,
                        "register_overhead_fo4": ASIC_TIMING.register_overhead_fo4,
                        "sources": dict(ASIC_TIMING.sources)},
    }


def liberty_text() -> str:
    """The Liberty file for :data:`CELLS` (area-only: no timing, power or load data)."""
    out = [
        "/* Area-only Liberty library written by the T3 project (flow/liberty.py).",
        f" * Cell areas (um^2): {SOURCE}.",
        " * Only areas, pins and functions: no timing, power or capacitance. Areas computed",
        " * with it are ESTIMATES of a 45 nm implementation before place and route.",
        " * Generated: do not edit; run `python -m flow.liberty` instead. */",
        f"library ({LIBRARY_NAME}) {{",
        "  delay_model : table_lookup;",
        '  time_unit : "1ns";',
        '  voltage_unit : "1V";',
        '  current_unit : "1mA";',
        "  capacitive_load_unit (1, ff);",
        '  pulling_resistance_unit : "1kohm";',
        '  leakage_power_unit : "1nW";',
    ]
    for c in CELLS:
        out.append(f"  cell ({c.name}) {{")
        out.append(f"    area : {c.area:.3f};")
        if c.ff:
            out.append("    ff (IQ, IQN) {")
            out.extend(f'      {k} : "{v}";' for k, v in c.ff)
            out.append("    }")
        for pin in c.inputs:
            clock = " clock : true;" if pin == c.clock else ""
            out.append(f"    pin ({pin}) {{ direction : input;{clock} }}")
        for pin, function in c.outputs:
            out.append(f'    pin ({pin}) {{ direction : output; function : "{function}"; }}')
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    LIBERTY_PATH.parent.mkdir(parents=True, exist_ok=True)
    LIBERTY_PATH.write_text(liberty_text())
    print(LIBERTY_PATH)
