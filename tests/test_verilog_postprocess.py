"""flow.verilog's post-processing of Amaranth's Verilog: all-zero memory contents as a
loop (other contents kept word by word; the synthesis flow strips both forms), and
identical modules merged. (Simulation semantics are covered by the cocotb suites, which
all run this Verilog: e.g. verif/tb_nmc.py's zero_init test reads a fresh memory.)"""

import re

from amaranth.hdl import Cat, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from flow.lint import lint
from hw.nmc import ComputeMemory
from hw.fp import FloatAdder
from flow.verilog import dedupe_modules, strip_zero_memory_init, to_verilog
from contract.spec import T3Config

from tests.two_memories import TwoMemories


def test_zero_memory_becomes_one_loop_and_rom_keeps_its_words(tmp_path):
    text = to_verilog(TwoMemories(), "two")
    loops = re.findall(r"initial for \((t3_zero_init_\d+) = 0; \1 <= 7; \1 = \1 \+ 1\) "
                       r"(\S+)\[\1\] = 8'h0;", text)
    assert [mem for _, mem in loops] == ["zero"], text
    assert "rom[0] = 8'h03;" in text and "rom[5] = 8'h09;" in text
    assert "zero[0] =" not in text
    path = tmp_path / "two.v"
    path.write_text(text)
    ok, log = lint(path, "two")
    assert ok, log


def test_compute_memory_has_no_per_word_initialiser():
    cfg = T3Config(mem_depth_lines=4096, line_bytes=16)
    text = to_verilog(ComputeMemory(cfg=cfg), "cm")
    assert f"<= {cfg.mem_depth_lines - 1};" in text
    assert not re.search(r"storage\[\d+\] = ", text)
    assert len(text.splitlines()) < 20000


def test_strip_removes_both_zero_forms_and_keeps_rom():
    text = to_verilog(TwoMemories(), "two")
    yosys_form = ("  initial begin\n    zero2[0] = 8'h00;\n    zero2[1] = 8'h00;\n  end\n")
    stripped = strip_zero_memory_init(text + yosys_form)
    assert "t3_zero_init" not in stripped and "zero2[0]" not in stripped
    assert "rom[0] = 8'h03;" in stripped


class _ThreeAdders(wiring.Component):
    """Three identical FloatAdders and one of another format."""
    a: In(16)
    b: In(16)
    valid: In(1)
    q: Out(16 * 3 + 32)

    def elaborate(self, platform):
        m = Module()
        outs = []
        for i in range(3):
            m.submodules[f"add{i}"] = add = FloatAdder(fmt="fp16", stages=2)
            m.d.comb += [add.a.eq(self.a + i), add.b.eq(self.b), add.valid.eq(self.valid)]
            outs.append(add.result)
        m.submodules.wide = wide = FloatAdder(fmt="fp32", stages=2)
        m.d.comb += [wide.a.eq(self.a), wide.b.eq(self.b), wide.valid.eq(self.valid)]
        m.d.comb += self.q.eq(Cat(*outs, wide.result))
        return m


def _modules(text):
    return re.findall(r"^module (\S+?) ?\(", text, re.M)


def test_identical_modules_are_written_once(tmp_path):
    from amaranth.back import verilog
    raw = verilog.convert(_ThreeAdders(), name="three", emit_src=False)
    text = to_verilog(_ThreeAdders(), "three")
    assert len(_modules(text)) == len(_modules(raw)) - 2          # add1 and add2 merged
    mods = _modules(text)
    adders = [m for m in mods if ".add" in m]
    assert len(adders) == 1 and len([m for m in mods if ".wide" in m]) == 1, mods
    # every instance keeps its name and uses the kept module, which is not inlined
    for i in range(3):
        assert re.search(rf"^  {re.escape(adders[0])} +add{i} \($", text, re.M), i
    assert text.count("/* verilator no_inline_module */") == 1
    path = tmp_path / "three.v"
    path.write_text(text)
    ok, log = lint(path, "three")
    assert ok, log


def test_modules_that_differ_are_kept():
    text = to_verilog(TwoMemories(), "two")
    assert dedupe_modules(text) == text


class _ConstantChoice(wiring.Component):
    """A combinational priority choice whose inputs never change after time 0 (the
    shape of the tracker's victim way and of the DRAM controller's start-up logic)."""
    a: In(4)
    y: Out(2)

    def elaborate(self, platform):
        m = Module()
        way = self.y
        m.d.comb += way.eq(1)
        for w in reversed(range(4)):
            with m.If(~self.a[w]):
                m.d.comb += way.eq(w)
        return m


_PROBE_TB = """
module tb; reg [3:0] a = 4'b0000; wire [1:0] y;
probe dut(.a(a), .y(y));
initial begin #1 $display("y=%b", y); $finish; end
endmodule
"""


def _icarus_y(text: str, tmp_path) -> str:
    import subprocess
    (tmp_path / "probe.v").write_text(text)
    (tmp_path / "tb.v").write_text(_PROBE_TB)
    subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "sim"), str(tmp_path / "tb.v"),
                    str(tmp_path / "probe.v")], check=True)
    out = subprocess.run(["vvp", "-n", str(tmp_path / "sim")], check=True, capture_output=True,
                         text=True).stdout
    return re.search(r"y=(\S+)", out).group(1)


def test_combinational_blocks_run_at_time_zero_in_icarus(tmp_path):
    """Yosys' time-0 trigger, declared with an initialiser, wakes nothing in Icarus: a
    combinational block whose inputs never change stays X. to_verilog sets it in an
    initial statement instead, and the block computes its value (0: every bit of a is
    0, the lowest way wins)."""
    from amaranth.back import verilog
    raw = verilog.convert(_ConstantChoice(), name="probe", emit_src=False)
    assert _icarus_y(raw, tmp_path) == "xx"        # the problem, as Yosys writes it
    fixed = to_verilog(_ConstantChoice(), "probe")
    assert "initial \\$auto$verilog_backend" in fixed and " = 0;\n" in fixed
    assert _icarus_y(fixed, tmp_path) == "00"
    ok, log = lint(tmp_path / "probe.v", "probe")
    assert ok, log
