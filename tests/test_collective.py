"""The collective library's programming: roles per stage, and that thresholds and DMA
commands add up (every line is covered exactly once per contribution)."""

from collections import Counter

import numpy as np
import pytest

from contract.gemm import GemmSpec, split_chunks
from contract.sizing import chunk_tiles, config_for, tracker_entries_needed
from contract.spec import FireOp, Op, ProducerAction as PA, T3Config
from sim_models.collective import chunk_region, dma_commands, region_tiles, schedule_rows
from sim_models.golden import run_ring
from sim_models.workload import make_workload

R, T = PA.REMOTE, PA.TRACKED
N_, U, S = FireOp.NONE, FireOp.UPDATE, FireOp.STORE


def workload(devices=4, fuse=True, **kw):
    spec = dict(m=16 * devices, n=32, k=7, devices=devices, wg_tile=(16, 16), wf_tile=(8, 8), cus=3)
    spec.update(kw)
    g = GemmSpec(**spec)
    return make_workload(config_for(g, T3Config(line_bytes=16)), g, fuse_allgather=fuse)


def roles(w, d):
    return [(r.producer, r.update_contribs, r.update_fire, r.store_contribs, r.store_fire)
            for r in w.programs[d].regions]


def test_roles_n4_fused():
    # written out by hand from the schedule: device d computes chunk (d - s) mod 4 at stage s
    w = workload(4)
    # device 1: chunk 0 = stage 1 (remote), chunk 1 = own, chunk 2 = stage 3, chunk 3 = stage 2;
    # all-gather into device 1: chunk 0 from dev 0 (forward), chunk 3 (forward), chunk 2 (last hop)
    assert roles(w, 1) == [(R, 0, N_, 1, S), (T, 2, S, 0, N_), (T, 2, U, 1, N_), (T, 2, U, 1, S)]
    # device 3: chunk 2 stage 1, chunk 3 own, chunk 0 stage 3 (last AG hop: next is 0), chunk 1 stage 2
    assert roles(w, 3) == [(T, 2, U, 1, N_), (T, 2, U, 1, S), (R, 0, N_, 1, S), (T, 2, S, 0, N_)]
    for d in range(4):
        assert w.programs[d].next_device == (d + 1) % 4
        for c, r in enumerate(w.programs[d].regions):
            assert (r.base, r.limit) == (w.chunks[c].base, w.chunks[c].limit)
            assert r.remote_base == r.dest_base == r.base


def test_roles_n2_and_unfused():
    w = workload(2)
    assert roles(w, 0) == [(T, 2, S, 0, N_), (R, 0, N_, 1, N_)]
    assert roles(w, 1) == [(R, 0, N_, 1, N_), (T, 2, S, 0, N_)]
    w = workload(3, fuse=False)
    assert roles(w, 0) == [(T, 2, N_, 0, N_), (T, 2, U, 0, N_), (R, 0, N_, 0, N_)]


def expected_arrivals(w):
    """Per device and phase: Counter of line -> arrivals, from the traces and from what the
    upstream device's programming sends (not from the golden model)."""
    n = w.gemm.devices
    cfg = w.cfg
    arr = {(d, p): Counter() for d in range(n) for p in (0, 1)}
    for d in range(n):
        prog, t = w.programs[d], w.traces[d]
        nxt = prog.next_device
        for a, route, op in zip(t.addr.tolist(), t.route.tolist(), t.op.tolist()):
            _, r = prog.region_of(a)
            phase = int(op == Op.STORE)
            if route == 1:
                arr[(nxt, phase)][r.translate(a, r.remote_base)] += 1
            elif r.producer == PA.TRACKED:
                arr[(d, phase)][a] += 1
        for cmd in dma_commands(cfg, prog):
            if cmd.op != FireOp.NONE:
                phase = int(cmd.op == FireOp.STORE)
                for a in cmd.source.addresses():
                    arr[(cmd.dest_device, phase)][cmd.dest_origin + a - cmd.source.origin] += 1
    return arr


@pytest.mark.parametrize("kw", [
    dict(devices=4),
    dict(devices=3, m=16 * 3 + 5, wf_tile=(8, 16), wg_tile=(16, 16)),   # edge tiles, uneven chunks
    dict(devices=2, layout="col", m=21, n=40, wg_tile=(8, 8), wf_tile=(8, 8)),
    dict(devices=5, m=90, n=24, wg_tile=(16, 8), wf_tile=(4, 8), fuse=False),
    dict(devices=8, m=130, wg_tile=(16, 16), wf_tile=(16, 8)),
])
def test_thresholds_and_dma_cover_every_line_once_per_contribution(kw):
    w = workload(**kw)
    cfg, n = w.cfg, w.gemm.devices
    arr = expected_arrivals(w)
    total_lines = w.geometry.total_lines
    for d in range(n):
        prog = w.programs[d]
        for phase, is_store in ((0, False), (1, True)):
            covered = Counter()
            thresholds = 0
            for r in prog.regions:
                tiles = list(region_tiles(cfg, r))
                for wf in tiles:
                    geo = r.tile(cfg, wf)
                    lines = list(geo.addresses())
                    covered.update({a: r.contribs(is_store) for a in lines})
                    assert len(lines) == geo.lines
                    assert all(r.tile_of_addr(cfg, a) == wf for a in lines)
                    thresholds += r.threshold(cfg, wf, is_store)
                if r.contribs(is_store):        # the tiles partition the region's lines
                    tile_lines = sorted(a for wf in tiles for a in r.tile(cfg, wf).addresses())
                    assert tile_lines == list(range(r.base, r.limit))
            covered = +covered
            assert covered == arr[(d, phase)], f"device {d} phase {phase}"
            assert thresholds == sum(arr[(d, phase)].values())
        # every line: exactly 2 RS contributions where tracked, 1 AG store unless owned/unfused
        rs = arr[(d, 0)]
        assert sum(rs.values()) == 2 * (total_lines - w.chunks[(d - 1) % n].lines)
        ag = arr[(d, 1)]
        assert sum(ag.values()) == ((total_lines - w.chunks[d].lines) if w.fuse_allgather else 0)
    # the golden run completes every entry it was given and sends what the commands say
    res = run_ring(cfg, w.programs, w.traces, seed=11)
    for d in range(n):
        sent = sum(c.source.lines for c in dma_commands(cfg, w.programs[d]) if c.op != FireOp.NONE)
        assert res.counts[d]["dma_reads"] == sent
        assert res.counts[d]["link_out"] == sent + int(w.traces[d].route.sum())
        assert res.counts[d]["completions"] == len(dma_commands(cfg, w.programs[d]))


def test_dma_commands_fields():
    w = workload(3)
    cmds = dma_commands(w.cfg, w.programs[0])
    ops = Counter((c.phase, c.op) for c in cmds)
    tiles_per_chunk = len(list(region_tiles(w.cfg, w.programs[0].regions[0])))
    # device 0: chunk 2 remote (AG STORE forward), chunk 1 middle (RS UPDATE + AG last hop NONE),
    # chunk 0 own (RS -> AG STORE)
    assert ops == {(0, FireOp.UPDATE): tiles_per_chunk, (0, FireOp.STORE): tiles_per_chunk,
                   (1, FireOp.NONE): tiles_per_chunk, (1, FireOp.STORE): tiles_per_chunk}
    for c in cmds:
        assert c.dest_device == 1 and c.dest_origin == c.source.origin
        assert c.threshold == c.source.lines * (2 if c.phase == 0 else 1)


def test_schedule_rows_n4():
    rows = schedule_rows(4)
    assert [r["chunk"] for r in rows if r["device"] == 0] == [3, 2, 1, 0]
    assert [r["chunk"] for r in rows if r["stage"] == 1] == [3, 0, 1, 2]
    # at every stage the chunk device d sends is the one device d+1 computes next stage
    for r in rows:
        if r["stage"] < 4:
            nxt = [q for q in rows if q["device"] == (r["device"] + 1) % 4 and q["stage"] == r["stage"] + 1]
            assert nxt[0]["chunk"] == r["chunk"]
    assert np.all([("DMA STORE" in r["sends"]) == (r["stage"] == 4) for r in rows])


def test_tracker_entries_needed():
    # 256 x 512 on 32 lanes, 4 devices: chunks of 64 rows = 2 x 16 WF tiles of 32 x 32;
    # + 4 open tiles (cus) + 1 arriving + 1 all-gather
    g = GemmSpec(m=256, n=512, k=8, devices=4, wg_tile=(64, 64), wf_tile=(32, 32), cus=4)
    cfg = config_for(g, T3Config(line_bytes=64))
    chunks = split_chunks(g, g.geometry(cfg.lanes))
    assert chunk_tiles(cfg, g, chunks) == 32
    assert tracker_entries_needed(cfg, g, chunks) == 38
    # uneven chunks (5 WG rows over 3 devices: 2, 2, 1 rows of 64): the largest counts
    g = g.replace(m=320, devices=3, cus=2)
    chunks = split_chunks(g, g.geometry(cfg.lanes))
    assert chunk_tiles(cfg, g, chunks) == 4 * 16
    assert tracker_entries_needed(cfg, g, chunks) == 64 + 2 + 2


@pytest.mark.parametrize("layout", ["row", "col"])
def test_sizing_counts_the_programmed_tiles(layout):
    # contract.sizing counts a chunk's WF tiles from the geometry; the programming's
    # region for the chunk must have exactly that tile grid (clipped edge tiles included)
    g = GemmSpec(m=44, n=40, k=8, devices=3, layout=layout, wg_tile=(8, 8), wf_tile=(8, 8), cus=2)
    cfg = config_for(g, T3Config(line_bytes=8))
    geo = g.geometry(cfg.lanes)
    for c in split_chunks(g, geo):
        r = chunk_region(cfg, g, c, device=0)
        assert r.tiles_outer * r.tiles_inner == geo.chunk_wf_tiles(c) == len(list(region_tiles(cfg, r)))
