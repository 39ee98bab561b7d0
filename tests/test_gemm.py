"""The GEMM's output geometry and chunks (contract.gemm), the sizing rules (contract.sizing),
the producer model's partials (sim_models.gemm), producer traces and timing."""

import ml_dtypes
import numpy as np
import pytest

from contract.gemm import GemmSpec, split_chunks
from contract.program import split_wf_id
from contract.sizing import check_config, config_for, fire_queue_needed
from contract.spec import ConfigError, T3Config
from sim_models import fparith
from sim_models.gemm import compute_partials
from sim_models.workload import make_workload


def small_cfg(dtype="fp16", line_bytes=16):
    return T3Config(dtype=dtype, line_bytes=line_bytes)


def test_fire_queue_sizing():
    # 256 x 512 fp16 on 64-byte lines (32 lanes), WF 32 x 32: 8 x 16 = 128 WF tiles; 4
    # devices -> every fire register + queue full needs 4 x (depth + 1) tokens > 128 when
    # depth >= 32 (docs/programming.md "Sizing")
    g = GemmSpec(m=256, n=512, k=8, devices=4, wg_tile=(64, 64), wf_tile=(32, 32))
    base = T3Config(line_bytes=64, mem_depth_lines=16)
    assert fire_queue_needed(g, g.geometry(32)) == 32
    cfg = config_for(g, base)
    assert cfg.dma_queue_depth == 32
    check_config(cfg, g)
    # never shrunk below the configured depth; 3 devices: 128 // 3 = 42
    assert config_for(g, base.replace(dma_queue_depth=64)).dma_queue_depth == 64
    assert config_for(g.replace(devices=3), base).dma_queue_depth == 42
    # a tiny output keeps the default
    small = GemmSpec(m=16, n=16, k=4, devices=2, wg_tile=(8, 8), wf_tile=(4, 8))
    assert config_for(small, small_cfg().replace(ring_devices=2)).dma_queue_depth == 8


@pytest.mark.parametrize("layout", ["row", "col"])
def test_element_addresses(layout):
    # element (i, j) -> (line, lane), written out independently of OutputGeometry
    g = GemmSpec(m=13 if layout == "col" else 12, n=16, k=3, devices=2, layout=layout,
                 wg_tile=(8, 8), wf_tile=(8, 8))
    lanes = 8
    geo = g.geometry(lanes)
    mat = np.arange(g.m * g.n, dtype=np.uint16).reshape(g.m, g.n) + 1
    lines = geo.to_lines(mat)
    for i in range(g.m):
        for j in range(g.n):
            if layout == "row":
                line, lane = i * (g.n // lanes) + j // lanes, j % lanes
            else:
                line, lane = j * -(-g.m // lanes) + i // lanes, i % lanes
            assert lines[line, lane] == mat[i, j]
    assert (lines != 0).sum() == g.m * g.n          # pad lanes are +0
    assert np.array_equal(geo.from_lines(lines), mat)


def test_chunks_uneven_and_aligned():
    g = GemmSpec(m=8 * 11 + 3, n=16, k=5, devices=4, wg_tile=(8, 8), wf_tile=(4, 8))
    geo = g.geometry(8)
    ch = split_chunks(g, geo)
    # 12 WG rows (the last one clipped to 3 rows) -> 3,3,3,3 WG rows
    assert [(c.row_start, c.row_stop) for c in ch] == [(0, 24), (24, 48), (48, 72), (72, 91)]
    g = g.replace(m=8 * 10)
    ch = split_chunks(g, g.geometry(8))
    assert [(c.row_stop - c.row_start) // 8 for c in ch] == [3, 3, 2, 2]
    assert [c.ring_order for c in ch][1] == (2, 3, 0, 1)
    assert all(c.base == c.row_start * 2 and c.limit == c.row_stop * 2 for c in ch)
    with pytest.raises(ConfigError, match="only 3 WG rows"):
        split_chunks(g.replace(m=24), g.replace(m=24).geometry(8))


def test_chunks_column_major():
    g = GemmSpec(m=10, n=40, k=5, devices=3, layout="col", wg_tile=(8, 8), wf_tile=(8, 4))
    ch = split_chunks(g, g.geometry(8))
    assert [(c.row_start, c.row_stop, c.col_start, c.col_stop) for c in ch] == \
        [(0, 10, 0, 16), (0, 10, 16, 32), (0, 10, 32, 40)]
    assert [(c.base, c.limit) for c in ch] == [(0, 32), (32, 64), (64, 80)]


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp32"])
def test_partials_are_rounded_fp32_products(dtype):
    g = GemmSpec(m=8, n=8, k=11, devices=3, dtype=dtype, seed=5, wg_tile=(8, 8), wf_tile=(8, 8))
    parts = compute_partials(g)
    assert [k1 - k0 for k0, k1 in g.k_slices()] == [4, 4, 3]
    total = sum(fparith.to_float(dtype, p) for p in parts)
    # the inputs are +-j/64, so sum of partials ~ A @ B: check magnitude and variety only
    assert np.abs(total).max() > 0.1
    assert len({int(x) for p in parts for x in p.ravel()}) > 20
    for p in parts:
        assert p.dtype == fparith.uint_dtype(dtype) and p.shape == (8, 8)
        neg_zero = {"fp16": 0x8000, "bf16": 0x8000, "fp32": 0x80000000}[dtype]
        assert not (p == neg_zero).any()
    # one rounding of the fp32 product: recompute it here from the documented inputs
    rng = np.random.default_rng(g.seed)
    mag_a = rng.integers(1, 65, size=(g.m, g.k)).astype(np.float32) / 64
    a = np.where(rng.random((g.m, g.k)) < 0.5, -mag_a, mag_a).astype(np.float32)
    mag_b = rng.integers(1, 65, size=(g.k, g.n)).astype(np.float32) / 64
    b = np.where(rng.random((g.k, g.n)) < 0.5, -mag_b, mag_b).astype(np.float32)
    ftype = {"fp16": np.float16, "bf16": ml_dtypes.bfloat16, "fp32": np.float32}[dtype]
    for (k0, k1), p in zip(g.k_slices(), parts):
        want = (a[:, k0:k1] @ b[k0:k1, :]).astype(ftype).view(p.dtype)
        assert np.array_equal(want, p)


def test_same_seed_same_partials_different_seed_differs():
    g = GemmSpec(m=8, n=8, k=9, devices=2, wg_tile=(8, 8), wf_tile=(8, 8), seed=7)
    a, b = compute_partials(g), compute_partials(g)
    c = compute_partials(g.replace(seed=8))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("kw,field", [
    (dict(m=0), "m="), (dict(k=-1), "k="), (dict(devices=1), "devices="),
    (dict(dtype="fp8"), "dtype="), (dict(layout="diag"), "layout="),
    (dict(wg_tile=(10, 8)), "wg_tile="), (dict(wf_tile=(8,)), "wf_tile="),
    (dict(cus=0), "cus="), (dict(seed=-3), "seed="), (dict(m=True), "m="),
])
def test_gemm_spec_errors(kw, field):
    base = dict(m=16, n=16, k=4, devices=2, wg_tile=(8, 8), wf_tile=(4, 8))
    base.update(kw)
    with pytest.raises(ConfigError) as e:
        GemmSpec(**base)
    assert field in str(e.value) and "\n" not in str(e.value)


def test_geometry_and_config_errors():
    g = GemmSpec(m=16, n=20, k=4, devices=2, wg_tile=(8, 8), wf_tile=(4, 8))
    with pytest.raises(ConfigError, match="multiple of lanes=8"):
        g.geometry(8)
    g = GemmSpec(m=16, n=16, k=4, devices=2, wg_tile=(8, 8), wf_tile=(4, 4))
    with pytest.raises(ConfigError, match="line direction"):
        g.geometry(8)
    g = GemmSpec(m=16, n=16, k=4, devices=2, wg_tile=(8, 8), wf_tile=(4, 8))
    with pytest.raises(ConfigError, match="ring_devices"):
        check_config(small_cfg(), g)
    with pytest.raises(ConfigError, match="mem_depth_lines"):
        check_config(small_cfg().replace(ring_devices=2, mem_depth_lines=16), g.replace(m=64))
    with pytest.raises(ConfigError, match="wf_outer_bits"):
        check_config(config_for(g, small_cfg().replace(wf_outer_bits=1)), g)


def test_config_for():
    g = GemmSpec(m=1000, n=64, k=4, devices=5, dtype="bf16", wg_tile=(8, 32), wf_tile=(8, 32))
    cfg = config_for(g, T3Config(mem_depth_lines=16))
    assert cfg.ring_devices == 5 and cfg.dtype == "bf16" and cfg.line_bytes == 64
    assert cfg.mem_depth_lines == 2048          # 1000 rows x 2 lines, next power of two
    check_config(cfg, g)


@pytest.mark.parametrize("layout", ["row", "col"])
def test_producer_trace_order_and_timing(layout):
    g = GemmSpec(m=40, n=48, k=6, devices=3, layout=layout, wg_tile=(16, 16), wf_tile=(8, 8),
                 cus=2, wg_cycles=10)
    cfg = config_for(g, small_cfg())
    w = make_workload(cfg, g)
    geo = w.geometry
    for d, t in enumerate(w.traces):
        assert np.all(np.diff(t.time.astype(np.int64)) >= 0)
        assert int(t.time[0]) == g.wg_cycles          # first wave: compute, then emit
        # every output line exactly once, data = this device's partial
        assert sorted(t.addr.tolist()) == list(range(geo.total_lines))
        assert np.array_equal(geo.from_lines(t.data[np.argsort(t.addr)]), w.partials[d])
        # stage order: the chunk of each request's line, in trace order, is (d-1, d-2, ..., d)
        chunk_of = np.searchsorted([c.limit for c in w.chunks], t.addr, side="right")
        stages = [int(x) for i, x in enumerate(chunk_of) if i == 0 or x != chunk_of[i - 1]]
        assert stages == [(d - s) % g.devices for s in range(1, g.devices + 1)]
        # wf id from element coordinates of the line (independent of Region)
        for i in range(0, len(t), 7):
            outer, inner_line = divmod(int(t.addr[i]), geo.pitch)
            lanes = cfg.lanes
            fo, fi = (g.wf_tile if layout == "row" else g.wf_tile[::-1])
            assert split_wf_id(cfg, int(t.wf_id[i])) == (outer // fo, inner_line * lanes // fi)
        # route: remote exactly for the stage-1 chunk
        stage1 = w.chunks[(d - 1) % g.devices]
        remote = (t.addr >= stage1.base) & (t.addr < stage1.limit)
        assert np.array_equal(t.route == 1, remote)
        # one WG's lines come one per cycle
        for wg in np.unique(t.wg_id)[:3]:
            times = t.time[t.wg_id == wg].astype(np.int64)
            assert np.array_equal(np.diff(times), np.ones(len(times) - 1))


def test_waves_over_cus():
    # 4 WGs per stage chunk, 2 CUs: two waves per stage, each wg_cycles + lines long
    g = GemmSpec(m=64, n=16, k=2, devices=2, wg_tile=(8, 16), wf_tile=(8, 8), cus=2, wg_cycles=5)
    cfg = config_for(g, small_cfg())
    t = make_workload(cfg, g).traces[0]
    lines_per_wg = 8 * 2
    starts = sorted({int(t.time[t.wg_id == wg].min()) for wg in np.unique(t.wg_id)})
    assert starts == [5 + i * (5 + lines_per_wg) for i in range(4)]
    # within a cycle, the wave's WGs are interleaved round-robin
    first = t.wg_id[t.time == 5].tolist()
    assert len(first) == 2 and first[0] != first[1]
