"""The model functions the RTL testbenches take their expectations from (no simulator):
the unfused baseline's ring steps and programs (sim_models.baseline, played by
verif/tb_ring.py's ``ring_baseline``) and a device's link traffic
(sim_models.link_traffic, expected by verif/tb_track_trigger.py)."""

import pytest

from contract.gemm import GemmSpec
from contract.sizing import config_for
from contract.spec import FireOp, Op, ProducerAction, T3Config, fire_packet_op
from sim_models.baseline import (ALL_GATHER, REDUCE_SCATTER, baseline_programs, ring_steps,
                                 run_baseline)
from sim_models.golden import run_ring
from sim_models.link_traffic import link_traffic, tracked_requests
from sim_models.workload import make_workload


def workload(devices, layout="row", seed=3):
    # chunks split the memory-outer dimension: M for row-major, N for column-major
    m, n = (8 * devices + 4, 16) if layout == "row" else (16, 8 * devices)
    g = GemmSpec(m=m, n=n, k=2 * devices, devices=devices, layout=layout,
                 wg_tile=(8, 8), wf_tile=(4, 4), cus=2, seed=seed)
    print(f"gemm={g}")
    return make_workload(config_for(g, T3Config(line_bytes=8)), g)


@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_ring_steps_reduce_scatter_then_all_gather(n):
    steps = ring_steps(n)
    assert [s.phase for s in steps] == [REDUCE_SCATTER] * (n - 1) + [ALL_GATHER] * (n - 1)
    for s in steps:
        assert sorted(s.send) == list(range(n)), "every chunk moves once per step"
        assert s.reduces == (s.phase == REDUCE_SCATTER)
    for a, b in zip(steps, steps[1:]):
        if a.phase == b.phase:
            # a ring pipeline: each device forwards what it has just received
            assert all(b.send[d] == a.received(d) for d in range(n))
    rs = steps[:n - 1]
    assert all(rs[-1].received(c) == c for c in range(n)), "device c ends with chunk c reduced"
    assert all(steps[n - 1].send[c] == c for c in range(n)), "the all-gather starts from it"
    assert ring_steps(n, allgather=False) == rs


def test_baseline_programs_track_nothing_and_kick_each_chunk():
    w = workload(3)
    progs = baseline_programs(w.programs)
    for p, t3 in zip(progs, w.programs):
        assert (p.device, p.next_device) == (t3.device, t3.next_device)
        assert [(r.base, r.limit) for r in p.regions] == [(r.base, r.limit) for r in t3.regions]
        for r in p.regions:
            assert r.producer == ProducerAction.LOCAL and not r.tracked
            assert (r.update_fire, r.store_fire) == (FireOp.UPDATE, FireOp.STORE)
    bases = [c.base for c in w.chunks]
    lines = [c.limit - c.base for c in w.chunks]
    for s in ring_steps(3):
        regions = s.kick_regions(progs, bases)
        for d, ri in enumerate(regions):
            assert progs[d].regions[ri].base == bases[s.send[d]]
        assert s.memory_requests(lines) == [lines[s.send[d]] + lines[s.received(d)]
                                            for d in range(3)]


def test_run_baseline_follows_the_steps():
    """DRAM traffic of the model = what the steps say the RTL memories apply."""
    w = workload(4)
    res = run_baseline(w.cfg, w.gemm, w.partials)
    lines = [c.limit - c.base for c in w.chunks]
    per_step = [s.memory_requests(lines) for s in ring_steps(4)]
    for d in range(4):
        gemm_writes = w.geometry.total_lines
        # an RS receive is a read + write in the model (an UPDATE at the memory)
        rs_recv = sum(lines[s.received(d)] for s in ring_steps(4) if s.reduces)
        assert res.counts[d]["dram_writes"] + res.counts[d]["dram_reads"] - rs_recv \
            == gemm_writes + sum(step[d] for step in per_step)


@pytest.mark.parametrize("n,layout", [(2, "row"), (4, "col")])
def test_link_traffic_is_what_the_golden_ring_sends(n, layout):
    w = workload(n, layout)
    ring = run_ring(w.cfg, w.programs, w.traces)
    for d in range(n):
        t = link_traffic(w.programs, w.traces, ring, d)
        nxt = w.programs[d].next_device
        assert len(t.remote) == ring.counts[d]["producer_remote"]
        assert len(t.remote) + len(t.dma_packets) == ring.counts[d]["link_out"]
        assert all(p.dest == nxt for p in t.remote + t.dma_packets)
        sending = [f for f in ring.fires[d] if f.op != FireOp.NONE]
        assert len(t.dma) == len(sending)
        for tile, f in zip(t.dma, sending):
            assert [p.addr for p in tile] == list(f.dest_addrs)
            assert {p.op for p in tile} == {fire_packet_op(f.op)}
            assert {p.wf_id for p in tile} == {f.wf_id}
        assert all(p.op in (Op.UPDATE, Op.STORE) for p in t.remote)
        assert tracked_requests(w.programs[d], ring.fires[d]) > 0
