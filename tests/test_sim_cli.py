"""`t3 sim` and `t3 bench` front ends: one-line errors with exit status 2, the --dump
layout (raw bits, row- and column-major) checked against the independent numpy fold,
the exit status of a failing comparison, and one tiny real ring run under Icarus with
--json and --dump."""

import json
from pathlib import Path

import numpy as np
import pytest

from sim_models.fold import fold_allreduce
from contract.gemm import ring_order
from sim_models.gemm import compute_partials
from contract.spec import ConfigError
from t3 import cmd_sim
from t3.cli import main
from verif.ring_scenario import RingScenario, prepare

#: a 2-device ring small enough for Icarus in a few seconds (8-byte lines)
TINY = ["--devices", "2", "--m", "16", "--n", "16", "--k", "8", "--wg-tile", "8x8",
        "--wf-tile", "4x4", "--cus", "2", "--wg-cycles", "8", "--line-bytes", "8",
        "--link-latency", "10", "--link-bw", "0.5"]

UINT = {"fp16": np.uint16, "bf16": np.uint16, "fp32": np.uint32}


def _run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# ---- argument errors: one line, exit 2, before anything is built -------------------------

@pytest.mark.parametrize("argv,needle", [
    (["--devices", "9"], "2..8 devices"),
    (["--devices", "1"], "2..8 devices"),
    (["--m", "0"], "--m"),
    (["--wg-tile", "8"], "ROWSxCOLS"),
    (["--link-bw", "2"], "link_lines_per_cycle"),
    (["--link-bw", "0"], "--link-bw"),
    (["--backpressure", "1"], "--backpressure"),
    (["--jitter", "-1"], "--jitter"),
    (["--dtype", "fp8"], "--dtype"),
    (["--policy", "lru"], "--policy"),
    (["--sim", "xsim"], "--sim"),
    (["--modes", "foo"], "must be one of t3, baseline"),
    (["--modes", ""], "--modes"),
    (["--m", "20", "--n", "16"], "WG rows"),            # 4 devices need 4 WG rows of 16
    (["--n", "6"], "multiple of lanes"),                  # a line holds 4 fp16
    (["--wg-tile", "16x16", "--wf-tile", "16x12"], "wf_tile"),
])
def test_bad_arguments_one_line_exit_2(capsys, tmp_path, argv, needle):
    rc, out, err = _run(capsys, "sim", *argv, "--workdir", str(tmp_path / "w"))
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("t3") and "error:" in err, err
    assert needle in err
    assert "Traceback" not in err and out == ""
    assert not (tmp_path / "w" / "sim.log").exists()          # failed before any simulator


def test_modes_follow_the_testbench(capsys, tmp_path, monkeypatch):
    # a testbench without ring_baseline: t3 only by default, baseline refused
    from verif import ring_scenario
    monkeypatch.setattr(ring_scenario, "available_modes", lambda: ("t3",))
    assert cmd_sim._modes(None, True) == (("t3",), ("t3",))
    rc, _, err = _run(capsys, "sim", "--modes", "baseline", "--workdir", str(tmp_path))
    assert rc == 2 and "not implemented" in err and err.count("\n") == 1
    monkeypatch.setattr(ring_scenario, "available_modes", lambda: ("t3", "baseline"))
    assert cmd_sim._modes(None, True)[0] == ("t3", "baseline")
    assert cmd_sim._modes(None, False)[0] == ("t3",)          # baseline is RS + AG
    assert cmd_sim._modes("baseline,t3", True)[0] == ("t3", "baseline")


def test_baseline_needs_the_allgather(capsys, tmp_path):
    rc, _, err = _run(capsys, "sim", "--no-allgather", "--modes", "t3,baseline",
                      "--workdir", str(tmp_path))
    assert rc == 2 and "--no-allgather" in err and err.count("\n") == 1


def test_dump_path_that_is_a_file(capsys, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    rc, _, err = _run(capsys, "sim", *TINY, "--dump", str(f), "--workdir", str(tmp_path / "w"))
    assert rc == 2 and "not a directory" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv,needle", [(["--sizes", "huge"], "--sizes"),
                                         (["--sim", "xsim"], "--sim"),
                                         (["--sizes", ","], "empty")])
def test_bench_bad_arguments(capsys, argv, needle):
    rc, out, err = _run(capsys, "bench", *argv)
    assert rc == 2 and needle in err and err.count("\n") == 1 and out == ""


# ---- the dump, without a simulator: a readback made from the golden memories -------------

def _fake_run(workdir: Path, scn: RingScenario, corrupt: bool = False) -> None:
    """Prepare ``scn`` and write the readback the RTL must produce (the golden memories'
    output lines), optionally with one flipped bit."""
    expect = prepare(scn, workdir)
    lo, hi = expect["out_lines"]
    g = np.load(workdir / "golden.npz")
    mems = {f"mem{d}": g[f"mem{d}"][lo:hi].copy() for d in range(scn.devices)}
    if corrupt:
        mems["mem1"][hi - lo - 1, 0] ^= 1
    np.savez(workdir / "readback_t3.npz", **mems)


def _check_dump(dump: Path, scn: RingScenario) -> None:
    """The exact layout, dtypes and shapes; partials equal the GEMM model's products;
    every final buffer equals the numpy fold (computed here from the dumped files)."""
    n, ud = scn.devices, UINT[scn.dtype]
    want = {"chunks.json"} | {f"device{d}/{f}" for d in range(n) for f in ("partial.npy", "final.npy")}
    got = {str(p.relative_to(dump)) for p in dump.rglob("*") if p.is_file()}
    assert got == want
    doc = json.loads((dump / "chunks.json").read_text())
    assert set(doc) == {"dtype", "devices", "chunks"}
    assert doc["dtype"] == scn.dtype and doc["devices"] == n and len(doc["chunks"]) == n
    keys = {"row_start", "row_stop", "col_start", "col_stop", "owner", "order"}
    for c in doc["chunks"]:
        assert set(c) == keys
        assert sorted(c["order"]) == list(range(n)) and c["order"][-1] == c["owner"]
        assert c["order"] == ring_order(c["owner"], n)
    # the chunks tile the M x N matrix exactly once
    cover = np.zeros((scn.m, scn.n), int)
    for c in doc["chunks"]:
        cover[c["row_start"]:c["row_stop"], c["col_start"]:c["col_stop"]] += 1
    assert (cover == 1).all()
    partials = [np.load(dump / f"device{d}" / "partial.npy") for d in range(n)]
    finals = [np.load(dump / f"device{d}" / "final.npy") for d in range(n)]
    for p, f in zip(partials, finals):
        assert p.dtype == ud and f.dtype == ud
        assert p.shape == f.shape == (scn.m, scn.n)
    for p, q in zip(partials, compute_partials(scn.gemm())):
        assert np.array_equal(p, q)
    ref = fold_allreduce(scn.dtype, partials, [(c["row_start"], c["row_stop"], c["col_start"],
                                                c["col_stop"]) for c in doc["chunks"]])
    assert not np.array_equal(ref, partials[0])          # the reduction did something
    for d, f in enumerate(finals):
        assert np.array_equal(f, ref), f"device {d}: final.npy differs from the numpy fold"


@pytest.mark.parametrize("layout,dtype,devices", [("row", "fp16", 4), ("col", "bf16", 3),
                                                  ("col", "fp32", 2)])
def test_dump_layout_and_fold(tmp_path, layout, dtype, devices):
    # column-major with M not a multiple of the lanes: padded lines must be dropped
    m = 20 if layout == "col" else 32
    scn = RingScenario(devices=devices, m=m, n=32, k=8, dtype=dtype, layout=layout,
                       wg_tile=(8, 8), wf_tile=(4, 4), line_bytes=8, cus=2, seed=4,
                       tracker_entries=32)   # col fp32 x 2: chunks of 20 WF tiles
    _fake_run(tmp_path / "w", scn)
    out = cmd_sim.load_outputs(tmp_path / "w")
    assert cmd_sim.fold_check(out) is None
    cmd_sim.write_dump(out, tmp_path / "dump")
    _check_dump(tmp_path / "dump", scn)


def test_fold_check_finds_a_flipped_bit(tmp_path):
    scn = RingScenario(devices=2, m=16, n=16, k=8, wg_tile=(8, 8), wf_tile=(4, 4), line_bytes=8)
    _fake_run(tmp_path, scn, corrupt=True)
    msg = cmd_sim.fold_check(cmd_sim.load_outputs(tmp_path))
    assert msg is not None and msg.startswith("device 1:") and "numpy fold" in msg


def test_failing_comparison_exits_1_with_the_message(capsys, tmp_path, monkeypatch):
    from verif import ring_scenario

    def fail(scn, **kw):
        ring_scenario.prepare(scn, kw["workdir"])
        raise ring_scenario.ScenarioFailure("ring_t3: t3: memories differ from the golden model: "
                                            "device 1: 1 elements differ")
    monkeypatch.setattr(ring_scenario, "run_scenario", fail)
    rc, out, err = _run(capsys, "sim", *TINY, "--sim", "icarus", "--json",
                        "--workdir", str(tmp_path))
    assert rc == 1
    assert "memories differ" in err and err.count("\n") == 1
    doc = json.loads(out)
    assert doc["verified"] is False and "memories differ" in doc["error"]
    assert doc["t3_cycles"] is None and doc["speedup"] is None


# ---- one real run under Icarus ------------------------------------------------------------

@pytest.mark.cocotb
@pytest.mark.xdist_group("ring-icarus")
def test_tiny_icarus_run_json_and_dump(capsys, tmp_path):
    dump = tmp_path / "dump"
    rc, out, err = _run(capsys, "sim", *TINY, "--sim", "icarus", "--modes", "t3,baseline", "--seed", "3",
                        "--jitter", "2",
                        "--backpressure", "0.3", "--json", "--dump", str(dump),
                        "--workdir", str(tmp_path / "w"))
    assert rc == 0, err
    doc = json.loads(out)                 # stdout is pure JSON: the simulator wrote to sim.log
    for key in ("baseline_cycles", "t3_cycles", "speedup", "devices", "verified", "scenario"):
        assert key in doc
    assert doc["verified"] is True and doc["error"] is None
    assert isinstance(doc["t3_cycles"], int) and doc["t3_cycles"] > 0
    if "baseline" in doc["modes_run"]:
        assert doc["speedup"] == pytest.approx(doc["baseline_cycles"] / doc["t3_cycles"])
    else:
        assert doc["baseline_cycles"] is None and doc["speedup"] is None
    s = doc["scenario"]
    assert (s["devices"], s["m"], s["n"], s["k"], s["seed"], s["jitter"]) == (2, 16, 16, 8, 3, 2)
    assert len(doc["devices"]) == 2
    for d, row in enumerate(doc["devices"]):
        u = row["t3"]
        assert row["device"] == d
        assert 0 < u["mem_busy"] <= 1 and 0 < u["link_busy"] <= 1
        assert u["tracker_fires"] > 0
        # mem_busy is the counter over the run's cycles (the bench counts from the run's start)
        assert u["mem_busy"] == pytest.approx(u["counters"]["mem_busy_cycles"] / doc["t3_cycles"])
        # the baseline's buffer zeroing and programming before its run are not counted
        # (they once made its utilisation exceed 100%)
        for mode in set(doc["modes_run"]) & set(row):
            assert 0 < row[mode]["mem_busy"] <= 1 and 0 <= row[mode]["queue_full"] <= 1, mode
    scn = RingScenario(devices=2, m=16, n=16, k=8, wg_tile=(8, 8), wf_tile=(4, 4), line_bytes=8,
                       cus=2, wg_cycles=8, link_latency=10, seed=3)
    # the whole memory of every device is compared (the output buffer is 16 x 16 / 4 lines)
    assert doc["lines_checked"]["t3"] == 2 * scn.config().mem_depth_lines >= 2 * 16 * 16 // 4
    _check_dump(dump, scn)
    assert (tmp_path / "w" / "sim.log").stat().st_size > 0


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", [pytest.param(s, marks=[
    pytest.mark.xdist_group(f"ring-waves-{s}"),
    # its own Verilator build (traced): 90 s of the suite; make test-slow runs it
    *([pytest.mark.slow] if s == "verilator" else [])]) for s in ("icarus", "verilator")])
def test_waves_are_recorded(capsys, tmp_path, sim):
    """--waves: a separate wave-tracing build; the FST lands in the run directory."""
    rc, out, err = _run(capsys, "sim", *TINY, "--sim", sim, "--modes", "t3", "--waves",
                        "--json", "--workdir", str(tmp_path / "w"))
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["verified"] is True
    fst = Path(doc["waves"])
    assert fst == tmp_path / "w" / f"t3_ring_{sim}.fst"
    data = fst.read_bytes()
    # an FST file starts with its header block (type 0, 329-byte length field) and holds
    # the value changes of a run of some hundreds of cycles: far more than a header
    assert data[0] == 0 and int.from_bytes(data[1:9], "big") == 329, data[:9]
    assert len(data) > 4096


def test_fixed_dma_queue_below_the_ring_rule_is_rejected():
    # 4 devices, 32 x 32 fp16 on 8-byte lines, WF 4 x 4: 8 x 8 = 64 WF tiles -> >= 16
    kw = dict(devices=4, m=32, n=32, k=8, wg_tile=(8, 8), wf_tile=(4, 4), line_bytes=8)
    assert RingScenario(**kw, dma_queue_depth=16).config().dma_queue_depth == 16
    assert RingScenario(**kw).config().dma_queue_depth == 16
    with pytest.raises(ConfigError, match=r"dma_queue_depth=15: the fused ring of this GEMM "
                                          r"needs >= 16"):
        RingScenario(**kw, dma_queue_depth=15).config()
