"""The throughput and model parts of `t3 report`: real runs (Icarus ring, system model),
JSON keys, and that the Markdown numbers are the JSON's."""

import json

import pytest

from t3.cli import main


@pytest.mark.cocotb
def test_throughput_part_runs_the_ring_and_reports_its_numbers(tmp_path, capsys):
    rc = main(["report", "--out", str(tmp_path), "throughput", "--sim", "icarus"])
    assert rc == 0
    data = json.loads((tmp_path / "throughput.json").read_text())
    cyc = data["cycles"]
    assert cyc["t3_mca"] < cyc["baseline"] and cyc["t3_plain"] < cyc["baseline"]
    assert data["speedup"]["t3_mca"] == pytest.approx(cyc["baseline"] / cyc["t3_mca"])
    md = (tmp_path / "throughput.md").read_text()
    assert f"| {cyc['baseline']} |" in md and f"| {cyc['t3_mca']} |" in md
    assert set(data["block_rates"]["nmc"]) == {"fp16", "bf16", "fp32"}
    assert data["block_rates"]["trigger_latency_cycles"] == 9


def test_model_part_writes_figures_and_headline(tmp_path):
    rc = main(["report", "--out", str(tmp_path), "model"])
    assert rc == 0
    data = json.loads((tmp_path / "model.json").read_text())
    assert len(data["rows"]) == 140
    for fig in data["figures"]:
        assert (tmp_path / fig).stat().st_size > 1000
    assert "![speedup](speedup.png)" in (tmp_path / "model.md").read_text()
