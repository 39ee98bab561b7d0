"""The throughput and model parts of `t3 report`: real runs (Icarus ring, system model),
JSON keys, and that the Markdown numbers are the JSON's."""

import json

import pytest

from contract.spec import T3Config
from t3.cli import main


@pytest.mark.cocotb
@pytest.mark.xdist_group("ring-icarus")     # shares the suite's 2-device DRAM ring build
def test_throughput_part_runs_the_ring_and_reports_its_numbers(tmp_path):
    """The throughput part's runs (baseline, T3 plain, T3-MCA at a low and a high GEMM
    intensity, DRAM memory, closed-loop GEMM) on a 2-device ring under Icarus: JSON keys,
    Markdown numbers = JSON numbers, the counters' relations."""
    from verif.report_parts import THROUGHPUT_KEYS, representative_intensities, throughput
    from verif.test_ring import DRAM_DEVICES, ring_profile
    ring = {**ring_profile(DRAM_DEVICES, "fp32"), "wg_cycles": 64, "k_steps": 2}
    data, md, ok = throughput(T3Config(), sim="icarus", workdir=tmp_path, devices=DRAM_DEVICES,
                              ring=ring, progress=lambda _: None)
    assert list(data) == list(THROUGHPUT_KEYS)
    levels = representative_intensities()
    assert data["intensities"] == levels and 0 < levels["low"] < levels["high"] < 1
    # which schedule wins is the report's finding, not a property of this small ring (fast
    # links); the numbers must be consistent and the verdict must say what they say
    for level in ("low", "high"):
        cyc = data["cycles"][level]
        assert all(c > 0 for c in cyc.values()), (level, cyc)
        assert data["speedup"][level]["t3_mca"] == pytest.approx(cyc["baseline"] / cyc["t3_mca"])
        assert data["plain_vs_mca"][level]["plain_slower_by"] == \
            pytest.approx(cyc["t3_plain"] / cyc["t3_mca"] - 1)
        assert f"| {cyc['baseline']} | {cyc['t3_plain']} | {cyc['t3_mca']} |" in md
    assert ok == all(data["cycles"][lv]["t3_mca"] < data["cycles"][lv]["baseline"]
                     for lv in ("low", "high"))
    assert set(data["block_rates"]["nmc"]) == {"fp16", "bf16", "fp32"}
    from contract import latency
    assert data["block_rates"]["trigger_latency_cycles"] == latency.TRIGGER
    for r in data["devices_t3_mca"]:      # hardware counters / cycles, and TRACKER_PEAK
        assert 1 <= r["tracker_peak_occupancy"] <= data["scenario"]["tracker_entries"], r
        rpc = r["requests_per_cycle"]
        assert 0 < rpc["tracker"] <= rpc["memory"] <= 1, r
        mm = r["memory"]
        assert 0 < mm["row_hit_ratio"] < 1 and mm["mca_measured"], r
        assert f"| {r['tracker_peak_occupancy']} |" in md


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("cfg", [T3Config(), T3Config(fp_adder_stages=4, line_bytes=16)])
def test_block_rates_are_the_components_properties(cfg):
    """block_rates reads contract.latency; the components (built here only to be read)
    must report the same numbers."""
    from verif.report_parts import block_rates
    from hw.nmc import ComputeMemory
    from hw.track_trigger import TrackTrigger
    rates = block_rates(cfg)
    assert rates["trigger_latency_cycles"] == TrackTrigger(cfg=cfg).trigger_latency
    for dt, r in rates["nmc"].items():
        mem = ComputeMemory(cfg=cfg.replace(dtype=dt, mem_depth_lines=64))
        assert r["latency_cycles"] == mem.latency, dt
        assert r["lanes"] == r["elements_updated_per_cycle"] == mem.lanes, dt
        assert r["dependent_same_line_updates_per_cycle"] == \
            pytest.approx(1 / (1 + mem.same_line_update_bubble)), dt


def test_model_part_writes_figures_and_headline(tmp_path):
    rc = main(["report", "--out", str(tmp_path), "model"])
    assert rc == 0
    data = json.loads((tmp_path / "model.json").read_text())
    # one row per (model, sublayer, TP) instance of the paper's workloads and configuration
    from sim_models.perf.sublayer import CONFIGS
    from sim_models.perf.workloads import load_workloads
    wl = load_workloads()
    instances = sum(len(m.tp) for m in wl.models) * len(wl.sublayers)
    assert len(data["rows"]) == instances * len(CONFIGS)
    from verif.report_parts import MODEL_KEYS
    assert list(data) == list(MODEL_KEYS)
    for fig in data["figures"]:
        assert (tmp_path / fig).stat().st_size > 1000
    assert "![speedup](speedup.png)" in (tmp_path / "model.md").read_text()


def _documented() -> set[str]:
    import re
    from pathlib import Path
    doc = (Path(__file__).resolve().parent.parent / "docs" / "report.md").read_text()
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", doc, re.M))


def test_report_schema_is_documented():
    from t3.cmd_report import REPORT_KEYS
    from verif.report_parts import MODEL_KEYS, THROUGHPUT_KEYS
    assert set(REPORT_KEYS) | set(THROUGHPUT_KEYS) | set(MODEL_KEYS) <= _documented()


def test_full_report_has_one_key_per_part(tmp_path, monkeypatch):
    """report.json = schema + config + one entry per part, each equal to PART.json
    (parts replaced by stand-ins: the real ones are the tests above and test_area.py)."""
    from t3 import cmd_report
    fakes = {}
    for name, part in cmd_report.PARTS.items():
        fakes[name] = {"part": name}
        monkeypatch.setitem(cmd_report.PARTS, name, cmd_report.Part(
            name, part.help, part.add_args,
            lambda args, cfg, label, n=name: (fakes[n], f"## {n}\n", True)))
    assert main(["report", "--out", str(tmp_path)]) == 0
    rep = json.loads((tmp_path / "report.json").read_text())
    assert list(rep) == list(cmd_report.REPORT_KEYS)
    for name in cmd_report.PARTS:
        assert rep[name] == fakes[name] == json.loads((tmp_path / f"{name}.json").read_text())
    assert (tmp_path / "report.md").read_text().count("## ") == len(cmd_report.PARTS)
