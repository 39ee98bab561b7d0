"""flow.area and `t3 report area`: the flow on real blocks, the cache, the direction of
change with the configuration, the JSON schema (as documented), and CLI errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hw.designs import load_all
from contract.spec import DEFAULT_CONFIG, T3Config
from flow import area, liberty
from t3.cli import main

DOCS = Path(__file__).resolve().parent.parent / "docs" / "area.md"

#: a small configuration for the growth test (short lines, one region and short ids keep
#: the tracker small; only tracker_entries differs between the two points)
SMALL = dict(line_bytes=4, regions=1, wf_outer_bits=2, wf_inner_bits=2, count_bits=4,
             dma_queue_depth=2, mem_depth_lines=64)


def _measure(name: str, cfg: T3Config, root: Path, *, fpga: bool = False, log=None) -> dict:
    return area.measure_design(name, load_all()[name], cfg, fpga=fpga, cache_root=root,
                               progress=(log.append if log is not None else lambda s: None))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("area_cache")


@pytest.fixture(scope="module")
def fp16(cache) -> dict:
    return _measure("t3_float_adder_fp16", DEFAULT_CONFIG, cache, fpga=True)


def test_float_adder_full_flow(fp16):
    d = fp16
    assert list(d) == list(area.DESIGN_KEYS)
    assert d["status"] == "ok" and d["fpga_status"] == "ok", d
    assert d["memory_bits"] == d["sram_bits"] == 0
    assert d["nand2_eq"] == round(d["transistors"] / 4)
    assert d["total_area_um2_est"] == pytest.approx(d["area_um2_est"])
    # the adder's pipeline registers are flip-flops in both technologies
    assert d["flip_flops"] > 0 and d["ecp5_ff"] == d["flip_flops"]
    assert d["ecp5_lut4"] > 0 and 1 < d["fmax_mhz"] < 1000
    assert set(d["runtime_s"]) == set(area.STEPS) and all(
        v is not None and v >= 0 for v in d["runtime_s"].values())


def test_rerun_reuses_the_cache(cache, fp16):
    log: list[str] = []
    again = _measure("t3_float_adder_fp16", DEFAULT_CONFIG, cache, fpga=True, log=log)
    assert again["cached_steps"] == list(area.STEPS)
    assert all("(cached" in line for line in log) and len(log) == len(area.STEPS)
    numbers = [k for k in area.DESIGN_KEYS if k not in ("cached_steps",)]
    assert {k: again[k] for k in numbers} == {k: fp16[k] for k in numbers}
    # another configuration is another cache entry
    other = DEFAULT_CONFIG.replace(fp_adder_stages=3)
    assert area.cache_key("t3_float_adder_fp16", other, device=area.eda.ECP5_85K, freq_mhz=100) \
        != area.cache_key("t3_float_adder_fp16", DEFAULT_CONFIG, device=area.eda.ECP5_85K,
                          freq_mhz=100)


def test_fp32_adder_is_bigger_than_fp16(cache, fp16):
    fp32 = _measure("t3_float_adder_fp32", DEFAULT_CONFIG, cache)
    for k in ("cells", "flip_flops", "transistors", "area_um2_est"):
        assert fp32[k] > fp16[k], k
    assert fp32["fpga_status"] == "skipped (--no-fpga)" and fp32["ecp5_lut4"] is None


def test_tracker_grows_with_entries(cache):
    small = _measure("t3_tracker", T3Config(tracker_entries=2, **SMALL), cache)
    big = _measure("t3_tracker", T3Config(tracker_entries=16, **SMALL), cache)
    assert small["status"] == big["status"] == "ok", (small["status"], big["status"])
    for k in ("flip_flops", "transistors", "area_um2_est"):
        assert big[k] > small[k], k
    # each added entry holds at least its table state in flip-flops
    entry_bits = area.tracker_storage(T3Config(tracker_entries=2, **SMALL))["storage_bits"] // 2
    assert big["flip_flops"] - small["flip_flops"] >= 14 * entry_bits


def test_broken_design_is_an_entry_not_a_crash(cache):
    def broken(cfg):
        raise RuntimeError("elaboration exploded\nsecond line")
    d = area.measure_design("t3_broken", broken, DEFAULT_CONFIG, cache_root=cache,
                            progress=lambda s: None)
    assert d["status"] == "error: RuntimeError: elaboration exploded second line"
    assert d["cells"] is None and d["fpga_status"] == "error: no Verilog"


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("cfg", [DEFAULT_CONFIG, T3Config(tracker_entries=2, **SMALL),
                                 DEFAULT_CONFIG.replace(count_bits=7, tracker_entries=16)])
def test_tracker_storage_bits_is_the_tables_property(cfg):
    """flow computes the table's storage from the configuration; the component's own
    property (built here only to be read) must agree."""
    from hw.tracker import TrackerTable
    assert area.tracker_storage_bits(cfg) == TrackerTable(cfg=cfg).storage_bits


def test_context_and_tracker_storage():
    ts = area.tracker_storage(DEFAULT_CONFIG)
    assert ts is not None and ts["entries"] == 256 and ts["paper_storage_kb"] == 19
    assert ts["storage_kib"] == pytest.approx(ts["storage_bits"] / 8192, abs=0.01)
    fake = {k: None for k in area.DESIGN_KEYS} | {"status": "ok", "transistors": 1000,
                                                   "sram_bits": 100, "area_um2_est": 50.0}
    ctx = area.unit_context({"t3_track_trigger": fake, "t3_tracker": fake, "t3_link": fake,
                             "t3_compute_memory": fake})
    # the link is a model and the tracker is inside t3_track_trigger (both left out);
    # the compute memory's SRAM stands for DRAM
    assert ctx["basis"] == "sum of blocks: t3_track_trigger, t3_compute_memory"
    assert ctx["transistors"] == 2000 + 100 * liberty.SRAM_TRANSISTORS_PER_BIT
    assert ctx["fraction_of_gpu_transistors"] == pytest.approx(ctx["transistors"] / 54.2e9)


def test_cli_json_schema_matches_docs(tmp_path, capsys):
    rc = main(["report", "area", "--no-fpga", "--design", "t3_float_adder_bf16",
               "--out", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "t3_float_adder_bf16: synth" in out            # progress, one line per step
    data = json.loads((tmp_path / "area.json").read_text())
    assert list(data) == list(area.TOP_KEYS) and data["schema"] == area.SCHEMA_ID
    assert list(data["designs"]["t3_float_adder_bf16"]) == list(area.DESIGN_KEYS)
    md = (tmp_path / "area.md").read_text()
    assert "| t3_float_adder_bf16 |" in md
    from t3.cmd_report import VERILOG_DIR
    assert "module t3_float_adder_bf16" in (VERILOG_DIR / "t3_float_adder_bf16.v").read_text()
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", DOCS.read_text(), re.M))
    assert set(area.DESIGN_KEYS) | set(area.TOP_KEYS) <= documented


@pytest.mark.parametrize("text", [None, "[t3]\ntracker_entries = 0\n", "[t3\n",
                                  "[t3]\nentries = 4\n"])
def test_bad_config_is_one_line_exit_2(tmp_path, capsys, text):
    path = tmp_path / "bad.toml"
    if text is not None:
        path.write_text(text)
    rc = main(["report", "area", "--config", str(path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("t3 report: error: ") and err.count("\n") == 1, err
    assert str(path) in err
    assert not (tmp_path / "o").exists()               # failed before any work


def test_unknown_design_is_a_usage_error(capsys):
    assert main(["report", "area", "--design", "nope"]) == 2
    assert "--design 'nope': unknown" in capsys.readouterr().err


def test_full_report_assembles_the_parts(tmp_path, monkeypatch, capsys):
    from t3 import cmd_report

    def fake_run(args, cfg, label):
        return {"answer": cfg.tracker_entries}, f"## fake ({label})\n", True
    monkeypatch.setattr(cmd_report, "PARTS", {
        "fake": cmd_report.Part("fake", "a stand-in part", lambda p: None, fake_run)})
    cfgfile = tmp_path / "c.toml"
    cfgfile.write_text("[t3]\ntracker_entries = 128\n")
    assert main(["report", "--out", str(tmp_path / "r"), "--config", str(cfgfile)]) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["schema"] == "t3-report/1" and report["fake"] == {"answer": 128}
    assert report["config"]["tracker_entries"] == 128
    assert f"## fake (--config {cfgfile})" in (tmp_path / "r" / "report.md").read_text()
    assert json.loads((tmp_path / "r" / "fake.json").read_text()) == {"answer": 128}


def test_composite_is_glue_plus_parts(cache):
    """t3_track_trigger bottom-up: the glue is measured with the four sub-blocks as black
    boxes (so it is far smaller than they are) and every summed key adds up."""
    cfg = T3Config(tracker_entries=2, **SMALL)
    data = area.collect(cfg, ["t3_track_trigger"], fpga=False, cache_root=cache,
                        progress=lambda s: None)
    parts = area.COMPOSITES["t3_track_trigger"].values()
    assert list(data["designs"]) == [*parts, "t3_track_trigger"]
    tt = data["designs"]["t3_track_trigger"]
    assert tt["status"] == "ok" and tt["method"] == "bottom-up" and tt["parts"] == list(parts)
    glue = tt["glue"]
    assert 0 < glue["cells"] < data["designs"]["t3_tracker"]["cells"]
    for k in ("cells", "flip_flops", "transistors", "memory_bits"):
        assert tt[k] == glue[k] + sum(data["designs"][p][k] for p in parts), k
    assert data["designs"]["t3_tracker"]["method"] == "flat"


def test_compose_fpga_partial_and_slowest_part():
    def entry(**kw):
        return {k: None for k in area.DESIGN_KEYS} | {"status": "ok", "fpga_status": "ok",
                                                       "cached_steps": []} | kw
    parts = {p: entry(cells=10, ecp5_lut4=5, fmax_mhz=100.0 + i)
             for i, p in enumerate(area.COMPOSITES["t3_unit"].values())}
    parts["t3_compute_memory"] = entry(cells=10, fpga_status="does not fit: 8 Mbit")
    parts["t3_tracker"]["fmax_mhz"] = 42.0
    u = area.compose("t3_unit", entry(cells=3, ecp5_lut4=1), parts)
    assert u["cells"] == 3 + 10 * 5 and u["ecp5_lut4"] == 1 + 5 * 4
    assert u["fmax_mhz"] == 42.0
    assert u["fpga_status"] == "partial: not placed: t3_compute_memory (does not fit: 8 Mbit)"
    parts["t3_dma"]["status"] = "error: boom"
    assert area.compose("t3_unit", entry(cells=3), parts)["status"] == "error: part t3_dma: error: boom"


def test_fpga_flow_skipped_above_the_cell_limit(cache, fp16):
    """A design above fpga_max_cells gets no FPGA numbers unless they are cached."""
    d = area.measure_design("t3_float_adder_bf16", load_all()["t3_float_adder_bf16"],
                            DEFAULT_CONFIG, fpga=True, cache_root=cache, fpga_max_cells=10,
                            progress=lambda s: None)
    assert d["status"] == "ok" and d["cells"] > 10
    assert d["fpga_status"].startswith(f"skipped: {d['cells']:,} generic cells > fpga_max_cells 10")
    assert d["ecp5_lut4"] is None and d["fmax_mhz"] is None
    # a cached FPGA result is used whatever the limit (fp16 ran its whole flow above)
    again = _measure("t3_float_adder_fp16", DEFAULT_CONFIG, cache, fpga=True)
    limited = area.measure_design("t3_float_adder_fp16", load_all()["t3_float_adder_fp16"],
                                  DEFAULT_CONFIG, fpga=True, cache_root=cache,
                                  fpga_max_cells=10, progress=lambda s: None)
    assert limited["fmax_mhz"] == again["fmax_mhz"] is not None
