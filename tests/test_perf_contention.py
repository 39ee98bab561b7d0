"""The fast contention model (sim_models.perf.contention) against its ground truth: the
cycle harness (sim_models.perf.contention_sim) over the DRAM controller's cycle model
(sim_models/dram.py), stored in contention_ground_truth.json with the digest of the
sources it came from."""

import pytest

from sim_models.perf import contention_sim as cs
from sim_models.perf.contention import RR_RUN_PURE, agreement_rows, capacity, service, share


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
    # and no row is off by more than a sixth, communication cycles included
    worst = max(max(abs(r["gemm_error"]), abs(r["comm_error"]), abs(r["end_error"])) for r in rows)
    assert worst <= 0.17, worst


def _beyond_10pct(rows):
    return {(r["scenario"], r["policy"]) for r in rows
            if abs(r["end_error"]) > 0.10 or abs(r["gemm_error"]) > 0.10}


def test_model_agrees_on_every_row_within_10pct(data):
    # issue 17: every scenario, both policies, within 10% of cycles (GEMM and whole run);
    # no documented misses since the refit on the ground truth with the full-fold bank
    # XOR (docs/system_model.md, "Contention")
    bad = _beyond_10pct(agreement_rows(data))
    assert not bad, bad


#: run-to-run spread of the harness's GEMM completion time where the GEMM is compute
#: bound: d05-ru-p109 over seeds 1-4, MCA / alone = 0.98-1.07, round-robin / alone =
#: 0.98-1.05 (docs/system_model.md, "Contention": the last agent's end is a maximum over
#: 80 jittered compute chains, not a rate)
GEMM_END_SPREAD = 0.05


def test_policies_order_as_in_the_ground_truth(data):
    # in the harness MCA never slows the GEMM more than round-robin does, except within
    # the run-to-run spread where neither slows it measurably; the model agrees
    for r in data["rows"]:
        alone = r["gemm_alone"]["gemm_cycles"]
        assert r["mca"]["gemm_cycles"] <= max(r["rr"]["gemm_cycles"] * 1.01,
                                              alone * (1 + GEMM_END_SPREAD)), r["scenario"]["name"]
        if r["rr"]["gemm_cycles"] > alone * (1 + GEMM_END_SPREAD):
            assert r["mca"]["gemm_cycles"] < r["rr"]["gemm_cycles"], r["scenario"]["name"]
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


def test_update_service_follows_the_address_map():
    # the UPDATE's channel time is t_rmw over the lines a sequential stream takes to come
    # back to a bank: 4 (the bank groups) on the default map, XOR or not; every line in
    # one bank (col first) pays the whole t_rmw; 16 banks in turn are interface-bound
    from contract.dram import DramTiming
    from sim_models.perf.contention import sequential_bank_rotation
    for xor in (False, True):
        t = DramTiming(bank_xor=xor)
        assert sequential_bank_rotation(t) == t.bank_groups
        assert service(t).update == t.t_rmw / t.bank_groups
    one_bank = DramTiming(mapping="col-bg-bank-row")
    assert service(one_bank).update == one_bank.t_rmw
    spread = DramTiming(mapping="bg-bank-col-row")
    assert sequential_bank_rotation(spread) == spread.banks
    assert service(spread).update == spread.t_ccd_s


def test_harness_streams_use_different_banks_under_bank_xor():
    # the premise of the model's conflict term on the stored ground truth: with the bank
    # XOR folding every row bit, the DMA READ region (row 2^15) and the incoming UPDATE
    # region (row 2^16) walk different banks line by line, so the derived conflict share is
    # 0; without the XOR line i of each lands in the same bank, another row: share 1
    from contract.dram import DramTiming, decode
    from sim_models.perf.contention import cross_stream_conflict
    t = DramTiming()
    assert t.bank_xor
    dma, inc = cs.COMM_REGION_BASES["READ"], cs.COMM_REGION_BASES["UPDATE"]
    for i in range(0, 4096, 7):
        assert decode(t, dma + i).bank != decode(t, inc + i).bank
    assert cross_stream_conflict(t, [dma, inc]) == 0.0
    plain = DramTiming(bank_xor=False)
    assert all(decode(plain, dma + i).bank == decode(plain, inc + i).bank
               for i in range(0, 4096, 7))
    assert cross_stream_conflict(plain, [dma, inc]) == 1.0
    assert cross_stream_conflict(t, [dma]) == 0.0


def test_conflict_term_predicts_the_communication_alone_with_and_without_xor():
    # the harness's READ+UPDATE communication with a backlog (100 tiles at once), alone:
    # in different banks (XOR) it runs near 0.54 lines per cycle, conflicting in every
    # bank (no XOR) near 0.23; the model's capacity for that mix (run = queue depth,
    # conflict from the mapping and the timing, nothing fitted) within 10% of both
    from dataclasses import replace
    from contract.dram import DramTiming
    from sim_models.perf.contention import conflict_cost, cross_stream_conflict
    scn = replace(cs.paper_like("backlog", 0.15), comm_period=1, comm_fires=100, comm_start=0)
    ops = list(scn.comm_ops)
    rates = {}
    for xor in (True, False):
        t = DramTiming(bank_xor=xor)
        r = cs.run(scn, "rr", gemm=False, timing=t)
        measured = scn.comm_fires * scn.burst_lines * len(ops) / r.comm_cycles
        k = cross_stream_conflict(t, [cs.COMM_REGION_BASES[o] for o in ops]) \
            * conflict_cost(t, ops, queue_depth=scn.queue_depth)
        model = capacity({o: 1.0 for o in ops}, service(t), policy="rr",
                         run=scn.queue_depth, conflict=k)
        assert model == pytest.approx(measured, rel=0.10), (xor, model, measured)
        rates[xor] = measured
    assert rates[True] > 2 * rates[False]
    with pytest.raises(ValueError, match="queue_depth"):
        conflict_cost(DramTiming(), ops, queue_depth=0)
    with pytest.raises(ValueError, match="op="):
        conflict_cost(DramTiming(), ["READ", "LOAD"])
    with pytest.raises(ValueError, match="conflict"):
        share("rr", {"READ": 0.1}, {"UPDATE": 0.1}, service(), threshold=8, limit=64,
              conflict=-1.0)


def test_gpu_update_cost_and_bad_values():
    from contract.dram import DramTiming
    t = DramTiming()
    # the paper GPU's UPDATE takes t3.nmc_update_cost write slots; the RTL's derives it
    assert service(t, update_cost=1.0).update == t.t_ccd_s
    assert service(t, update_cost=2.0).update == 2 * t.t_ccd_s
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="update_cost"):
            service(t, update_cost=bad)
    # a free UPDATE (nmc_update_cost = 0 is a valid hardware file) limits nothing
    free = service(t, update_cost=0.0)
    assert capacity({"UPDATE": 1.0}, free, policy="rr") == float("inf")
    assert share("rr", {"UPDATE": 0.3}, {"UPDATE": 0.3}, free, threshold=8, limit=64) \
        == (0.3, 0.3)
    with pytest.raises(ValueError, match="outstanding"):
        share("rr", {"READ": 0.1}, {"UPDATE": 0.1}, service(t), threshold=8, limit=64,
              outstanding=0)


def test_posted_writes_hold_queue_entries_for_their_service_only():
    # OP-like stage: few random-row reads, many posted sequential UPDATEs. Under MCA the
    # reduce-scatter still finds room in the queue (a write's entry is held for its service,
    # not for a random read's row miss), so with an interface-bound UPDATE it gets (nearly)
    # its demand
    sv = service(update_cost=1.0)
    gemm = {"READ": 0.04, "UPDATE": 0.46}
    comm = {"READ": 0.15, "UPDATE": 0.15}
    g, c = share("mca", gemm, comm, sv, threshold=16, limit=64)
    assert g == pytest.approx(0.5) and c >= 0.95 * 0.3
    # the same demand as random-row reads holds the queue far longer: much less room
    g2, c2 = share("mca", {"READ": 0.5}, comm, sv, threshold=16, limit=64)
    assert g2 == pytest.approx(0.5) and c2 < c / 2


def test_round_robin_closed_loop_slows_the_gemm_below_saturation():
    # the two streams fit in the channel, yet the GEMM's reads wait behind the bursts:
    # the closed loop completes its 320 outstanding lines more slowly; more CUs in flight
    # (a larger population) hide more of the wait
    sv = service()
    gemm, comm = {"READ": 0.12, "UPDATE": 0.015}, {"UPDATE": 0.1}
    assert 0.235 < capacity({"READ": 0.12, "UPDATE": 0.115}, sv, policy="rr", run=RR_RUN_PURE)
    g, c = share("rr", gemm, comm, sv, threshold=14, limit=64)
    assert c == pytest.approx(0.1) and g < 0.135
    g2, _ = share("rr", gemm, comm, sv, threshold=14, limit=64, outstanding=3200)
    assert g < g2 < 0.135


def test_population_is_the_harness_gemm():
    # the closed loop's default population is the harness's paper-like GEMM (80 agents
    # x a 4-line fetch), and every stored scenario uses it
    from sim_models.perf.contention import GEMM_OUTSTANDING_LINES, LINES_PER_FETCH
    scn = cs.paper_like("x", 0.1)
    assert scn.agents * scn.fetch_lines == GEMM_OUTSTANDING_LINES
    assert scn.fetch_lines == LINES_PER_FETCH
    for s in cs.SCENARIOS:
        assert s.agents * s.fetch_lines == GEMM_OUTSTANDING_LINES
