"""Sizing rules: how large a T3 unit must be to run a GEMM's fused ring.

* :func:`config_for` sizes a :class:`~contract.spec.T3Config` for a
  :class:`~contract.gemm.GemmSpec` (element type, ring size, memory depth, DMA queue);
  :func:`check_config` says whether a given configuration can run it.
* :func:`fire_queue_needed`: the DMA queue depth (fired tiles) below which the fused ring
  can stop with every fire register and DMA queue full.
* :func:`tracker_entries_needed` / :func:`tracker_entries_min`: tracker table sizes for
  the fused ring, a PERFORMANCE guide only (the table is a cache over backing counters:
  any size runs any GEMM; fewer entries cost misses, spills and fills);
  :func:`chunk_tiles` counts a chunk's WF tiles. The backing counters must cover the
  output's lines (``tracker_counters``, checked by :func:`check_config`).

The reasoning behind each rule is in docs/programming.md, "Sizing: tracker entries and
DMA queue". Units: tracker entries and queue slots count WF tiles; memory in lines.
"""

from __future__ import annotations

from .gemm import Chunk, GemmSpec, OutputGeometry
from .spec import MIN_MEM_DEPTH_LINES, ConfigError, T3Config

__all__ = ["config_for", "check_config", "fire_queue_needed", "TRACKER_SLACK",
           "tracker_entries_needed", "tracker_entries_min", "chunk_tiles"]


def _next_pow2(x: int) -> int:
    return 1 << max(0, (x - 1).bit_length())


def fire_queue_needed(gemm: GemmSpec, geo: OutputGeometry) -> int:
    """Fired tiles each device's DMA queue must hold so that the fused ring cannot stop
    with every fire register and DMA queue full (docs/programming.md, "Sizing").

    Every WF tile of the output is one token that travels the ring: it enters as stage-1
    stores, becomes a fire (a tile in a fire register or DMA queue) at each hop and dies
    at the last all-gather hop; a fire needs the tile's link half, so a token is in at
    most one place. A wait cycle through the fire queues needs every device's fire
    register and queue full, i.e. ``devices x (depth + 1)`` tokens, which is impossible
    when that exceeds the output's WF tiles: ``depth >= tiles // devices``."""
    return max(1, geo.wf_grid[0] * geo.wf_grid[1] // gemm.devices)


def config_for(gemm: GemmSpec, base_cfg: T3Config | None = None) -> T3Config:
    """``base_cfg`` (default: the paper's) with the GEMM's dtype (same ``line_bytes``),
    ``ring_devices``, a power-of-two ``mem_depth_lines`` that holds the output, a
    ``dma_queue_depth`` of at least :func:`fire_queue_needed` and, when ``tracker_counters``
    is set (not 0 = one per line of memory), enough backing counters for the output's
    lines (none is shrunk)."""
    base = base_cfg or T3Config()
    cfg = base.replace(dtype=gemm.dtype, ring_devices=gemm.devices)
    geo = gemm.geometry(cfg.lanes)
    need = gemm.out_base + geo.total_lines
    depth = max(cfg.mem_depth_lines, _next_pow2(max(need, MIN_MEM_DEPTH_LINES)))
    queue = max(cfg.dma_queue_depth, fire_queue_needed(gemm, geo))
    counters = cfg.tracker_counters and max(cfg.tracker_counters, 2 * _next_pow2(geo.limit))
    return cfg.replace(mem_depth_lines=depth, dma_queue_depth=queue, tracker_counters=counters)


def check_config(cfg: T3Config, gemm: GemmSpec) -> OutputGeometry:
    """Check that ``cfg`` can run ``gemm``; returns its geometry. ConfigError otherwise."""
    if cfg.ring_devices != gemm.devices:
        raise ConfigError(f"config: ring_devices={cfg.ring_devices}: must equal gemm devices="
                          f"{gemm.devices} (use contract.sizing.config_for)")
    if cfg.dtype != gemm.dtype:
        raise ConfigError(f"config: dtype={cfg.dtype!r}: must equal gemm dtype={gemm.dtype!r}")
    geo = gemm.geometry(cfg.lanes)
    if geo.limit > cfg.mem_depth_lines:
        raise ConfigError(f"config: mem_depth_lines={cfg.mem_depth_lines}: the output needs lines "
                          f"[{gemm.out_base}, {geo.limit}) (use contract.sizing.config_for)")
    if 2 * geo.limit > cfg.tracker_counter_slots:
        raise ConfigError(f"config: tracker_counters={cfg.tracker_counters}: the output occupies "
                          f"lines up to {geo.limit - 1}, whose tiles need "
                          f"{2 * _next_pow2(geo.limit)} backing counters (use 0 or "
                          f"contract.sizing.config_for)")
    for axis, bits_name in ((0, "wf_outer_bits"), (1, "wf_inner_bits")):
        bits = getattr(cfg, bits_name)
        if geo.wf_grid[axis] > (1 << bits):
            raise ConfigError(f"config: {bits_name}={bits}: the WF tile grid has {geo.wf_grid[axis]} "
                              f"tiles along {'outer' if axis == 0 else 'inner'} (use a larger wf_tile)")
    return geo


#: entries beyond a chunk's tiles and the producer's open tiles: one tile arriving on the
#: link and one fused all-gather tile (see :func:`tracker_entries_needed`)
TRACKER_SLACK = 2


def tracker_entries_needed(cfg: T3Config, gemm: GemmSpec, chunks: list[Chunk]) -> int:
    """Tracker entries for (almost) no spills in the fused ring (docs/programming.md
    "Sizing"): the largest chunk's WF tiles + ``gemm.cus`` + :data:`TRACKER_SLACK`. A
    performance guide: any table size is correct.

    Device d computes chunk c at stage s, but its upstream device computes c at stage
    s - 1 and sends it (remote stores, then DMA updates) during that stage, so the link
    half of every tile of a chunk arrives about one stage before the local half, and each
    tile is live until both halves are in. A table holding a whole chunk, plus the tiles
    open at that moment (up to ``cus`` the producer is writing, one arriving on the link
    and one all-gather tile), keeps them all cached; with fewer entries the tiles of the
    early link half are spilled to the backing counters and filled back when the local
    half comes (about one spill and two misses per tile: misses cost
    contract.latency.TRACKER_MISS cycles each, in the tracker's lookup stage).
    """
    return chunk_tiles(cfg, gemm, chunks) + gemm.cus + TRACKER_SLACK


def tracker_entries_min(cfg: T3Config, gemm: GemmSpec, chunks: list[Chunk]) -> int:
    """The smallest chunk's WF tiles: with fewer tracker entries every tile of that chunk
    whose link half arrives a stage early is spilled before its local half comes. Below
    the old design's correctness limit, now only the point where spills start."""
    return min(_tiles_per_chunk(cfg, gemm, chunks))


def chunk_tiles(cfg: T3Config, gemm: GemmSpec, chunks: list[Chunk]) -> int:
    """WF tiles of the largest chunk."""
    return max(_tiles_per_chunk(cfg, gemm, chunks))


def _tiles_per_chunk(cfg: T3Config, gemm: GemmSpec, chunks: list[Chunk]) -> list[int]:
    geo = gemm.geometry(cfg.lanes)
    return [geo.chunk_wf_tiles(c) for c in chunks]
