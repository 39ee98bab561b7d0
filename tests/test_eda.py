"""flow.eda: every step runs the real tools on a tiny Amaranth design whose numbers are
known by construction (register bits, memory size, port widths), and the parsers read
the tools' real output."""

from __future__ import annotations

from pathlib import Path

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from flow.verilog import to_verilog
from flow import eda, liberty


class _Tiny(wiring.Component):
    """``y`` = registered ``a + b`` (``width`` flip-flops); with ``depth``, a
    ``depth`` x ``width`` memory written with ``y`` and read at ``addr``."""

    def __init__(self, *, width: int, depth: int = 0):
        self._w, self._depth = width, depth
        ports = {"a": In(width), "b": In(width), "y": Out(width)}
        if depth:
            ports |= {"addr": In(range(depth)), "we": In(1), "q": Out(width)}
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        r = Signal(self._w)
        m.d.sync += r.eq(self.a + self.b)
        m.d.comb += self.y.eq(r)
        if self._depth:
            m.submodules.mem = mem = Memory(shape=self._w, depth=self._depth, init=[])
            wp, rp = mem.write_port(), mem.read_port()
            m.d.comb += [wp.addr.eq(self.addr), wp.data.eq(r), wp.en.eq(self.we),
                         rp.addr.eq(self.addr), self.q.eq(rp.data)]
        return m


def _verilog(tmp: Path, name: str, **kw) -> Path:
    path = tmp / f"{name}.v"
    path.write_text(to_verilog(_Tiny(**kw), name))
    return path


@pytest.fixture(scope="module")
def regs(tmp_path_factory):
    """The register-only design through the three ASIC-style steps."""
    work = tmp_path_factory.mktemp("regs")
    v = _verilog(work, "tiny_regs", width=8)
    gen = eda.generic_synth(v, "tiny_regs", work, sram_min_depth=32)
    cmos = eda.cmos_transistors("tiny_regs", work)
    lib = eda.liberty_area("tiny_regs", work, liberty.LIBERTY_PATH)
    return work, v, gen, cmos, lib


def test_ports_from_generated_verilog(tmp_path):
    v = _verilog(tmp_path, "tiny_ports", width=12, depth=64)
    ports = {p.name: (p.direction, p.width) for p in eda.verilog_ports(v.read_text(), "tiny_ports")}
    assert ports == {"clk": ("input", 1), "rst": ("input", 1), "a": ("input", 12),
                     "b": ("input", 12), "addr": ("input", 6), "we": ("input", 1),
                     "y": ("output", 12), "q": ("output", 12)}
    with pytest.raises(eda.EdaError, match="not found"):
        eda.verilog_ports(v.read_text(), "no_such_module")


def test_generic_counts_registers(regs):
    _, _, gen, _, _ = regs
    assert gen["flip_flops"] == 8            # the 8-bit register, nothing else
    assert gen["memory_bits"] == gen["sram_bits"] == gen["sram_macros"] == 0
    assert gen["cells"] > gen["flip_flops"]  # plus the adder
    assert gen["cells"] == sum(gen["cells_by_type"].values())


def test_transistors_include_flip_flops(regs):
    _, _, gen, cmos, _ = regs
    # a static CMOS D flip-flop is 16 transistors in Yosys' count; the adder adds more
    assert cmos["transistors"] > 16 * gen["flip_flops"]


def test_liberty_area_uses_only_library_cells(regs):
    _, _, gen, _, lib = regs
    areas = {c.name: c.area for c in liberty.CELLS}
    assert set(lib["liberty_cells"]) <= set(areas)
    assert lib["area_um2_est"] == pytest.approx(
        sum(areas[c] * n for c, n in lib["liberty_cells"].items()), rel=1e-6)
    ffs = sum(n for c, n in lib["liberty_cells"].items() if c.startswith("DFF"))
    assert ffs == gen["flip_flops"]
    assert 0 < lib["sequential_area_um2_est"] < lib["area_um2_est"]


def test_stat_json_parser_on_real_output(regs):
    work, _, gen, cmos, lib = regs
    st = eda.parse_stat_json((work / "generic.json").read_text())
    assert st["tiny_regs"].cells == gen["cells"] and st["design"].cells == gen["cells"]
    st = eda.parse_stat_json((work / "cmos.json").read_text())["tiny_regs"]
    assert (st.transistors, st.transistors_exact) == (cmos["transistors"], True)
    st = eda.parse_stat_json((work / "liberty.json").read_text())["tiny_regs"]
    assert st.area == pytest.approx(lib["area_um2_est"])
    with pytest.raises(eda.EdaError, match="unreadable"):
        eda.parse_stat_json("Warning: nothing here\n")


@pytest.mark.parametrize("depth,is_sram", [(64, True), (16, False)])
def test_memories_sram_or_flip_flops(tmp_path, depth, is_sram):
    name = f"tiny_mem{depth}"
    v = _verilog(tmp_path, name, width=8, depth=depth)
    gen = eda.generic_synth(v, name, tmp_path, sram_min_depth=32)
    assert gen["memory_bits"] == 8 * depth
    if is_sram:
        assert (gen["sram_bits"], gen["sram_macros"]) == (8 * depth, 1)
        assert gen["flip_flops"] == 8        # only the register: the array is a macro
        # the SRAM black box is unknown to `stat -tech cmos`: it says "N+"
        eda.cmos_transistors(name, tmp_path)
        st = eda.parse_stat_json((tmp_path / "cmos.json").read_text())[name]
        assert not st.transistors_exact
    else:
        assert gen["sram_bits"] == 0
        assert gen["flip_flops"] >= 8 + 8 * depth   # the array became flip-flops


def test_ecp5_and_nextpnr(regs):
    work, v, gen, _, _ = regs
    ecp5 = eda.ecp5_synth(v, "tiny_regs", work)
    assert ecp5["ecp5_ff"] == gen["flip_flops"]   # the block's own, not the wrapper's
    assert ecp5["ecp5_lut4"] >= 1 and ecp5["ecp5_bram"] == 0
    pnr = eda.nextpnr_ecp5(work)
    assert 10 < pnr["fmax_mhz"] < 1000
    assert pnr["utilization"]["TRELLIS_IO"][0] == 4          # clk, rst, si, so
    log_fmax = eda.parse_nextpnr_fmax_log((work / "nextpnr.log").read_text())
    assert log_fmax and min(log_fmax.values()) == pytest.approx(pnr["fmax_mhz"], abs=0.01)
    report = eda.parse_nextpnr_report((work / "nextpnr.json").read_text())
    assert report["fmax_mhz"] == pnr["fmax_mhz"] and pnr["fmax_kind"] == "routed"
    # placement only (large designs): nextpnr's estimate, same utilisation
    placed = eda.nextpnr_ecp5(work, place_only=True)
    assert placed["fmax_kind"] == "placed" and 10 < placed["fmax_mhz"] < 1000
    assert placed["utilization"]["TRELLIS_IO"][0] == 4


# The shape of nextpnr-ecp5's log (lines from a real run of the register block that was
# stopped while routing): utilisation table, post-placement timing, then routing.
_STOPPED_LOG = """Info: Device utilisation:
Info: \t          TRELLIS_IO:       4/    365     1%
Info: \t          TRELLIS_FF:    6155/  83640     7%
Info: \t        TRELLIS_COMB:    5436/  83640     6%
Info: Max frequency for clock '$glbnet$clk$TRELLIS_IO_IN': 52.78 MHz (FAIL at 100.00 MHz)
Info: Routing globals...
Info: Routing..
Info:      79000 |    30775      47931 |  376   624 |     10575|       1.59      91.00|
"""


def test_placement_estimate_from_a_run_stopped_while_routing(tmp_path, monkeypatch):
    est = eda.placement_estimate(_STOPPED_LOG)
    assert est == {"fmax_mhz": 52.78, "fmax_kind": "placed",
                   "utilization": {"TRELLIS_IO": (4, 365), "TRELLIS_FF": (6155, 83640),
                                   "TRELLIS_COMB": (5436, 83640)}}
    # stopped before placement finished: no estimate, the timeout stands
    assert eda.placement_estimate(_STOPPED_LOG.split("Info: Max")[0]) is None
    # a report after routing is not mistaken for a placement estimate (nothing after it)
    assert eda.placement_estimate(_STOPPED_LOG.replace("Info: Routing", "Info: Placing")) is None

    def stopped(cmd, workdir, step, timeout_s):
        raise eda.EdaTimeout(f"{step}: timed out after {timeout_s:.0f} s", _STOPPED_LOG, timeout_s)

    monkeypatch.setattr(eda, "_run", stopped)
    r = eda.nextpnr_ecp5(tmp_path, timeout_s=7)
    assert r["fmax_mhz"] == 52.78 and r["fmax_kind"] == "placed" and r["seconds"] == 7

    def early(cmd, workdir, step, timeout_s):
        raise eda.EdaTimeout(f"{step}: timed out after {timeout_s:.0f} s", "Info: Placing..", 7)

    monkeypatch.setattr(eda, "_run", early)
    with pytest.raises(eda.EdaTimeout, match="timed out after 7 s"):
        eda.nextpnr_ecp5(tmp_path, timeout_s=7)


def test_wrapper_keeps_every_port():
    ports = [eda.Port("clk", "input", 1), eda.Port("rst", "input", 1),
             eda.Port("a", "input", 300), eda.Port("y", "output", 37)]
    text = eda.fpga_wrapper("blk", ports)
    assert ".a(sh[299:0])" in text and ".y(y[36:0])" in text and ".rst(rst_q)" in text
    # 37 -> 10 -> 3 -> 1 bits: three registered XOR levels
    assert "reg [9:0] l1" in text and "reg [2:0] l2" in text and "reg [0:0] l3" in text


def test_does_not_fit_is_reported_not_raised_as_crash():
    small = eda.Ecp5Device("tiny", "--25k", "CABGA381", luts=10, ffs=10, dp16kd=0, mult18=0)
    with pytest.raises(eda.DoesNotFit, match="does not fit: 11 LUT4 > 10"):
        eda.check_fits(small, {"ecp5_lut4": 11, "ecp5_ff": 1})
    eda.check_fits(small, {"ecp5_lut4": 10, "ecp5_ff": 10})


def test_tool_error_is_one_line(tmp_path):
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input a, output y); assign y = ; endmodule\n")
    with pytest.raises(eda.EdaError) as e:
        eda.generic_synth(bad, "bad", tmp_path, sram_min_depth=32)
    assert "\n" not in str(e.value) and "synth" in str(e.value)
    assert (tmp_path / "synth.log").exists()


def test_checked_in_liberty_is_generated():
    assert liberty.LIBERTY_PATH.read_text() == liberty.liberty_text(), \
        "flow/data/t3_area.lib is stale: run `python -m flow.liberty`"
    assert liberty.sram_area_um2(1000) == pytest.approx(1000 * 0.346 / 0.5)


def test_docs_list_the_library_cells():
    docs = (Path(__file__).resolve().parent.parent / "docs" / "area.md").read_text()
    for c in liberty.CELLS:
        assert f"| {c.name} | {c.area:.3f} |" in docs, c.name
