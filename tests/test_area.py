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


def _fake(**kw) -> dict:
    """A fabricated design entry (no tool runs): every key, ok, routed unless told."""
    return {k: None for k in area.DESIGN_KEYS} | {
        "status": "ok", "fpga_status": "ok", "cached_steps": [], "method": "flat",
        "fmax_kind": "routed" if kw.get("fmax_mhz") is not None else "unknown",
        "depth_status": "ok" if kw.get("logic_depth") is not None else "not run: x"} | kw


def _unit_parts(**override) -> dict:
    """Every part of t3_unit routed (fmax 100 + i MHz, depth 10 + i), then ``override``."""
    parts = {p: _fake(cells=10, ecp5_lut4=5, fmax_mhz=100.0 + i, logic_depth=10 + i,
                       logic_depth_path=f"in{i} -> out{i}")
             for i, p in enumerate(area.COMPOSITES["t3_unit"].values())}
    for p, kw in override.items():
        parts[p] = parts[p] | kw
    return parts


def test_compose_sums_and_takes_the_slowest_routed_part():
    parts = _unit_parts(t3_tracker={"fmax_mhz": 42.0})
    u = area.compose("t3_unit", _fake(cells=3, ecp5_lut4=1, logic_depth=2), parts)
    assert u["cells"] == 3 + 10 * 5 and u["ecp5_lut4"] == 1 + 5 * 5
    assert (u["fmax_mhz"], u["fmax_kind"]) == (42.0, "routed")
    assert u["fmax_note"].startswith("slowest part t3_tracker")
    deepest = max(parts, key=lambda p: parts[p]["logic_depth"])
    assert u["logic_depth"] == parts[deepest]["logic_depth"] == 14
    assert u["logic_depth_path"] == f"{deepest}: in4 -> out4" and u["depth_status"] == "ok"
    assert u["asic_fmax_mhz_est"] == round(liberty.asic_fmax_mhz(14), 1)
    assert u["glue"]["logic_depth"] == 2
    parts["t3_dma"]["status"] = "error: boom"
    assert area.compose("t3_unit", _fake(cells=3), parts)["status"] == \
        "error: part t3_dma: error: boom"


@pytest.mark.parametrize("why", ["timed out: ecp5_synth: timed out after 600 s",
                                 "does not fit: 8388608 memory bits > 3833856 bits",
                                 "error: nextpnr: ERROR: boom"])
def test_part_without_fmax_makes_every_composite_unknown(why):
    """A part with no Fmax never lets a composite report the slowest of the others."""
    parts = _unit_parts(t3_tracker={"fmax_mhz": None, "fmax_kind": "unknown",
                                    "fmax_note": why, "fpga_status": why,
                                    "ecp5_lut4": None})
    glue = _fake(cells=3, ecp5_lut4=1, logic_depth=2)
    tt = area.compose("t3_track_trigger", glue, parts)
    u = area.compose("t3_unit", glue, parts)
    for c in (tt, u):
        assert c["fmax_mhz"] is None and c["fmax_kind"] == "unknown"
        assert c["fmax_note"] == f"part t3_tracker has no Fmax ({why})"
        assert c["fpga_status"] == f"partial: not placed: t3_tracker ({why})"
    # the Markdown says unknown and why, and no number stands in for it
    data = {"config": DEFAULT_CONFIG.to_dict(), "technology": liberty.technology(),
            "fpga": {"device": "LFE5U-85F", "package": "CABGA381", "freq_target_mhz": 100},
            "designs": {"t3_tracker": parts["t3_tracker"], "t3_dma": parts["t3_dma"],
                        "t3_unit": u},
            "tracker_storage": None, "context": None, "total_runtime_s": 0.0}
    md = area.to_markdown(data)
    row = next(line for line in md.splitlines() if line.startswith("| t3_unit |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[11:13] == ["unknown", "unknown"]
    others = min(parts[p]["fmax_mhz"] for p in area.COMPOSITES["t3_unit"].values()
                 if parts[p]["fmax_mhz"] is not None)
    assert f"{others:.1f}" not in row          # the slowest of the others does not stand in
    assert f"- `t3_unit`: Fmax unknown: part t3_tracker has no Fmax ({why})." in md


def test_estimated_part_makes_the_composite_estimated():
    note = "nextpnr's timing estimate after placement (routing did not finish within 300 s)"
    parts = _unit_parts(t3_csr={"fmax_mhz": 54.0, "fmax_kind": "estimated", "fmax_note": note})
    u = area.compose("t3_unit", _fake(cells=3, logic_depth=2), parts)
    assert (u["fmax_mhz"], u["fmax_kind"]) == (54.0, "estimated")
    assert "estimated: t3_csr" in u["fmax_note"]
    # a routed part slower than the estimated one still sets the number, not the kind
    parts["t3_dma"]["fmax_mhz"] = 20.0
    u = area.compose("t3_unit", _fake(cells=3, logic_depth=2), parts)
    assert (u["fmax_mhz"], u["fmax_kind"]) == (20.0, "estimated")


def test_part_without_depth_makes_the_composite_depth_unknown():
    parts = _unit_parts(t3_tracker={"logic_depth": None,
                                    "depth_status": "timed out: depth: timed out after 600 s"})
    u = area.compose("t3_unit", _fake(cells=3, logic_depth=50), parts)
    assert u["logic_depth"] is None and u["asic_fmax_mhz_est"] is None
    assert u["depth_status"] == \
        "unknown: t3_tracker: timed out: depth: timed out after 600 s"


@pytest.mark.parametrize("nextpnr,cells,kind,mhz,note", [
    ({"fmax_mhz": 88.04, "fmax_kind": "routed"}, 100, "routed", 88.0, None),
    ({"fmax_mhz": 13.61, "fmax_kind": "placed", "place_only": True}, 80_000, "estimated",
     13.6, "only placed: more than 40,000 generic cells"),
    ({"fmax_mhz": 54.0, "fmax_kind": "placed", "place_only": False}, 9_000, "estimated",
     54.0, "routing did not finish within 300 s"),
    ({"failed": "nextpnr: timed out after 600 s", "timed_out": True}, 100, "unknown", None,
     "timed out: nextpnr: timed out after 600 s"),
])
def test_flat_fmax_kind_and_note(nextpnr, cells, kind, mhz, note):
    """A flat design's Fmax status from fabricated step results (no tools run)."""
    results = {"synth": {"cells": cells, "seconds": 1.0},
               "depth": {"logic_depth": 7, "path_from": "a", "path_to": "r", "seconds": 0.1},
               "ecp5_synth": {"ecp5_lut4": 10, "seconds": 1.0},
               "nextpnr": {"seconds": 1.0, **nextpnr}}
    e = area._entry("t3_dma", results, [], fpga=True)
    assert (e["fmax_mhz"], e["fmax_kind"]) == (mhz, kind)
    assert (e["fmax_note"] is None) if note is None else (note in e["fmax_note"])
    assert (e["logic_depth"], e["logic_depth_path"]) == (7, "a -> r")
    assert e["asic_fmax_mhz_est"] == round(1e6 / ((7 + 3) * 45.0), 1)
    skipped = area._entry("t3_dma", results, [], fpga=False)
    assert (skipped["fmax_kind"], skipped["fmax_note"]) == ("unknown", "skipped (--no-fpga)")
    loop = area._entry("t3_dma", {**results, "depth": {"failed": "depth: combinational loop "
                                                                 "at x", "seconds": 0.1}},
                       [], fpga=True)
    assert loop["logic_depth"] is None and loop["asic_fmax_mhz_est"] is None
    assert loop["depth_status"] == "error: depth: combinational loop at x"
    assert loop["status"] == "ok"          # the area numbers stand


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
