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
and the own chunk's ``update_fire`` is NONE. See docs/programming.md. How many tracker
entries and DMA queue slots this programming needs: :mod:`contract.sizing`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from contract.gemm import Chunk, GemmSpec, stage_chunk
from contract.program import DeviceProgram, Region, TileGeometry, wf_id
from contract.spec import PHASE_STORE, PHASE_UPDATE, FireOp, ProducerAction, T3Config

__all__ = ["chunk_stage", "chunk_region", "ring_programs", "DmaCommand", "dma_commands",
           "region_tiles", "schedule_rows"]


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
