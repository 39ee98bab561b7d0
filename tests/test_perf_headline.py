"""Regression test of the system model against the paper's headline numbers (T3-MCA vs
sequential, abstract of arXiv 2401.16677): each within 3 percentage points. The paper
values are typed in here from the paper, not taken from the model."""

import pytest

from sim_models.perf.sweep import paper_rows, summarize

PAPER = {  # percent
    ("all", "speedup", "geomean_pct"): 30.0,
    ("all", "speedup", "max_pct"): 47.0,
    ("all", "dram_reduction", "geomean_pct"): 22.0,
    ("all", "dram_reduction", "max_pct"): 36.0,
    ("500B", "speedup", "geomean_pct"): 29.0,
}


@pytest.fixture(scope="module")
def summary():
    return summarize(paper_rows())


@pytest.mark.parametrize("key", list(PAPER), ids=lambda k: "-".join(k))
def test_headline_within_3pp(summary, key):
    sset, metric, stat = key
    ours = summary["t3_mca"][sset][metric][stat]
    print(f"{key}: paper {PAPER[key]:.1f}% model {ours:.1f}%")
    assert abs(ours - PAPER[key]) <= 3.0


def test_sets_are_the_papers(summary):
    assert summary["t3_mca"]["all"]["speedup"]["n"] == 28      # 5 models, their TPs, 4 sublayers
    assert summary["t3_mca"]["500B"]["speedup"]["n"] == 8


def test_t3_beats_software_overlap_and_ideal_bounds_both(summary):
    for sset in ("all", "500B", "small"):
        sp = {c: summary[c][sset]["speedup"]["geomean_pct"] for c in
              ("sw_overlap", "ideal", "t3", "t3_mca")}
        assert sp["sw_overlap"] < sp["t3_mca"] <= sp["ideal"] + 1e-9
        assert sp["t3"] <= sp["ideal"] + 1e-9


def test_report_part_for_t3_report():
    from sim_models.perf.sweep import report
    data, md, ok = report()
    assert ok and len(data["rows"]) == 140
    assert "| speedup_geomean_pct | 30.0% |" in md and "| MT-NLG | 32 | IP_bwd |" in md
