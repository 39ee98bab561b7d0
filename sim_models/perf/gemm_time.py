"""GEMM time and DRAM traffic on one device: tiles, waves over CUs, L2 reuse, roofline.

One workgroup computes one ``tile_m x tile_n`` output tile on one CU over the whole K
(no split-K); ``ceil(tiles / cus)`` waves run back to back. Per tile, compute time is
``2 tile_m tile_n K / cu_flops`` (edge tiles cost a full tile: the MFMA pipes do the
padded work). Input traffic comes from a grouped ("swizzled") raster: a group of ``g``
tile rows is swept along N one wave at a time; A's group panels are fetched once per
group if they stay in L2 across the sweep, and B is fetched once per group unless it is
still in L2 when the next group starts (LRU reuse distance, output stores included). The best group height ``g`` (and orientation) is taken, as a tuned kernel
would. The GEMM then runs at ``max(compute, bytes / DRAM bandwidth)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .hardware import Gpu

__all__ = ["GemmCost", "gemm_cost", "input_traffic"]


@dataclass(frozen=True)
class GemmCost:
    m: int
    n: int
    k: int
    cus: int
    tiles: int
    waves: int
    read_bytes: float    # inputs from DRAM after L2 reuse
    write_bytes: float   # output tile stores (all of T x H once)
    compute_s: float     # waves x per-tile compute time
    dram_Bps: float      # DRAM bandwidth available to it when alone

    @property
    def bytes(self) -> float:
        return self.read_bytes + self.write_bytes

    @property
    def memory_s(self) -> float:
        return self.bytes / self.dram_Bps

    @property
    def time_s(self) -> float:
        """Alone on the device: roofline of the whole kernel (waves are uniform)."""
        return max(self.compute_s, self.memory_s)

    @property
    def demand_Bps(self) -> float:
        """DRAM bandwidth it pulls when running at its compute speed."""
        return self.bytes / self.compute_s


def _sweep_traffic(rows: int, cols: int, row_panel: float, col_panel: float,
                   out_tile: float, wave: int, cap: float) -> float:
    """Bytes fetched when groups of ``g`` rows are swept along the columns, best ``g``.
    ``row_panel``/``col_panel``: bytes of one tile row of A (tile_m x K) / one tile
    column of B (K x tile_n); ``out_tile``: bytes of one output tile. A panel is found
    in L2 if the bytes touched since its last use (its LRU reuse distance, output
    stores included: the L2 allocates on write) fit in ``cap``."""
    best = math.inf
    all_cols = cols * col_panel
    for g in range(1, min(rows, wave) + 1):
        wcols = max(1, min(cols, wave // g))          # columns per wave
        groups = math.ceil(rows / g)
        steps = math.ceil(cols / wcols)                # waves per group
        a_group = g * row_panel
        # A's group panels are reused by the group's next wave; B's panels by the next group
        a_dist = a_group + wcols * col_panel + g * wcols * out_tile
        b_dist = a_group + all_cols + g * cols * out_tile
        a_reads = (1 if a_dist <= cap else steps) * rows * row_panel
        b_reads = (1 if b_dist <= cap else groups) * all_cols
        best = min(best, a_reads + b_reads)
    return best


def input_traffic(gpu: Gpu, m: int, n: int, k: int, cus: int, *, output_in_l2: bool = True) -> float:
    """DRAM bytes read for A (m x k) and B (k x n) with L2 reuse. ``output_in_l2=False``:
    the output stores bypass the L2 (T3's stores go to the tracker/NMC path uncached), so
    the output tiles do not count in the inputs' reuse distances."""
    mt, nt = math.ceil(m / gpu.tile_m), math.ceil(n / gpu.tile_n)
    wave = min(cus, mt * nt)
    cap = gpu.l2_bytes * gpu.l2_usable_fraction
    a_panel = gpu.tile_m * k * gpu.elem_bytes
    b_panel = gpu.tile_n * k * gpu.elem_bytes
    out = gpu.tile_bytes if output_in_l2 else 0.0
    return min(_sweep_traffic(mt, nt, a_panel, b_panel, out, wave, cap),
               _sweep_traffic(nt, mt, b_panel, a_panel, out, wave, cap))


def gemm_cost(gpu: Gpu, m: int, n: int, k: int, *, cus: int | None = None,
              output_in_l2: bool = True) -> GemmCost:
    cus = cus or gpu.compute_units
    tiles = math.ceil(m / gpu.tile_m) * math.ceil(n / gpu.tile_n)
    waves = math.ceil(tiles / cus)
    tile_s = 2.0 * gpu.tile_m * gpu.tile_n * k / gpu.cu_flops
    return GemmCost(m=m, n=n, k=k, cus=cus, tiles=tiles, waves=waves,
                    read_bytes=input_traffic(gpu, m, n, k, cus, output_in_l2=output_in_l2),
                    write_bytes=float(m * n * gpu.elem_bytes),
                    compute_s=waves * tile_s, dram_Bps=gpu.dram_Bps)
