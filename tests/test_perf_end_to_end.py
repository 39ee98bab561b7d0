"""End-to-end projection (sim_models.perf.end_to_end): the layer's inventory of GEMMs,
the TP sublayers each phase runs, Amdahl's law between the sublayer and the layer, and
the communication share."""

import math

import pytest

from contract.spec import ConfigError
from sim_models.perf import end_to_end as e2e
from sim_models.perf.hardware import load_hardware
from sim_models.perf.sublayer import evaluate
from sim_models.perf.workloads import Workloads, load_workloads

HW = load_hardware()
WL = load_workloads()


@pytest.fixture(scope="module")
def rows():
    return e2e.projection_rows(HW, WL)


@pytest.fixture(scope="module")
def layers():
    return e2e.project(HW, WL)


def test_every_model_tp_and_phase(rows):
    pairs = {(m.name, t) for m in WL.models for t in m.tp}
    assert {(r["model"], r["tp"], r["phase"]) for r in rows} == \
        {(m, t, p) for m, t in pairs for p in ("training", "inference")}


@pytest.mark.parametrize("phase", ["training", "inference"])
def test_gemm_inventory_flops(phase):
    # a transformer layer's GEMM FLOPs: forward 2 T H^2 (q + 1 + 2 f) / t (QKV, OP, FC1,
    # FC2), training three times that (each forward GEMM has an input and a weight
    # gradient of the same size); the TP sublayers plus other_gemms must add up to it
    T, H, t, f, q = 8192, 3072, 8, 4, 3
    fwd = 2.0 * T * H * H * (q + 1 + 2 * f) / t
    want = fwd * (3 if phase == "training" else 1)
    sub = {"OP": H // t, "FC2": f * H // t, "FC1_bwd": f * H // t, "IP_bwd": q * H // t}
    got = sum(2.0 * T * H * sub[k] for k in e2e.TP_SUBLAYERS[phase])
    got += sum(2.0 * m * n * k for _, m, n, k in
               e2e.other_gemms(phase, tokens=T, hidden=H, tp=t, fc=f, qkv=q))
    assert got == pytest.approx(want, rel=1e-12)


def test_tp_part_is_the_sublayer_models(layers):
    subs = {(s.model, s.tp, s.kind): s for s in WL.instances()}
    for x in layers:
        if x.model != "T-NLG" or x.tp != 16:
            continue
        want = sum(evaluate(HW, subs[(x.model, x.tp, k)])[x.config].time_s
                   for k in e2e.TP_SUBLAYERS[x.phase])
        assert x.tp_s == pytest.approx(want, rel=1e-12)


def test_amdahl(rows, layers):
    # the layer speeds up by Amdahl's law from its TP part's own speedup
    for r in rows:
        lay = {x.config: x for x in layers
               if (x.model, x.tp, x.phase) == (r["model"], r["tp"], r["phase"])}
        f = r["tp_sublayer_share"]
        for cfg in ("t3", "t3_mca", "ideal"):
            s = lay["sequential"].tp_s / lay[cfg].tp_s
            assert r[f"{cfg}_speedup"] == pytest.approx(1.0 / ((1 - f) + f / s), rel=1e-9)
            assert 1.0 <= r[f"{cfg}_speedup"] < s + 1e-12


def test_ordering_and_shares(rows):
    for r in rows:
        assert r["t3_speedup"] <= r["t3_mca_speedup"] * (1 + 1e-9)
        assert r["t3_mca_speedup"] <= r["ideal_speedup"] * (1 + 1e-9)
        assert 0 < r["comm_share"] < r["tp_sublayer_share"] < 1
        assert 0 <= r["t3_mca_comm_share"] < r["comm_share"]
        parts = r["tp_sublayers_us"] + r["other_gemm_us"] + r["attention_us"] \
            + r["elementwise_us"]
        assert parts == pytest.approx(r["sequential_layer_us"], rel=1e-12)


def test_inference_is_cheaper_and_more_communication_bound(rows):
    by = {(r["model"], r["tp"], r["phase"]): r for r in rows}
    for (m, t, p), r in by.items():
        if p == "inference":
            tr = by[(m, t, "training")]
            assert r["sequential_layer_us"] < tr["sequential_layer_us"] / 2
            assert r["comm_share"] > tr["comm_share"]


def test_bad_inputs():
    with pytest.raises(ValueError, match="phase"):
        e2e.other_gemms("decode", tokens=8, hidden=8, tp=2, fc=4, qkv=3)
    wl = Workloads(WL.tokens, WL.models, tuple(s for s in WL.sublayers if s.name != "IP_bwd"),
                   source="x.toml", sequence_length=WL.sequence_length)
    with pytest.raises(ConfigError, match="x.toml: .*missing IP_bwd"):
        e2e.project(HW, wl)
    from dataclasses import replace
    m0 = replace(WL.models[0], name="NoSuchModel")
    wl = Workloads(WL.tokens, (m0,), WL.sublayers, source="x.toml",
                   sequence_length=WL.sequence_length)
    with pytest.raises(ConfigError, match="NoSuchModel"):
        e2e.project(HW, wl)


def test_figure(tmp_path):
    from sim_models.perf.figures import write_figure
    png, csv = write_figure("end_to_end", tmp_path, HW, WL)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = csv.read_text().splitlines()
    assert len(lines) == 1 + 14 and "t3_mca_speedup" in lines[0]
    assert math.isfinite(float(lines[1].split(",")[lines[0].split(",").index("comm_share")]))
