"""The DRAM controller's cycle model (sim_models/dram.py) against the bounds its timing
parameters imply, and the contract's timing set (contract/dram.py)."""

from __future__ import annotations

import random

import pytest

from contract.dram import HBM2_NS, MAPPINGS, DramTiming, decode
from contract.spec import ConfigError, Op
from sim_models.dram import (DramControllerModel, DramRequest, encode, peak_random_row_rate,
                              random_requests, return_slots, rotating_random_rows, simulate)

TIMING = DramTiming()
QUEUE = 16


def _rotating_random_rows(n: int, op: Op, seed: int) -> list[DramRequest]:
    """Every request opens a random row, the banks taken in turn (so the rate is bound by
    the timing, not by bank conflicts of a random draw)."""
    return rotating_random_rows(TIMING, n, op, seed)


def test_hbm2_cycles_are_the_published_ns_rounded_up():
    per_cycle = HBM2_NS["t_burst"]
    for name in ("t_rcd", "t_rcd_wr", "t_cl", "t_cwl", "t_rp", "t_ras", "t_ccd_l", "t_wr",
                 "t_rtp", "t_wtr_s", "t_wtr_l", "t_rtw", "t_rrd_s", "t_rrd_l", "t_faw"):
        cycles = getattr(TIMING, name)
        assert (cycles - 1) * per_cycle < HBM2_NS[name] <= cycles * per_cycle, name


def test_default_mapping_rotates_bank_groups_then_columns():
    seen = [decode(TIMING, a) for a in range(2 * TIMING.bank_groups)]
    assert [d.group for d in seen] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert [d.col for d in seen] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert {d.row for d in seen} == {0}
    lines_per_row_set = TIMING.bank_groups * TIMING.row_lines * TIMING.banks_per_group
    assert decode(TIMING, lines_per_row_set).row == 1


@pytest.mark.parametrize("bank_xor", [False, True])
@pytest.mark.parametrize("mapping", list(MAPPINGS))
def test_every_mapping_is_a_bijection_on_a_window(mapping, bank_xor):
    t = DramTiming(mapping=mapping, bank_xor=bank_xor)
    keys = {(d.bank, d.row, d.col) for d in (decode(t, a) for a in range(4096))}
    assert len(keys) == 4096


@pytest.mark.parametrize("op", [Op.READ, Op.STORE])
def test_streaming_reaches_one_line_per_cycle(op):
    results, stats = simulate(TIMING, [DramRequest(op, a) for a in range(4096)], queue_depth=QUEUE)
    assert len(results) == 4096
    assert 4096 / stats.cycles >= 0.95          # the analytical peak is 1 line per cycle


@pytest.mark.parametrize("op", [Op.READ, Op.STORE])
def test_random_rows_reach_the_bound_of_the_timing(op):
    bound = peak_random_row_rate(TIMING, QUEUE)
    # the bound is computed from the parameters; with the HBM2 set the row bus (a PRE and
    # an ACT per access), tRRD_S and tFAW all allow one access every 2 cycles
    assert bound == pytest.approx(min(1 / TIMING.t_rrd_s, 4 / TIMING.t_faw, 0.5))
    _, stats = simulate(TIMING, _rotating_random_rows(4000, op, seed=7), queue_depth=QUEUE)
    assert 4000 / stats.cycles == pytest.approx(bound, rel=0.05)
    assert stats.row_hit_ratio < 0.01


def test_updates_cost_more_than_stores():
    stores = simulate(TIMING, [DramRequest(Op.STORE, a) for a in range(2048)], queue_depth=QUEUE)[1]
    updates = simulate(TIMING, [DramRequest(Op.UPDATE, a) for a in range(2048)], queue_depth=QUEUE)[1]
    assert updates.cycles > 1.8 * stores.cycles
    # a stream keeps one bank per group busy (two while it moves to the next bank), each
    # held t_rmw cycles by an UPDATE
    rate = 2048 / updates.cycles
    assert 0.95 * TIMING.bank_groups / TIMING.t_rmw <= rate <= 2 * TIMING.bank_groups / TIMING.t_rmw


def test_same_line_requests_issue_in_arrival_order_and_all_complete():
    rng = random.Random(3)
    reqs = [DramRequest(rng.choice(list(Op)), rng.randrange(64) * 37, offer=i // 2)
            for i in range(3000)]
    results, _ = simulate(TIMING, reqs, queue_depth=QUEUE)
    assert len(results) == len(reqs)
    last_issue: dict[int, int] = {}
    for r, res in zip(reqs, results):
        assert res.accept >= r.offer and res.issue > res.accept and res.done >= res.issue
        assert res.issue > last_issue.get(r.addr, -1)
        last_issue[r.addr] = res.issue


def test_read_responses_leave_in_acceptance_order():
    rng = random.Random(5)
    reqs = [DramRequest(Op.READ, rng.randrange(1 << 16)) for _ in range(500)]
    results, _ = simulate(TIMING, reqs, queue_depth=QUEUE)
    dones = [r.done for r in results]
    assert dones == sorted(dones) and len(set(dones)) == len(dones)
    assert min(r.done - r.issue for r in results) >= TIMING.read_latency


def test_age_cap_bounds_the_wait_behind_row_hits():
    # one old request to another row of bank 0, then an endless stream of row hits to
    # bank 0's open row: without the cap the miss would wait for the whole stream
    row1 = encode(TIMING, bank=0, row=1, col=0)
    hits = [DramRequest(Op.READ, encode(TIMING, bank=0, row=0, col=i % TIMING.row_lines))
            for i in range(600)]
    reqs = hits[:8] + [DramRequest(Op.READ, row1)] + hits[8:]
    capped = simulate(DramTiming(age_cap=32), reqs, queue_depth=QUEUE)[0][8]
    uncapped = simulate(DramTiming(age_cap=4095), reqs, queue_depth=QUEUE)[0][8]
    assert capped.issue - capped.accept < 32 + TIMING.t_rp + TIMING.t_rcd + TIMING.t_ras + 16
    assert uncapped.issue - uncapped.accept > 400


def test_response_backpressure_only_delays():
    reqs = [DramRequest(Op.READ, a * 5) for a in range(300)]
    free = simulate(TIMING, reqs, queue_depth=QUEUE)[0]
    slow = simulate(TIMING, reqs, queue_depth=QUEUE, resp_ready=lambda c: c % 3 == 0)[0]
    assert all(s.done >= f.done for s, f in zip(slow, free))
    assert all(s.done % 3 == 0 for s in slow)


def test_return_buffer_is_a_power_of_two_that_covers_the_queue():
    n = return_slots(TIMING, QUEUE)
    assert n & (n - 1) == 0 and n >= QUEUE + TIMING.read_latency + 1


@pytest.mark.parametrize("changes, message", [
    ({"bank_groups": 3}, "bank_groups=3: must be a power of two"),
    ({"t_cl": 0}, "t_cl=0: must be an integer number of cycles"),
    ({"mapping": "row-col"}, "mapping='row-col': must be one of"),
    ({"t_ccd_l": 1, "t_ccd_s": 2}, "t_ccd_l=1: must be >= t_ccd_s"),
    ({"age_cap": 0}, "age_cap=0"),
])
def test_bad_timing_is_a_clear_error(changes, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        DramTiming(**changes)


def test_unknown_key_names_it():
    with pytest.raises(ConfigError, match="t_foo"):
        DramTiming.from_dict({"t_foo": 3})


def test_bad_requests_are_clear_errors():
    with pytest.raises(ConfigError, match="request 1: addr=-1"):
        simulate(TIMING, [DramRequest(Op.READ, 0), DramRequest(Op.READ, -1)], queue_depth=4)
    with pytest.raises(ConfigError, match="queue_depth=0"):
        simulate(TIMING, [], queue_depth=0)


@pytest.mark.parametrize("queue", [2, 4])
@pytest.mark.parametrize("op", [Op.READ, Op.STORE])
def test_small_queue_random_rows_are_bound_by_the_queue(queue, op):
    # a request holds its queue entry from acceptance to its column command: with every
    # access a row miss, at least tRP + tRCD(_WR) + 2 cycles (the return buffer, not the
    # queue, holds a READ until its data is back)
    bound = peak_random_row_rate(TIMING, queue, op)
    rcd = TIMING.t_rcd if op == Op.READ else TIMING.t_rcd_wr
    assert bound == pytest.approx(queue / (TIMING.t_rp + rcd + 2))
    _, stats = simulate(TIMING, _rotating_random_rows(2000, op, seed=3), queue_depth=queue)
    assert 2000 / stats.cycles == pytest.approx(bound, rel=0.01)


def test_bank_xor_separates_streams_that_differ_only_in_the_row():
    """Two sequential streams 4096 lines apart (same bank sequence without the XOR: a row
    conflict in every bank), READs interleaved 1:1 with UPDATEs, as the fused
    reduce-scatter's DMA READs and link UPDATEs: with ``bank_xor`` they walk different
    banks, and the row conflicts that halve the rate without it are gone (the rate with
    the XOR is bounded by the UPDATE stream's bank holding, about 0.5 per cycle)."""
    reqs = [DramRequest(Op.READ if i % 2 == 0 else Op.UPDATE, i // 2 + (0 if i % 2 == 0 else 4096))
            for i in range(2000)]

    def rate(t: DramTiming) -> float:
        res, st = simulate(t, reqs, queue_depth=QUEUE)
        return len(reqs) / max(r.done for r in res), st

    plain, st_plain = rate(DramTiming(bank_xor=False))
    xor, st_xor = rate(DramTiming(bank_xor=True))
    assert st_xor.activates < st_plain.activates / 4, (st_xor, st_plain)
    assert xor > 2 * plain, (xor, plain)
    # sanity of the premise: without the XOR both streams use the same bank for a line pair
    assert decode(DramTiming(bank_xor=False), 5).bank == decode(DramTiming(bank_xor=False), 4096 + 5).bank
    assert decode(DramTiming(), 5).bank != decode(DramTiming(), 4096 + 5).bank


class _UrgentWatch(DramControllerModel):
    """The model, recording every cycle in which the oldest request is urgent, hits its
    open row and is not yet allowed: (cycle, its slack, the request), and every column
    command another request issues in such a cycle."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.waits, self.spared = [], 0

    def _pick_column(self, urgent, c):
        col = super()._pick_column(urgent, c)
        if urgent is not None and self._hits(urgent) and not self.column_ok(urgent, c):
            self.waits.append((c, self.urgent_slack(urgent, c), urgent))
            self.spared += col is not None
        return col


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_urgent_hit_is_never_delayed_by_the_commands_it_lets_through(seed):
    """While the urgent (oldest, waited ``age_cap``) request hits its open row but its
    timing does not allow it yet, other banks' column commands may issue only if they do
    not push its own column command later: it issues exactly ``slack`` cycles later
    (slack computed from its constraints alone), and other commands do issue meanwhile
    (so the controller does not stall behind one bus turnaround)."""
    rng = random.Random(seed)
    timing = DramTiming(age_cap=8)
    reqs = random_requests(timing, rng, 3000, rows=64, gap_prob=0.0)
    model = _UrgentWatch(timing, queue_depth=QUEUE)
    offered, c = 0, 0
    while offered < len(reqs) or model.waiting or model.returning:
        r = reqs[offered] if offered < len(reqs) else None
        accepted, _, _ = model.step(c, r, offered, True)
        offered += accepted
        c += 1
    checked = 0
    for cyc, slack, e in model.waits:
        if slack:       # a READ waiting for a return slot has slack 0 (sink-dependent)
            assert e.issued == cyc + slack, (cyc, slack, e)
            checked += 1
    assert checked > 100 and model.spared > 50, (checked, model.spared)
