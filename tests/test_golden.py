"""The golden T3 ring model against the independent fold and the unfused baseline,
bit-exact, under random arrival interleavings; misuse errors; the CLI."""

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from contract.gemm import GemmSpec
from contract.sizing import config_for
from contract.spec import FireOp, Op, T3Config
from sim_models import fparith
from sim_models.baseline import run_baseline
from sim_models.fold import fold_allreduce, fold_chunk
from sim_models.golden import RingError, run_ring
from sim_models.trace import Trace, save_traces
from sim_models.workload import make_workload
from t3.cli import main

SEEDS = (None, 1, 2)          # None: issue-time order; ints: random interleavings


def spec(devices, dtype="fp16", layout="row", **kw):
    """Small shapes with clipped edge tiles, uneven chunks, uneven K, pad lanes (col)."""
    if layout == "row":
        d = dict(m=16 * devices + 5, n=24)
    else:
        d = dict(m=21, n=16 * devices + 5)
    d.update(k=3 * devices + 1, devices=devices, dtype=dtype, layout=layout,
             wg_tile=(16, 16), wf_tile=(8, 8), cus=3, seed=devices)
    d.update(kw)
    return GemmSpec(**d)


def build(g, fuse=True, partials=None, line_bytes=16):
    return make_workload(config_for(g, T3Config(line_bytes=line_bytes)), g, fuse_allgather=fuse,
                         partials=partials)


def bounds(w):
    return [(c.row_start, c.row_stop, c.col_start, c.col_stop) for c in w.chunks]


def check_against_references(w, seed):
    print(f"gemm={w.gemm} seed={seed}")
    cfg, g = w.cfg, w.gemm
    res = run_ring(cfg, w.programs, w.traces, seed=seed, gemm=g)
    ref = fold_allreduce(g.dtype, w.partials, bounds(w))
    ref_lines = w.geometry.to_lines(ref)
    for d in range(g.devices):
        assert np.array_equal(res.final_matrix(d), ref), f"device {d}"
        mem = res.memories[d]
        assert np.array_equal(mem[g.out_base:w.geometry.limit], ref_lines)     # incl. pad lanes
        assert not mem[:g.out_base].any() and not mem[w.geometry.limit:].any()
    base = run_baseline(cfg, g, w.partials)
    for d in range(g.devices):
        assert np.array_equal(res.memories[d], base.memories[d]), f"baseline, device {d}"
    assert res.order == [c.ring_order for c in w.chunks]
    return res


@pytest.mark.parametrize("layout", ["row", "col"])
@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp32"])
@pytest.mark.parametrize("devices", [2, 3, 4, 8])
def test_golden_equals_fold_and_baseline(devices, dtype, layout):
    w = build(spec(devices, dtype, layout))
    for seed in SEEDS:
        check_against_references(w, seed)


@pytest.mark.parametrize("tiles", [((16, 16), (8, 8)), ((32, 16), (16, 8)), ((8, 32), (8, 16)),
                                   ((24, 24), (8, 8))])
def test_tile_sizes(tiles):
    wg, wf = tiles
    for layout in ("row", "col"):
        g = spec(4, "fp16", layout, wg_tile=wg, wf_tile=wf, m=8 * 17, n=8 * 13)
        check_against_references(build(g), seed=7)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(devices=st.integers(2, 5), dtype=st.sampled_from(["fp16", "bf16", "fp32"]),
       layout=st.sampled_from(["row", "col"]), outer_wg=st.integers(0, 5),
       outer_extra=st.integers(0, 7), inner=st.integers(1, 5), k=st.integers(1, 20),
       wf_outer=st.sampled_from([4, 8]), wg_mult=st.integers(1, 2), cus=st.integers(1, 4),
       seed=st.integers(0, 2 ** 31))
def test_golden_property(devices, dtype, layout, outer_wg, outer_extra, inner, k, wf_outer, wg_mult,
                         cus, seed):
    wg_outer = wf_outer * wg_mult
    outer = (devices + outer_wg) * wg_outer - (outer_extra % wg_outer)
    inner_elems = 8 * inner - (3 if layout == "col" else 0)      # col: pad lanes
    tile = ((wf_outer, 8), (wg_outer, 8)) if layout == "row" else ((8, wf_outer), (8, wg_outer))
    m, n = (outer, inner_elems) if layout == "row" else (inner_elems, outer)
    g = GemmSpec(m=m, n=n, k=k, devices=devices, dtype=dtype, layout=layout, wf_tile=tile[0],
                 wg_tile=tile[1], cus=cus, seed=seed % 1000, out_base=seed % 5)
    check_against_references(build(g, line_bytes=16), seed)


def test_fold_order_matters():
    """The checks can fail: folding in another order gives different bits."""
    g = spec(4, "fp16", "row", k=200, n=64)
    w = build(g)
    res = run_ring(w.cfg, w.programs, w.traces, seed=3, gemm=g)
    got = res.final_matrix(0)
    c = w.chunks[0]
    rows, cols = slice(c.row_start, c.row_stop), slice(c.col_start, c.col_stop)
    reversed_fold = np.zeros_like(got[rows, cols])
    for dev in reversed(c.ring_order):
        reversed_fold = fparith.add_bits("fp16", reversed_fold, w.partials[dev][rows, cols])
    assert not np.array_equal(got[rows, cols], reversed_fold)
    assert np.array_equal(got[rows, cols], fold_chunk("fp16", w.partials, 0, rows, cols))


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp32"])
def test_special_values_random_bits(dtype):
    """Arbitrary bit patterns (NaN payloads, infinities, -0, subnormals, overflow)."""
    seed = 1234
    print(f"seed={seed}")
    g = spec(3, dtype, "col")
    rng = np.random.default_rng(seed)
    ud = fparith.uint_dtype(dtype)
    info = np.iinfo(ud)
    parts = [rng.integers(0, info.max, size=(g.m, g.n), dtype=ud, endpoint=True) for _ in range(3)]
    w = build(g, partials=parts)
    for s in (None, 5):
        res = run_ring(w.cfg, w.programs, w.traces, seed=s, gemm=g)
        ref = fold_allreduce(dtype, parts, bounds(w))
        for d in range(3):
            assert np.array_equal(res.final_matrix(d), ref)
    fmt = w.cfg.fmt
    assert np.isin(ref, [fmt.canonical_nan]).any()      # NaNs came out canonical


def test_baseline_negative_zero_corner():
    """Documented: all partials -0 -> T3 (zeroed memory) +0, baseline -0; nothing else differs."""
    g = spec(2, "fp16", "row")
    parts = [np.full((g.m, g.n), 0x3C00, np.uint16) for _ in range(2)]
    for p in parts:
        p[0, 0] = 0x8000
    w = build(g, partials=parts)
    res = run_ring(w.cfg, w.programs, w.traces, gemm=g)
    base = run_baseline(w.cfg, g, parts)
    diff = [np.argwhere(res.memories[d] != base.memories[d]).tolist() for d in range(2)]
    assert diff == [[[0, 0]], [[0, 0]]]
    assert res.memories[0][0, 0] == 0x0000 and base.memories[0][0, 0] == 0x8000
    assert res.final_matrix(1)[0, 1] == 0x4000          # 1 + 1


def test_no_allgather():
    g = spec(4, "bf16", "row")
    w = build(g, fuse=False)
    res = run_ring(w.cfg, w.programs, w.traces, seed=9, gemm=g)
    ref = fold_allreduce(g.dtype, w.partials, bounds(w))
    for c in w.chunks:
        held = res.final_matrix(c.owner)[c.row_start:c.row_stop, c.col_start:c.col_stop]
        assert np.array_equal(held, ref[c.row_start:c.row_stop, c.col_start:c.col_stop])
        stage1 = (c.index + 1) % 4            # computes it remotely: its copy stays zero
        assert not res.memories[stage1][c.base:c.limit].any()
    assert all(cnt["link_in_store"] == 0 for cnt in res.counts)


def test_fire_records_n4():
    g = spec(4, "fp16", "row")
    w = build(g)
    res = run_ring(w.cfg, w.programs, w.traces, seed=4, gemm=g)
    ref_lines = w.geometry.to_lines(fold_allreduce("fp16", w.partials, bounds(w)))
    for d in range(4):
        by_kind = {}
        for f in res.fires[d]:
            by_kind.setdefault((f.phase, f.op), set()).add(
                next(c.index for c in w.chunks if c.base <= f.src_addrs[0] < c.limit))
            if f.op != FireOp.NONE:
                assert f.dest_addrs == f.src_addrs
            else:
                assert f.dest_addrs == ()
            if (f.phase, f.op) in ((0, FireOp.STORE), (1, FireOp.STORE), (1, FireOp.NONE)):
                assert np.array_equal(f.data, ref_lines[list(f.src_addrs)])    # final values
        assert by_kind == {(0, FireOp.UPDATE): {(d - 2) % 4, (d - 3) % 4}, (0, FireOp.STORE): {d},
                           (1, FireOp.STORE): {(d - 1) % 4, (d - 2) % 4}, (1, FireOp.NONE): {(d + 1) % 4}}


# ---- misuse ----------------------------------------------------------------------------

def _edit(trace, **arrays):
    return dataclasses.replace(trace, **arrays)


def _local(t):
    return int(np.flatnonzero(t.route == 0)[0])


def test_misuse_count_beyond_threshold():
    w = build(spec(3))
    t = w.traces[0]
    i = _local(t)
    idx = np.append(np.arange(len(t)), i)
    dup = Trace(**{k: v[idx] for k, v in t.arrays().items()})
    dup.time[-1] = t.time[-1]
    with pytest.raises(RingError, match="count beyond threshold"):
        run_ring(w.cfg, w.programs, [dup] + w.traces[1:])


def test_misuse_incomplete_tile():
    w = build(spec(3))
    t = w.traces[1]
    keep = np.arange(len(t)) != _local(t)
    short = Trace(**{k: v[keep] for k, v in t.arrays().items()})
    with pytest.raises(RingError, match="never completed"):
        run_ring(w.cfg, w.programs, [w.traces[0], short, w.traces[2]], seed=1)


def test_misuse_wrong_wf_id():
    w = build(spec(3))
    t = w.traces[2]
    wf = t.wf_id.copy()
    wf[_local(t)] ^= 1
    with pytest.raises(RingError, match="not in WF tile"):
        run_ring(w.cfg, w.programs, [w.traces[0], w.traces[1], _edit(t, wf_id=wf)])


def test_misuse_untracked_arrival_and_unmapped_link():
    w = build(spec(3))
    progs = list(w.programs)
    regions = list(progs[1].regions)
    regions[0] = dataclasses.replace(regions[0], store_contribs=0, store_fire=FireOp.NONE)
    progs[1] = dataclasses.replace(progs[1], regions=tuple(regions))
    with pytest.raises(RingError, match="does not track STOREs"):
        run_ring(w.cfg, progs, w.traces, seed=2)
    progs = list(w.programs)
    # device 1 loses the region of chunk 2, which device 0 sends remotely at stage 1
    progs[1] = dataclasses.replace(progs[1], regions=progs[1].regions[:2])
    with pytest.raises(RingError, match="outside every region"):
        run_ring(w.cfg, progs, w.traces, seed=2)


def test_misuse_route_mismatch():
    w = build(spec(2))
    t = w.traces[0]
    route = t.route.copy()
    route[_local(t)] = 1
    with pytest.raises(RingError, match="route=1"):
        run_ring(w.cfg, w.programs, [_edit(t, route=route), w.traces[1]])


# ---- CLI ---------------------------------------------------------------------------------

def test_cli_trace_and_golden(tmp_path, capsys):
    out = tmp_path / "tr"
    assert main(["trace", "--devices", "3", "--m", "100", "--n", "64", "--k", "9", "--dtype", "bf16",
                 "--layout", "col", "--wg-tile", "32x16", "--wf-tile", "32x8", "--cus", "4",
                 "--seed", "5", "--out", str(out)]) == 0
    assert "ring order" in capsys.readouterr().out
    assert main(["golden", "--trace", str(out), "--seed", "3", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["pass"] and len(summary["checks"]) == 3
    assert summary["counts"][0]["producer_remote"] > 0
    assert main(["golden", "--trace", str(out)]) == 0
    assert capsys.readouterr().out.strip().endswith("PASS")


def test_cli_no_allgather(tmp_path, capsys):
    out = tmp_path / "tr"
    assert main(["trace", "--devices", "4", "--m", "128", "--n", "64", "--k", "6", "--out", str(out),
                 "--wg-tile", "32x32", "--wf-tile", "16x32", "--no-allgather", "--dtype", "fp32"]) == 0
    capsys.readouterr()
    assert main(["golden", "--trace", str(out), "--seed", "8", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["pass"] and not summary["fused_allgather"]
    assert "golden == fold (owner chunks)" in summary["checks"]


def test_cli_golden_detects_mismatch(tmp_path, capsys):
    # a header that claims a fused all-gather over RS-only programming: chunks never spread
    out = tmp_path / "tr"
    assert main(["trace", "--devices", "2", "--m", "64", "--n", "64", "--k", "4", "--out", str(out),
                 "--wg-tile", "32x32", "--no-allgather"]) == 0
    h = json.loads((out / "trace.json").read_text())
    h["fuse_allgather"] = True
    (out / "trace.json").write_text(json.dumps(h))
    capsys.readouterr()
    assert main(["golden", "--trace", str(out)]) == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.parametrize("argv,expect", [
    (["trace", "--m", "64", "--n", "64", "--k", "4", "--out", "x", "--wg-tile", "64"], "ROWSxCOLS"),
    (["trace", "--m", "64", "--n", "60", "--k", "4", "--out", "x"], "multiple of lanes"),
    (["trace", "--m", "64", "--n", "64", "--k", "4", "--out", "x", "--line-bytes", "48"], "line_bytes=48"),
    (["trace", "--m", "0", "--n", "64", "--k", "4", "--out", "x"], "must be >= 1"),
    (["golden", "--trace", "/nonexistent/dir"], "cannot read"),
])
def test_cli_bad_args(argv, expect, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert expect in err and "\n" not in err


def test_trace_json_header_is_documented_format(tmp_path):
    g = spec(2)
    w = build(g)
    save_traces(tmp_path, w)
    h = json.loads((tmp_path / "trace.json").read_text())
    assert (h["format"], h["version"]) == ("t3-trace", 1)
    assert set(h) == {"format", "version", "config", "gemm", "fuse_allgather", "programs", "devices"}
    assert h["programs"][0]["regions"][0]["producer"] in ("REMOTE", "TRACKED")
    assert all(np.all(t.op == Op.UPDATE) for t in w.traces)
