"""End-to-end ring tests: a GEMM's stores become a fused reduce-scatter + all-gather on N
T3 units, compared bit for bit with the golden model (which tests/test_golden.py checks
against the independent numpy fold), under Icarus and Verilator.

Builds are keyed by (devices, dtype, line size, memory depth, ...): every (N, dtype)
pair below is one build per simulator, reused by its scenarios."""

import dataclasses

import pytest

from verif.conftest import sims
from verif.csr_driver import arbiter_settings
from verif.ring_scenario import GoldenMismatch, RingScenario, prepare, run_scenario
from verif.runner import SIMULATORS
from verif.soak import profile

#: (devices, dtype): every ring size of the RTL (N = 2..8), each pair one build per
#: simulator, every dtype on two or three sizes (fp16: 4, 5; bf16: 3, 7, 8; fp32: 2, 6);
#: the full cross product (21 builds per simulator) is too slow for the suite, `make soak`
#: draws more pairs. The 2-device build has the DRAM memory (:data:`DRAM_DEVICES`), the
#: others the ideal one.
MATRIX = [(2, "fp32"), (3, "bf16"), (4, "fp16"), (5, "fp16"), (6, "fp32"), (7, "bf16"),
          (8, "bf16")]
#: rings of this size are built with ``memory="dram"`` (one build serves the DRAM tests)
DRAM_DEVICES = 2
#: the RingScenario fields of a hardware profile (verif.soak.profile) that ring_profile gives
PROFILE_FIELDS = ("devices", "dtype", "m", "n", "k", "wg_tile", "wf_tile", "line_bytes", "cus",
                  "wg_cycles", "link_latency", "link_bw", "tracker_entries", "mem_depth_lines",
                  "link_fifo", "dma_queue_depth")


def ring_profile(devices: int, dtype: str) -> dict:
    """The suite's ring of ``devices`` x ``dtype``: the soak's profile (verif.soak.profile:
    8-byte lines, i.e. 4 lanes of fp16/bf16 and 2 of fp32; small tiles so every device has
    several WF tiles per chunk, edge tiles clipped, chunks uneven for N = 3, 5, 6, 7; fixed
    hardware sizes so that every scenario of one (devices, dtype) shares one build, also
    with the soak and other tests: tests/test_report_parts.py), with the DRAM memory for
    N = :data:`DRAM_DEVICES`, else the ideal one."""
    prof = profile(devices, dtype)
    return {**{f: getattr(prof, f) for f in PROFILE_FIELDS},
            "memory": "dram" if devices == DRAM_DEVICES else "ideal"}


def _scenario(devices: int, dtype: str, **kw) -> RingScenario:
    return RingScenario(**{**ring_profile(devices, dtype), "modes": ("t3",), **kw})


#: (devices, simulator) of MATRIX run by `make test-slow` only: the Verilator builds of
#: the 5- to 8-device rings are the suite's largest C++ compiles (minutes each); their
#: Icarus cases stay
SLOW_CASES = {(n, "verilator") for n in (5, 6, 7, 8)}


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


#: the fields of a mode's result that depend on the design only (cycles and every counter
#: per device), not on the simulator or the testbench's wall clock
SIM_INDEPENDENT = ("cycles", "devices", "sim_cycles_total", "gemm_cycles", "step_end_cycles",
                   "lines_checked")


@pytest.mark.cocotb
@pytest.mark.parametrize("devices,dtype", STALL_BUILDS, ids=[f"n{n}-{d}" for n, d in STALL_BUILDS])
def test_same_cycles_on_both_simulators(devices, dtype, tmp_path):
    """One scenario (random stalls 0.3 on every link and memory handshake, producer jitter,
    readback backpressure, both modes) under Icarus and Verilator, on the builds of the
    stall test (same hw_key: no new build): the same cycles and the same value of every
    counter of every device, per mode. Icarus once left combinational logic at X and ran
    the 2-device DRAM ring in 734 cycles against Verilator's 814 (docs/simulation.md)."""
    scn = _scenario(devices, dtype, seed=33, stall=0.3, jitter=4, backpressure=0.3,
                    modes=("t3", "baseline"))
    assert scn.hw_key() == _scenario(devices, dtype).hw_key(), "must reuse the suite's build"
    res = {sim: run_scenario(scn, sim=sim, workdir=tmp_path / sim) for sim in SIMULATORS}
    ica, ver = (res[s] for s in SIMULATORS)
    for mode in scn.modes:
        a = {k: ica[mode][k] for k in SIM_INDEPENDENT if k in ica[mode]}
        b = {k: ver[mode][k] for k in SIM_INDEPENDENT if k in ver[mode]}
        assert a.keys() == b.keys() and {"cycles", "devices"} <= a.keys(), (mode, a.keys())
        assert a["cycles"] == b["cycles"], (mode, a["cycles"], b["cycles"])
        for d, (x, y) in enumerate(zip(a["devices"], b["devices"], strict=True)):
            diff = {k: (x[k], y.get(k)) for k in x if x[k] != y.get(k)}
            assert not diff and x.keys() == y.keys(), \
                f"{mode}: device {d}: counters differ ({'/'.join(SIMULATORS)}): {diff}"
        assert a == b, mode
        # the stalls acted (else this would compare two calm runs)
        assert all(dev["link_stall_cycles"] > 0 for dev in a["devices"]), mode
    print(f"n{devices}-{dtype}: " + ", ".join(f"{m} {ica[m]['cycles']} cycles" for m in scn.modes)
          + f" on both {' and '.join(SIMULATORS)}")


@pytest.mark.parametrize("devices,dtype", MATRIX, ids=[f"n{n}-{d}" for n, d in MATRIX])
def test_prepare_checks_the_golden_model_against_the_fold(devices, dtype, tmp_path, monkeypatch):
    """Issue #18: prepare() compares the golden model's memories with the independent numpy
    fold, for every suite ring with the fused all-gather and with the reduce-scatter only:
    the true model passes; one flipped bit in a device's output (the owner's reduced chunk,
    a gathered copy) or a stray write outside the output window raises GoldenMismatch
    naming the device and line, and prepare writes no expect.json. No simulator."""
    import numpy as np
    import verif.ring_scenario as rs
    from sim_models.workload import make_workload
    for fuse in (True, False):
        scn = _scenario(devices, dtype, fuse_allgather=fuse,
                        modes=("t3", "baseline") if fuse else ("t3",))
        expect = prepare(scn, tmp_path / f"true-{fuse}")               # the real model passes
        cfg = scn.config()
        wl = make_workload(cfg, scn.gemm(), fuse_allgather=fuse)
        golden = rs.run_ring(cfg, wl.programs, wl.traces, seed=scn.seed, gemm=wl.gemm)
        saved = np.load(tmp_path / f"true-{fuse}" / "golden.npz")
        assert all(np.array_equal(saved[f"mem{d}"], m) for d, m in enumerate(golden.memories))
        lo, hi = expect["out_lines"]
        last = expect["chunks"][-1]                    # chunk N-1, owned by device N-1
        assert last["owner"] == devices - 1 and lo <= last["base"] < last["limit"] <= hi
        cases = {"the owner's reduced chunk": (devices - 1, last["base"])}
        if fuse:
            cases["a gathered copy"] = (0, last["limit"] - 1)
        depth = cfg.mem_depth_lines
        if hi < depth or lo > 0:
            cases["outside the output window"] = (1, hi if hi < depth else lo - 1)
        for what, (dev, line) in cases.items():
            mems = [m.copy() for m in golden.memories]
            mems[dev][line, 0] ^= 1
            bad = dataclasses.replace(golden, memories=mems)
            with pytest.raises(GoldenMismatch, match=rf"device {dev}: 1 lanes differ; first at "
                                                     rf"line {line} lane 0"):
                rs.check_golden_against_fold(wl, bad)
        # the same through prepare(): its golden model's result corrupted
        dev, line = cases["the owner's reduced chunk"]

        def corrupted(*a, real=rs.run_ring, **kw):
            res = real(*a, **kw)
            res.memories[dev][line, 0] ^= 1
            return res
        with monkeypatch.context() as mp:
            mp.setattr(rs, "run_ring", corrupted)
            work = tmp_path / f"bad-{fuse}"
            with pytest.raises(GoldenMismatch, match=rf"device {dev}: 1 lanes differ"):
                prepare(scn, work)
            assert not (work / "expect.json").exists()
    # without the all-gather, a non-owner's copy of a chunk is no output: not checked
    mems = [m.copy() for m in golden.memories]
    mems[0][last["base"], 0] ^= 1
    rs.check_golden_against_fold(wl, dataclasses.replace(golden, memories=mems))
