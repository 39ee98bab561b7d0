"""The collective library side: per-device T3 programming for the fused ring (the paper's
``remote_map`` / ``dma_map``).

Ring: device d sends to (d + 1) mod N. Chunk c is owned (fully reduced) at device c.
Device d computes chunk (d - s) mod N at stage s = 1..N. Every device gets one
:class:`~contract.program.Region` per chunk, at the same line addresses on every device
(``remote_base = dest_base = base``); what a region does depends on the chunk's stage:

===========  ==========  ===============  ===========  ==============  ===========
stage        producer    update_contribs  update_fire  store_contribs  store_fire
===========  ==========  ===============  ===========  ==============  ===========
1            REMOTE      0                NONE         1 (AG)          STORE / NONE
2 .. N-1     TRACKED     2                UPDATE       1 (AG)          STORE / NONE
N (own)      TRACKED     2                STORE (AG)   0               NONE
===========  ==========  ===============  ===========  ==============  ===========

``store_fire`` is NONE on the last all-gather hop (when the next device is the owner).
Without the fused all-gather (``fuse_allgather=False``) every store column is 0 / NONE
and the own chunk's ``update_fire`` is NONE. See docs/programming.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from .gemm import Chunk, GemmSpec, stage_chunk
from contract.program import DeviceProgram, Region, TileGeometry, wf_id
from contract.spec import PHASE_STORE, PHASE_UPDATE, FireOp, ProducerAction, T3Config

__all__ = ["chunk_stage", "chunk_region", "ring_programs", "tracker_entries_needed",
           "tracker_entries_min", "chunk_tiles", "DmaCommand",
           "dma_commands", "region_tiles", "schedule_rows"]


def chunk_stage(device: int, chunk: int, devices: int) -> int:
    """The stage (1..N) at which ``device`` computes ``chunk`` (inverse of stage_chunk)."""
    return (device - chunk - 1) % devices + 1


def chunk_region(cfg: T3Config, gemm: GemmSpec, chunk: Chunk, device: int, *,
                 fuse_allgather: bool = True) -> Region:
    """The region that programs ``chunk`` on ``device``."""
    n = gemm.devices
    geo = gemm.geometry(cfg.lanes)
    stage = chunk_stage(device, chunk.index, n)
    last_ag_hop = (device + 1) % n == chunk.index
    ag_fire = FireOp.STORE if fuse_allgather and not last_ag_hop else FireOp.NONE
    if stage == 1:
        roles = dict(producer=ProducerAction.REMOTE, update_contribs=0, update_fire=FireOp.NONE,
                     store_contribs=int(fuse_allgather), store_fire=ag_fire)
    elif stage < n:
        roles = dict(producer=ProducerAction.TRACKED, update_contribs=2, update_fire=FireOp.UPDATE,
                     store_contribs=int(fuse_allgather), store_fire=ag_fire)
    else:
        roles = dict(producer=ProducerAction.TRACKED, update_contribs=2,
                     update_fire=FireOp.STORE if fuse_allgather else FireOp.NONE,
                     store_contribs=0, store_fire=FireOp.NONE)
    return Region(base=chunk.base, limit=chunk.limit, remote_base=chunk.base, dest_base=chunk.base,
                  pitch=geo.pitch, outer_extent=chunk.outer_stop - chunk.outer_start,
                  inner_extent=geo.pitch, tile_outer=geo.wf_outer, tile_inner=geo.wf_inner_lines,
                  tile_outer0=chunk.outer_start // geo.wf_outer, tile_inner0=0, **roles)


def ring_programs(cfg: T3Config, gemm: GemmSpec, chunks: list[Chunk], *,
                  fuse_allgather: bool = True) -> list[DeviceProgram]:
    """One DeviceProgram per device: one region per chunk, in chunk (address) order."""
    n = gemm.devices
    return [DeviceProgram(device=d, next_device=(d + 1) % n,
                          regions=tuple(chunk_region(cfg, gemm, c, d, fuse_allgather=fuse_allgather)
                                        for c in chunks))
            for d in range(n)]


#: entries beyond a chunk's tiles and the producer's open tiles: one tile arriving on the
#: link and one fused all-gather tile (see :func:`tracker_entries_needed`)
TRACKER_SLACK = 2


def tracker_entries_needed(cfg: T3Config, gemm: GemmSpec, chunks: list[Chunk]) -> int:
    """Recommended tracker entries for the fused ring (docs/programming.md "Sizing"):
    the largest chunk's WF tiles + ``gemm.cus`` + :data:`TRACKER_SLACK`.

    Device d computes chunk c at stage s, but its upstream device computes c at stage
    s - 1 and sends it (remote stores, then DMA updates) during that stage, so the link
    half of every tile of a chunk arrives about one stage before the local half, and each
    tile keeps its entry until both halves are in. The table must therefore hold a whole
    chunk, plus the tiles open at that moment: up to ``cus`` the producer is writing (one
    per WG of a wave), one arriving on the link and one all-gather tile. Fewer entries
    cost stall cycles (STALL_CYCLES); fewer than :func:`tracker_entries_min` can stop
    the ring. More entries still stall when the producer outruns the link (it then runs
    ahead into tiles whose link half has not come), which only throttles the producer to
    the link's pace.
    """
    return chunk_tiles(cfg, gemm, chunks) + gemm.cus + TRACKER_SLACK


def tracker_entries_min(cfg: T3Config, gemm: GemmSpec, chunks: list[Chunk]) -> int:
    """The smallest chunk's WF tiles: with fewer tracker entries the fused ring stops in
    stage 1 unless the links buffer the rest of a chunk. Every chunk is some device's
    stage-1 chunk, sent whole to the next device, whose entries for it free only once
    its own producer reaches stage 2, i.e. once ITS stage-1 chunk was taken whole by the
    device after it. Measured: 2 devices, chunks of 20 tiles (40 lines), 16 entries and a
    16-line link FIFO stop; the same shape of 36-tile chunks with a 128-line link FIFO
    completes (the FIFO holds the whole 72-line chunk)."""
    return min(_tiles_per_chunk(cfg, gemm, chunks))


def chunk_tiles(cfg: T3Config, gemm: GemmSpec, chunks: list[Chunk]) -> int:
    """WF tiles of the largest chunk."""
    return max(_tiles_per_chunk(cfg, gemm, chunks))


def _tiles_per_chunk(cfg: T3Config, gemm: GemmSpec, chunks: list[Chunk]) -> list[int]:
    regions = (chunk_region(cfg, gemm, c, 0) for c in chunks)
    return [r.tiles_outer * r.tiles_inner for r in regions]


def region_tiles(cfg: T3Config, region: Region) -> Iterator[int]:
    """WF ids of every tile of ``region``, outer-major."""
    for to in range(region.tiles_outer):
        for ti in range(region.tiles_inner):
            yield wf_id(cfg, region.tile_outer0 + to, region.tile_inner0 + ti)


@dataclass(frozen=True)
class DmaCommand:
    """One pre-programmed DMA: when tile ``wf_id`` of phase ``phase`` (0 UPDATE, 1 STORE)
    reaches ``threshold`` counts on ``device``, read ``source`` and write it to
    ``dest_device`` starting at line ``dest_origin`` (same row pitch) with ``op``."""
    device: int
    region: int
    phase: int
    wf_id: int
    threshold: int
    source: TileGeometry
    dest_device: int
    dest_origin: int
    op: FireOp


def dma_commands(cfg: T3Config, program: DeviceProgram) -> list[DmaCommand]:
    """Every tracker entry the programming implies on one device (including fire NONE,
    which completes the tile without a transfer), region by region, phase 0 before 1."""
    out = []
    for ri, r in enumerate(program.regions):
        for phase, is_store in ((PHASE_UPDATE, False), (PHASE_STORE, True)):
            if r.contribs(is_store) == 0:
                continue
            for wf in region_tiles(cfg, r):
                geo = r.tile(cfg, wf)
                out.append(DmaCommand(device=program.device, region=ri, phase=phase, wf_id=wf,
                                      threshold=r.threshold(cfg, wf, is_store), source=geo,
                                      dest_device=program.next_device,
                                      dest_origin=r.translate(geo.origin, r.dest_base),
                                      op=r.fire(is_store)))
    return out


def schedule_rows(devices: int, *, fuse_allgather: bool = True) -> list[dict]:
    """The ring schedule as table rows (for docs and ``t3 trace``): per device and stage,
    which chunk it computes and what leaves the device for that chunk."""
    rows = []
    for d in range(devices):
        nxt = (d + 1) % devices
        for s in range(1, devices + 1):
            c = stage_chunk(d, s, devices)
            if s == 1:
                sends = f"GPU stores -> UPDATE to dev {nxt}"
            elif s < devices:
                sends = f"tile done (local + from dev {(d - 1) % devices}) -> DMA UPDATE to dev {nxt}"
            else:
                sends = (f"final -> DMA STORE to dev {nxt} (AG)" if fuse_allgather else "final (kept)")
            rows.append(dict(device=d, stage=s, chunk=c, sends=sends))
    return rows
