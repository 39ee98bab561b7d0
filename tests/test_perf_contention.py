"""The fast contention model (sim_models.perf.contention) against its ground truth: the
cycle harness (sim_models.perf.contention_sim) over the DRAM controller's cycle model
(sim_models/dram.py), stored in contention_ground_truth.json with the digest of the
sources it came from."""

import pytest

from sim_models.perf import contention_sim as cs
from sim_models.perf.contention import agreement_rows, capacity, service


@pytest.fixture(scope="module")
def data():
    return cs.load_ground_truth()


def test_ground_truth_is_fresh(data):
    assert data["source_digest"] == cs.source_digest(), (
        "contention_ground_truth.json was measured on other DRAM-model / harness sources: "
        "re-run `python -m sim_models.perf.contention_sim` and re-check the model")
    assert data["sources"] == list(cs.SOURCES)


def test_ground_truth_spans_intensities_and_both_policies(data):
    rows = data["rows"]
    assert len(rows) >= 8
    dens = [r["gemm_alone"]["intensity"] for r in rows]
    assert min(dens) <= 0.1 and max(dens) >= 0.4
    for r in rows:
        assert {"rr", "mca", "gemm_alone", "comm_alone"} <= set(r)


def test_stored_numbers_reproduce():
    # one cheap scenario re-run through the harness gives the stored cycles exactly
    data = cs.load_ground_truth()
    row = next(r for r in data["rows"] if r["scenario"]["name"] == "d05-u-p109")
    scn = cs.ContentionScenario.from_dict(row["scenario"])
    r = cs.run(scn, "mca")
    assert (r.gemm_cycles, r.comm_cycles, r.threshold) == (
        row["mca"]["gemm_cycles"], row["mca"]["comm_cycles"], row["mca"]["threshold"])


def test_model_agrees_on_average_within_10pct(data):
    rows = agreement_rows(data)
    for key in ("gemm_error", "end_error"):
        mean = sum(abs(r[key]) for r in rows) / len(rows)
        assert mean <= 0.10, (key, mean)
    # and no row is off by more than a quarter
    worst = max(max(abs(r["gemm_error"]), abs(r["comm_error"]), abs(r["end_error"])) for r in rows)
    assert worst <= 0.25, worst


@pytest.mark.xfail(strict=True, reason="issue 17 asks every scenario within 10%; the fast "
                   "model misses it on 8 of 24 rows (GEMM or end cycles) (docs/system_model.md, Contention): "
                   "remove this mark when it holds")
def test_model_agrees_on_every_row_within_10pct(data):
    rows = agreement_rows(data)
    bad = [(r["scenario"], r["policy"], round(r["end_error"], 3)) for r in rows
           if abs(r["end_error"]) > 0.10 or abs(r["gemm_error"]) > 0.10]
    assert not bad, bad


def test_policies_order_as_in_the_ground_truth(data):
    # in the harness MCA never slows the GEMM more than round-robin, and the model agrees
    for r in data["rows"]:
        assert r["mca"]["gemm_cycles"] <= r["rr"]["gemm_cycles"] * 1.01
    rows = agreement_rows(data)
    by = {(r["scenario"], r["policy"]): r for r in rows}
    for (name, pol), r in by.items():
        if pol == "mca":
            assert r["gemm_model"] <= by[(name, "rr")]["gemm_model"] + 1


def test_threshold_formula():
    assert cs.mca_threshold(0.0, 16) == 16
    assert cs.mca_threshold(0.5, 16) == 8
    assert cs.mca_threshold(0.99, 16) == 1
    assert cs.mca_threshold(2.0, 16) == 1


def test_service_times_come_from_the_timing():
    from contract.dram import DramTiming
    t = DramTiming()
    sv = service(t)
    assert sv.update == t.t_rmw / t.bank_groups
    assert sv.turnaround == (t.t_rtw + t.write_to_read_other) / 2
    # a pure stream has no turnaround; mixing reads and writes costs capacity
    assert capacity({"READ": 1.0}, sv, policy="rr") == 1.0
    assert capacity({"READ": 0.5, "UPDATE": 0.5}, sv, policy="rr") \
        < capacity({"READ": 0.5, "UPDATE": 0.5}, sv, policy="mca", threshold=8)
