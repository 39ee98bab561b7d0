"""End-to-end ring tests: a GEMM's stores become a fused reduce-scatter + all-gather on N
T3 units, compared bit for bit with the golden model (which tests/test_golden.py checks
against the independent numpy fold), under Icarus and Verilator.

Builds are keyed by (devices, dtype, line size, memory depth, ...): every (N, dtype)
pair below is one build per simulator, reused by its scenarios."""

import pytest

from verif.conftest import sims
from verif.csr_driver import arbiter_settings
from verif.ring_scenario import RingScenario, prepare, run_scenario
from verif.runner import SIMULATORS
from verif.soak import DMA_QUEUE_DEPTH

#: (devices, dtype): every N of the issue and every dtype, each pair one build per
#: simulator (the full cross product is 12 builds per simulator, too slow for the suite;
#: `make soak` draws the other pairs). The 2-device build has the DRAM memory
#: (:data:`DRAM_DEVICES`), the others the ideal one.
MATRIX = [(2, "fp32"), (3, "bf16"), (4, "fp16"), (8, "bf16")]
#: rings of this size are built with ``memory="dram"`` (one build serves the DRAM tests)
DRAM_DEVICES = 2


def ring_profile(devices: int, dtype: str) -> dict:
    """The suite's ring of ``devices`` x ``dtype``: 8-byte lines (4 lanes of fp16/bf16, 2
    of fp32); small tiles so every device has several WF tiles per chunk, edge tiles
    clipped, chunks uneven for N = 3; fixed hardware sizes so that every scenario of one
    (devices, dtype) shares one build (other tests reuse it: tests/test_report_parts.py)."""
    m = 8 * devices + (4 if devices == 3 else 0)
    return dict(devices=devices, dtype=dtype, m=m, n=16, k=8, wg_tile=(8, 8), wf_tile=(4, 4),
                line_bytes=8, cus=2, wg_cycles=8, link_latency=10, link_bw=0.5,
                tracker_entries=16, mem_depth_lines=512 if devices == 8 else 256,
                link_fifo=128, dma_queue_depth=DMA_QUEUE_DEPTH,
                memory="dram" if devices == DRAM_DEVICES else "ideal")


def _scenario(devices: int, dtype: str, **kw) -> RingScenario:
    return RingScenario(**{**ring_profile(devices, dtype), "modes": ("t3",), **kw})


#: (devices, simulator) of MATRIX run by `make test-slow` only: the 8-device ring's
#: Verilator build is the suite's largest C++ compile (minutes); its Icarus case stays
SLOW_CASES = {(8, "verilator")}


def _matrix_params():
    return [pytest.param(sim, n, d, id=f"{sim}-n{n}-{d}",
                         marks=[pytest.mark.xdist_group(f"ring-{sim}"),
                                *([pytest.mark.slow] if (n, sim) in SLOW_CASES else [])])
            for sim in SIMULATORS for n, d in MATRIX]


@pytest.mark.cocotb
@pytest.mark.parametrize("sim,devices,dtype", _matrix_params())
def test_fused_allreduce_bit_exact(sim, devices, dtype, tmp_path):
    scn = _scenario(devices, dtype, seed=devices * 7 + len(dtype), jitter=3, backpressure=0.3)
    res = run_scenario(scn, sim=sim, workdir=tmp_path)["t3"]
    assert res["lines_checked"] > 0
    assert all(d["irq"] == 0 for d in res["devices"])


@pytest.mark.cocotb
@sims("ring")
@pytest.mark.parametrize("layout", ["row", "col"])
def test_layouts_and_small_tracker(sim, layout, tmp_path):
    # 4 devices, column- and row-major; a 16-entry tracker with more live tiles than
    # entries exercises the stall path end to end.
    scn = _scenario(4, "fp16", layout=layout, m=32, n=32, wg_tile=(8, 8), wf_tile=(4, 4),
                    seed=11, jitter=2)
    res = run_scenario(scn, sim=sim, workdir=tmp_path)["t3"]
    assert res["lines_checked"] == 4 * scn.config().mem_depth_lines     # whole memories


#: the paper's link scaled to the RTL clock (one memory line per cycle = 1 TB/s):
#: 500 ns at 1.4 GHz = 700 cycles; 150 GB/s / 1 TB/s = 0.15 lines per cycle
PAPER_LINK = dict(link_latency=700, link_bw=0.15)


@pytest.mark.cocotb
@sims("ring")
def test_t3_beats_unfused_baseline(sim, tmp_path):
    """Both schedules on identical hardware, same final memories (checked bit for bit
    inside the testbench); with the paper's link, T3's fused RS + AG finishes first."""
    scn = _scenario(4, "fp16", m=32, n=32, modes=("t3", "baseline"), seed=5, **PAPER_LINK)
    res = run_scenario(scn, sim=sim, workdir=tmp_path)
    t3, base = res["t3"]["cycles"], res["baseline"]["cycles"]
    assert t3 < base, (t3, base)
    # the baseline cannot beat its own critical path: 2 (N-1) serialized ring steps, each
    # at least one link latency
    assert base > 2 * 3 * PAPER_LINK["link_latency"]


@pytest.mark.cocotb
@sims("ring")
def test_background_gemm_reads(sim, tmp_path):
    """Issue #5: background GEMM operand READs in every device's compute stream (0.25 per
    cycle, over the output buffer) in both schedules: the final memories stay bit-exact
    (checked inside the testbench) and every READ issued is answered and discarded.
    Same hardware parameters as the n2-fp32 case above: no extra build."""
    scn = _scenario(2, "fp32", modes=("t3", "baseline"), seed=3, gemm_read_rate=0.25)
    counts = prepare(scn, tmp_path)["gemm_reads"]["counts"]
    res = run_scenario(scn, sim=sim, workdir=tmp_path, prepared=True)
    for mode in ("t3", "baseline"):
        got = [d["gemm_reads"] for d in res[mode]["devices"]]
        assert got == counts and all(c > 0 for c in counts), (mode, got, counts)
        assert all(d["irq"] == 0 for d in res[mode]["devices"])
        assert res[mode]["lines_checked"] > 0


@pytest.mark.cocotb
@sims("ring")
@pytest.mark.parametrize("policy", ["fifo", "mca"])
def test_arbiter_policy_reaches_every_device(sim, policy, tmp_path):
    """Issue #15: the arbiter policy is a run-time register (ARB), so scenarios that
    differ only in policy share a build (RingScenario.hw_key leaves it out: this runs on
    the n2-fp32 build above), and the testbench writes ARB in every mode. Each device's
    ARB reads back the scenario's policy, MCA queue threshold and starvation limit (the
    testbench also fails on a mismatch), and only MCA forces starvation grants."""
    scn = _scenario(2, "fp32", modes=("t3", "baseline"), seed=4, policy=policy)
    other = _scenario(2, "fp32", policy="mca" if policy == "fifo" else "fifo")
    assert scn.hw_key() == other.hw_key(), "the policy must not select a build"
    want = {k: v for fields in arbiter_settings(scn.config()).values() for k, v in fields.items()}
    assert want["policy"] != arbiter_settings(other.config())["ARB"]["policy"]
    res = run_scenario(scn, sim=sim, workdir=tmp_path)
    for mode in scn.modes:
        assert res[mode]["arbiter"] == [want] * scn.devices, (mode, res[mode]["arbiter"])
        if policy == "fifo":
            assert all(d["starved_grants"] == 0 for d in res[mode]["devices"]), mode
    print(f"{policy}: cycles " + ", ".join(f"{m} {res[m]['cycles']}" for m in scn.modes))


@pytest.mark.cocotb
@sims("ring")
@pytest.mark.parametrize("policy", ["fifo", "mca"])
def test_dram_memory_closed_loop_gemm(sim, policy, tmp_path):
    """Issue #15: the units' memory is the DRAM controller (HBM2 timing) and the producer
    is the closed-loop GEMM; both schedules stay bit-exact (checked inside the testbench),
    every closed-loop READ is answered, the GEMM waited for some of them, the DRAM saw
    row misses (ACTs), and with MCA every device measured its threshold from the
    intensity of its own compute stream: the threshold in use is the rule
    (hw.mca_threshold.auto_threshold) applied to the count the hardware reports."""
    from hw.mca_threshold import auto_threshold
    scn = _scenario(DRAM_DEVICES, "fp32", gemm_intensity=0.3, k_steps=2, wg_cycles=32,
                    policy=policy, modes=("t3", "baseline"), seed=8)
    assert scn.closed_loop
    expect = prepare(scn, tmp_path)
    reads = expect["closed_loop"]["reads"]
    cfg = scn.config()
    res = run_scenario(scn, sim=sim, workdir=tmp_path, prepared=True)
    for mode in ("t3", "baseline"):
        devs = res[mode]["devices"]
        assert [d["gemm_reads"] for d in devs] == reads and all(reads), (mode, reads)
        assert all(d["irq"] == 0 for d in devs), mode
        # the counters count the run only; the baseline's run may find every row it
        # touches still open from the buffer zeroing before it, the fused run cannot
        assert mode == "baseline" or all(d["activates"] > 0 for d in devs), mode
        assert sum(d["gemm_stall_cycles"] for d in devs) > 0, mode
        assert all(d["gemm_read_latency_max"] >= scn.config().dram.read_latency for d in devs)
        for d in devs:
            if policy == "mca":
                assert d["mca_measured"] == 1, (mode, d)
                assert d["mca_threshold_used"] == auto_threshold(
                    d["mca_window_reqs"], cfg.mca_window_log2, cfg.mem_queue_depth), (mode, d)
            else:
                assert d["mca_measured"] == 0 and cfg.mca_window_log2 == 0, (mode, d)
    print(f"{policy}: cycles t3 {res['t3']['cycles']}, baseline {res['baseline']['cycles']}")


#: (devices, dtype) of the stall test: the DRAM build and an ideal-memory build of MATRIX
STALL_BUILDS = [(DRAM_DEVICES, "fp32"), (3, "bf16")]


@pytest.mark.cocotb
@sims("ring")
@pytest.mark.parametrize("devices,dtype", STALL_BUILDS, ids=[f"n{n}-{d}" for n, d in STALL_BUILDS])
def test_random_stalls_during_the_run(sim, devices, dtype, tmp_path):
    """Issue #18: seeded random stalls (probability 0.3 per cycle) on every link's
    delivery and every memory's request handshake through the whole fused run and the
    baseline, on the suite's builds (the probability is a run-time input: same hw_key).
    Both modes stay bit-exact with every predicted counter (checked inside the
    testbench), every gate held some transfers, the same scenario without stalls held
    nothing, and on the ideal memory the stalls cost cycles."""
    scn = _scenario(devices, dtype, seed=21, stall=0.3, modes=("t3", "baseline"))
    calm = _scenario(devices, dtype, seed=21)
    assert scn.hw_key() == calm.hw_key(), "the stall probability must not select a build"
    res = run_scenario(scn, sim=sim, workdir=tmp_path / "stalls")
    ref = run_scenario(calm, sim=sim, workdir=tmp_path / "calm")["t3"]
    for mode in scn.modes:
        devs = res[mode]["devices"]
        assert all(d["irq"] == 0 for d in devs), mode
        for key in ("link_stall_cycles", "mem_stall_cycles"):
            assert all(d[key] > 0 for d in devs), (mode, key, [d[key] for d in devs])
    assert all(d["link_stall_cycles"] == d["mem_stall_cycles"] == 0 for d in ref["devices"])
    if not scn.closed_loop and scn.memory == "ideal":
        # the ideal memory serves a request per cycle whatever the order, so closing its
        # handshake 30% of the cycles must cost cycles; with DRAM timing a stall can as
        # well reorder requests into more row hits (seen: 777 -> 775 cycles)
        assert res["t3"]["cycles"] > ref["cycles"], (res["t3"]["cycles"], ref["cycles"])
    print(f"n{devices}-{dtype}: t3 cycles {ref['cycles']} -> {res['t3']['cycles']} with stalls; "
          f"held per device: links {[d['link_stall_cycles'] for d in res['t3']['devices']]}, "
          f"memories {[d['mem_stall_cycles'] for d in res['t3']['devices']]}")
