"""System model physics: hand-computed GEMM and ring times, sums of parts, orderings
that must hold, monotonicity, DRAM-sharing policies, data-movement accounting."""

import math

import pytest

from sim_models.perf.collective_time import ring_ag_s, ring_link_bound_s, ring_rs_s
from sim_models.perf.dram_share import share
from sim_models.perf.gemm_time import gemm_cost
from sim_models.perf.hardware import hardware_from_rtl, load_hardware
from sim_models.perf.sublayer import CONFIGS, evaluate
from sim_models.perf.traffic import baseline_traffic, t3_traffic
from sim_models.perf.workloads import Sublayer, load_workloads
from contract.spec import T3Config

HW = load_hardware()
SUBS = load_workloads().instances()


def _ids(s):
    return f"{s.model}-tp{s.tp}-{s.kind}"


def test_gemm_waves_and_tile_time_by_hand():
    # 1280 x 1280 output = 10 x 10 tiles of 128 x 128 -> 100 tiles on 80 CUs = 2 waves
    g = gemm_cost(HW.gpu, 1280, 1280, 512)
    assert (g.tiles, g.waves) == (100, 2)
    tile_s = 2 * 128 * 128 * 512 / (1024 * 0.8 * 1.4e9)
    assert g.compute_s == pytest.approx(2 * tile_s, rel=1e-12)
    # A and B (1.25 MiB each) stay in the 8 MiB usable L2: each read exactly once
    assert g.read_bytes == 2 * 1280 * 512 * 2
    assert g.write_bytes == 1280 * 1280 * 2


def test_gemm_inputs_reread_when_l2_is_small():
    # Mega-GPT-2 OP at TP 8: A (6 MiB) streams, B (2.25 MiB) stays in L2: read once
    once = (8192 + 3072) * 384 * 2
    assert gemm_cost(HW.gpu, 8192, 3072, 384).read_bytes == once
    tiny = gemm_cost(HW.replace(gpu={"l2_MB": 1.0}).gpu, 8192, 3072, 384)
    assert tiny.read_bytes > 1.5 * once
    # PaLM FC2 at TP 32: B (81 MiB) can never stay in L2
    assert gemm_cost(HW.gpu, 8192, 18432, 2304).read_bytes > 2 * (8192 + 18432) * 2304 * 2


def test_ring_times_by_hand():
    S, n = 8 * 2**20, 4
    c = S / n
    lb = 3 * c / 150e9 + 500e-9
    assert ring_link_bound_s(HW, S, n) == pytest.approx(lb)
    # link-bound steps (DRAM traffic of at most 6C at 900 GB/s is no slower than C at
    # 150 GB/s)
    assert ring_rs_s(HW, S, n) == pytest.approx(3 * (c / 150e9 + 500e-9))
    assert ring_ag_s(HW, S, n) == pytest.approx(3 * (c / 150e9 + 500e-9))
    # DRAM-bound when the memory is slow: 200 GB/s x 0.9 = 180 GB/s; RS steps move
    # 2C, 3C, 6C; AG steps 2C each
    slow = HW.replace(gpu={"hbm_bandwidth_GBps": 200.0})
    assert ring_rs_s(slow, S, n) == pytest.approx(3 * 500e-9 + 11 * c / 180e9)
    assert ring_ag_s(slow, S, n) == pytest.approx(3 * 500e-9 + 6 * c / 180e9)


@pytest.mark.parametrize("sub", SUBS, ids=_ids)
def test_sequential_is_sum_of_parts_and_orderings(sub):
    r = evaluate(HW, sub)
    seq = r["sequential"]
    g = gemm_cost(HW.gpu, sub.tokens, sub.hidden, sub.k)
    S = sub.tokens * sub.hidden * 2
    parts = g.time_s + ring_rs_s(HW, S, sub.tp) + ring_ag_s(HW, S, sub.tp)
    assert seq.time_s == pytest.approx(parts, rel=1e-12)
    ideal = r["ideal"].time_s
    assert ideal == pytest.approx(max(g.time_s, ring_link_bound_s(HW, S, sub.tp))
                                  + ring_ag_s(HW, S, sub.tp))
    # the bound: nothing overlaps better than ideal (these GEMMs are compute-bound)
    assert g.compute_s >= g.memory_s
    for c in ("sw_overlap", "sw_overlap_16", "nmc_rs", "t3", "t3_mca"):
        assert r[c].time_s >= ideal * (1 - 1e-9), c
    # T3-MCA always beats sequential; plain T3 and software overlap may not (DRAM
    # contention under round-robin arbitration, docs "Contention"); MCA never loses to
    # plain T3; NMC alone does not overlap (same time as sequential up to DRAM bytes)
    assert r["t3_mca"].time_s < seq.time_s
    assert r["t3_mca"].time_s <= r["t3"].time_s * (1 + 1e-9)
    assert r["nmc_rs"].time_s <= seq.time_s * (1 + 1e-9)
    # overlap cannot beat Amdahl: at most 2x of the GEMM+RS part
    assert seq.time_s / ideal < 1.5 + 1e-9 or ring_rs_s(HW, S, sub.tp) > ring_link_bound_s(HW, S, sub.tp)


@pytest.mark.parametrize("sub", [s for s in SUBS if s.kind in ("OP", "FC2")], ids=_ids)
def test_monotonic_in_link_bandwidth(sub):
    """A faster link never slows a configuration whose GEMM is protected from the
    communication stream (sequential, ideal). Compute-first MCA protects it up to its
    starvation limit: a faster link brings more communication to force through, so it
    may cost the GEMM a little (at most 1%). Under FIFO sharing (t3, sw_overlap) a faster
    link may slow the GEMM once DRAM is oversubscribed, so for those only the range
    where GEMM + link traffic fit in DRAM is checked."""
    prev = None
    slack = {"sequential": 1e-9, "ideal": 1e-9, "t3_mca": 0.01, "t3": 1e-9, "sw_overlap": 1e-9}
    for bw in (37.5, 75, 150, 300, 600, 1200):
        r = evaluate(HW.replace(link={"bandwidth_GBps": bw}), sub)
        cur = {c: r[c].time_s for c in CONFIGS}
        if prev:
            for c in ("sequential", "ideal", "t3_mca") + (("t3", "sw_overlap") if bw <= 150 else ()):
                assert cur[c] <= prev[c] * (1 + slack[c]), (c, bw)
        prev = cur


@pytest.mark.parametrize("sub", SUBS[:8], ids=_ids)
def test_costlier_nmc_updates_never_help(sub):
    fast = evaluate(HW, sub)
    slow = evaluate(HW.replace(t3={"nmc_update_cost": 2.0}), sub)
    for c in ("t3", "t3_mca"):
        assert slow[c].time_s >= fast[c].time_s * (1 - 1e-12)


def test_more_compute_shrinks_gemm_not_the_link():
    sub = SUBS[1]
    a = evaluate(HW, sub)
    b = evaluate(HW.replace(gpu={"matrix_flops_per_cu_cycle": 2048}), sub)
    assert b["sequential"].gemm_s == pytest.approx(a["sequential"].gemm_s / 2, rel=1e-9)
    assert b["sequential"].ag_s == a["sequential"].ag_s


def test_share_fifo_and_mca():
    bw = 900e9
    assert share("fifo", 300e9, 300e9, bw) == (300e9, 300e9)
    g, c = share("fifo", 800e9, 400e9, bw)
    assert g + c == pytest.approx(bw) and g / c == pytest.approx(2.0)
    g, c = share("mca", 800e9, 400e9, bw, HW.t3)
    assert g == 800e9 and c <= bw - g + 1
    # a GEMM asking for everything still leaves the starvation-limit floor
    g, c = share("mca", 5e12, 400e9, bw, HW.t3)
    assert c == pytest.approx(bw / (HW.t3.mca_starvation_limit + 1))
    with pytest.raises(ValueError):
        share("lifo", 1.0, 1.0, bw)


@pytest.mark.parametrize("n", [2, 4, 8, 16, 32])
def test_traffic_accounting(n):
    I, S = 12e6, 64e6
    c = S / n
    b, t = baseline_traffic(I, S, n), t3_traffic(I, S, n)
    # baseline RS: (2n-1)C reads, nC writes; AG (n-1)C each way
    assert b.rs_read == pytest.approx((2 * n - 1) * c) and b.rs_write == pytest.approx(n * c)
    assert b.ag_read == b.ag_write == pytest.approx((n - 1) * c)
    # T3 saves: the output write minus the (n-1)C local UPDATEs (fusion), the (n+1)C
    # extra reads, and one write per chunk less: (n + 3) C in all; AG unchanged
    saved = (b.total - t.total)
    assert saved == pytest.approx((n + 3) * c)
    assert (t.ag_read, t.ag_write) == (b.ag_read, b.ag_write)
    assert t.read + t.write == pytest.approx(t.total)


def test_hardware_from_rtl_units():
    cfg = T3Config()
    h = hardware_from_rtl(cfg)
    line_GBps = 64 * 1.4
    assert h.link.bandwidth_GBps == pytest.approx(0.15 * line_GBps)
    assert h.link.latency_ns == pytest.approx(700 / 1.4)
    assert h.gpu.hbm_bandwidth_GBps == pytest.approx(line_GBps)
    assert h.t3.mca_queue_threshold == cfg.mca_queue_threshold


def test_mca_knobs_default_to_the_rtl_spec():
    cfg = T3Config()
    assert HW.t3.mem_queue_depth == cfg.mem_queue_depth
    assert HW.t3.mca_starvation_limit == cfg.mca_starvation_limit
