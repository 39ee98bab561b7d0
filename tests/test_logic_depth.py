"""Logic depth (flow.eda.logic_depth, `ltp -noff` on the generic netlist) on toy designs
whose depth is known by construction, and the ASIC clock estimate built on it
(flow.liberty.ASIC_TIMING). Yosys runs here, on designs of a few dozen gates."""

from __future__ import annotations

from pathlib import Path

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from flow import eda, liberty
from flow.verilog import to_verilog

DOCS = Path(__file__).resolve().parent.parent / "docs" / "area.md"


def _three_levels(a, b, c, d):
    """((a & b) | c) ^ d: 3 levels of 2-input gates, and no fewer (no 2-level circuit of
    2-input gates or multiplexers computes it)."""
    return ((a & b) | c) ^ d


class _Toy(wiring.Component):
    """``y`` = :func:`_three_levels` of the input bits ``a[0..3]``, between the input and
    output registers of the FPGA wrapper: 3 levels. ``split``: ``(a0 & a1) | a2`` is
    registered first (2 levels), then XORed with ``a3`` (1 level): 2 levels."""

    def __init__(self, *, split: bool):
        self._split = split
        super().__init__({"a": In(4), "y": Out(1)})

    def elaborate(self, platform):
        m = Module()
        a = self.a
        if self._split:
            r = Signal()
            m.d.sync += r.eq((a[0] & a[1]) | a[2])
            m.d.comb += self.y.eq(r ^ a[3])
        else:
            m.d.comb += self.y.eq(_three_levels(a[0], a[1], a[2], a[3]))
        return m


class _RamToy(wiring.Component):
    """A 64 x 4 memory (an SRAM macro: >= 32 words) read combinationally at ``addr ^ key``
    (1 level); ``y`` = :func:`_three_levels` of the word read (3 levels). Through the
    macro the path would be 1 + 1 + 3 = 5 cells; with the macro as a path end it is 3."""

    def __init__(self):
        super().__init__({"addr": In(6), "key": In(6), "wdata": In(4), "we": In(1),
                          "y": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=4, depth=64, init=[])
        wp, rp = mem.write_port(), mem.read_port(domain="comb")
        q = rp.data
        m.d.comb += [wp.addr.eq(self.addr), wp.data.eq(self.wdata), wp.en.eq(self.we),
                     rp.addr.eq(self.addr ^ self.key),
                     self.y.eq(_three_levels(q[0], q[1], q[2], q[3]))]
        return m


def _depth(tmp: Path, name: str, component) -> dict:
    v = tmp / f"{name}.v"
    v.write_text(to_verilog(component, name))
    eda.generic_synth(v, name, tmp, sram_min_depth=liberty.SRAM_MIN_DEPTH)
    return eda.logic_depth(name, tmp)


@pytest.mark.parametrize("split,levels,ends", [(False, 3, "y"), (True, 2, "r")])
def test_registers_end_a_path(tmp_path, split, levels, ends):
    d = _depth(tmp_path, f"toy_{int(split)}", _Toy(split=split))
    assert d["logic_depth"] == levels and d["loops"] == []
    assert d["seconds"] >= 0 and (tmp_path / "depth.txt").exists()
    # from an input bit (a register in the FPGA wrapper) to the output or to register r
    assert d["path_from"].startswith("a [") and d["path_to"].startswith(ends)


def test_sram_macro_is_a_path_end(tmp_path):
    d = _depth(tmp_path, "toy_ram", _RamToy())
    assert d["logic_depth"] == 3


_LTP_LOG = """
2. Executing LTP pass (find longest path).
Warning: Detected loop at \\w1 in \\loopy
Warning: Detected loop at \\w2 in \\loopy

Longest topological path in \\loopy (length=2):
    0: \\a
    1: \\w1 (via $and$x.v:1$1)
    2: \\y [0] (via $or$x.v:1$2)
"""


def test_parse_ltp_reads_depth_path_and_loops():
    r = eda.parse_ltp(_LTP_LOG)
    assert r == {"logic_depth": 2, "path_from": "a", "path_to": "y [0]",
                 "loops": ["\\w1", "\\w2"]}
    with pytest.raises(eda.EdaError, match="no longest path"):
        eda.parse_ltp("nothing")


def test_combinational_loop_is_an_error(tmp_path):
    (tmp_path / "loopy.v").write_text(
        "module loopy(input [1:0] a, output y);\n"
        "  wire w1, w2;\n"
        "  assign w1 = a[0] ^ w2;\n"
        "  assign w2 = w1 ^ a[1];\n"
        "  assign y = w2;\n"
        "endmodule\n")
    eda.generic_synth(tmp_path / "loopy.v", "loopy", tmp_path, sram_min_depth=32)
    with pytest.raises(eda.EdaError, match="combinational loop"):
        eda.logic_depth("loopy", tmp_path)


def test_asic_clock_from_levels():
    t = liberty.ASIC_TIMING
    # 90 nm, 45 ps per FO4, 1 FO4 per level, 3 FO4 of register overhead (docs/area.md):
    # 17 levels -> 20 FO4 -> 900 ps -> 1111.1 MHz
    assert (t.fo4_ps, t.fo4_per_level, t.register_overhead_fo4) == (45.0, 1.0, 3.0)
    assert liberty.asic_fmax_mhz(17) == pytest.approx(1e6 / 900)
    assert liberty.asic_fmax_mhz(0) == pytest.approx(1e6 / 135)
    assert liberty.asic_fmax_mhz(40) < liberty.asic_fmax_mhz(39)
    for bad in (-1, 2.5, True, None):
        with pytest.raises(ValueError, match="levels"):
            liberty.asic_fmax_mhz(bad)
    with pytest.raises(ValueError, match="fo4_ps"):
        liberty.AsicTiming(node="x", fo4_ps=0, fo4_per_level=1, register_overhead_fo4=3,
                           sources=())
    tech = liberty.technology()["asic_timing"]
    assert tech["node"] == t.node and tech["fo4_ps"] == t.fo4_ps
    assert set(tech["sources"]) == {"fo4_ps", "fo4_per_level", "register_overhead_fo4"}


def test_docs_cite_the_asic_constants():
    text = DOCS.read_text()
    t = liberty.ASIC_TIMING
    assert t.node in text and f"{t.fo4_ps:g} ps" in text
    assert "acronyms.thefreedictionary.com/FO4" in text and "ltp -noff" in text
