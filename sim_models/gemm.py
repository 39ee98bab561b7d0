"""The GPU producer model: a tensor-parallel GEMM's output, its tiling, chunks and stores.

One sublayer on ``devices`` GPUs: ``A (m x k) @ B (k x n)`` with K split ``devices`` ways,
so every device holds a partial sum of the whole ``m x n`` output. This module says

* how the output sits in memory (:class:`OutputGeometry`: row- or column-major lines),
* how it is cut into workgroup (WG) macro-tiles and wavefront (WF) sub-tiles,
* how it is cut into ``devices`` chunks along the memory-outer dimension (:class:`Chunk`),
* each device's partial product (numpy, fp32 accumulation, one rounding), and
* with :func:`make_workload`, everything a ring run needs: partials, the collective
  library's programming (:mod:`sim_models.collective`) and the store traces
  (:mod:`sim_models.trace`).

Units: element counts are named ``m``/``n``/``k``/``*_elems``; memory lines ``*_lines``;
time in T3 clock cycles ``*_cycles``. Producer timing is documented in docs/programming.md
and :func:`producer_trace`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from . import fparith
from contract.spec import FORMATS, ConfigError, Layout, T3Config

__all__ = ["GemmSpec", "OutputGeometry", "Chunk", "Workload", "config_for", "check_config",
           "split_chunks", "compute_partials", "make_workload", "ring_order", "stage_chunk",
           "fire_queue_needed"]


def _fail(name: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"gemm: {name}={value!r}: {allowed}")


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def ring_order(chunk: int, devices: int) -> list[int]:
    """Devices in the order their partials of ``chunk`` join the running sum:
    ``chunk+1, chunk+2, ..., chunk`` (mod devices); the last one owns the chunk."""
    return [(chunk + i) % devices for i in range(1, devices + 1)]


def stage_chunk(device: int, stage: int, devices: int) -> int:
    """The chunk ``device`` computes at ``stage`` (1..devices): ``(device - stage) mod N``.
    Stage 1 is the chunk the next device needs first; stage N is the device's own."""
    return (device - stage) % devices


@dataclass(frozen=True)
class GemmSpec:
    """One tensor-parallel GEMM on a ring of ``devices`` GPUs.

    ``m``, ``n``, ``k``: output rows, output columns, reduction length (elements).
    ``wg_tile``/``wf_tile``: (rows along M, columns along N) of the workgroup macro-tile and
    the wavefront sub-tile, in elements; the WG tile is a multiple of the WF tile and the
    tile size along the memory line direction (N for row-major, M for column-major) must
    be a multiple of the line's ``lanes``. ``cus``: compute units (WGs per wave).
    ``wg_cycles``: cycles a WG computes before it emits its first line. ``out_base``: line
    address of the output in every device's memory. ``seed``: the inputs' RNG seed.
    """
    m: int
    n: int
    k: int
    devices: int = 4
    dtype: str = "fp16"
    layout: Layout = Layout.ROW_MAJOR
    wg_tile: tuple[int, int] = (64, 64)
    wf_tile: tuple[int, int] = (32, 32)
    cus: int = 80
    wg_cycles: int = 64
    seed: int = 0
    out_base: int = 0

    def __post_init__(self) -> None:
        for name in ("m", "n", "k", "devices", "cus", "wg_cycles"):
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                _fail(name, v, "must be a positive integer")
        for name in ("seed", "out_base"):
            v = getattr(self, name)
            if not _is_int(v) or v < 0:
                _fail(name, v, "must be a non-negative integer")
        if self.devices < 2:
            _fail("devices", self.devices, "a ring needs at least 2 devices")
        if self.dtype not in FORMATS:
            _fail("dtype", self.dtype, f"must be one of {', '.join(FORMATS)}")
        try:
            object.__setattr__(self, "layout", Layout(self.layout))
        except ValueError:
            _fail("layout", self.layout, "must be 'row' or 'col'")
        for name in ("wg_tile", "wf_tile"):
            v = getattr(self, name)
            if not (isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_int(x) and x >= 1 for x in v)):
                _fail(name, v, "must be two positive integers (rows along M, columns along N)")
            object.__setattr__(self, name, (int(v[0]), int(v[1])))
        for i, dim in enumerate("MN"):
            if self.wg_tile[i] % self.wf_tile[i]:
                _fail("wg_tile", self.wg_tile,
                      f"must be a multiple of wf_tile={self.wf_tile} along {dim}")

    # ---- conversion ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["layout"] = self.layout.value
        d["wg_tile"], d["wf_tile"] = list(self.wg_tile), list(self.wf_tile)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "gemm") -> "GemmSpec":
        if not isinstance(d, Mapping):
            raise ConfigError(f"{where}: must be an object, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        for key in d:
            if key not in known:
                raise ConfigError(f"{where}: {key}: unknown key (known: {', '.join(sorted(known))})")
        for key in ("m", "n", "k"):
            if key not in d:
                raise ConfigError(f"{where}: missing key {key!r}")
        kw = dict(d)
        for key in ("wg_tile", "wf_tile"):
            if isinstance(kw.get(key), list):
                kw[key] = tuple(kw[key])
        try:
            return cls(**kw)
        except ConfigError as e:
            raise ConfigError(f"{where}: {str(e).removeprefix('gemm: ')}") from None

    def replace(self, **changes: Any) -> "GemmSpec":
        return dataclasses.replace(self, **changes)

    def geometry(self, lanes: int) -> "OutputGeometry":
        return OutputGeometry(self, lanes)

    def k_slices(self) -> list[tuple[int, int]]:
        """Device d's K range [start, stop): K split as evenly as possible (first ones longer)."""
        q, r = divmod(self.k, self.devices)
        out, start = [], 0
        for d in range(self.devices):
            stop = start + q + (d < r)
            out.append((start, stop))
            start = stop
        return out


class OutputGeometry:
    """Where the M x N output sits in memory, in lines, and its WG/WF tile grids.

    "outer" is the memory-major dimension (M for row-major, N for column-major), "inner"
    runs along a line. Row ``o`` of the outer dimension occupies lines
    ``out_base + o * pitch ... + pitch - 1``; element ``e`` along inner is lane
    ``e % lanes`` of line ``e // lanes``. Column-major pads the last line of each column
    with +0 lanes when M is not a multiple of ``lanes``.
    """

    def __init__(self, gemm: GemmSpec, lanes: int):
        self.gemm, self.lanes = gemm, lanes
        row = gemm.layout == Layout.ROW_MAJOR
        self.row_major = row
        self.outer_elems = gemm.m if row else gemm.n
        self.inner_elems = gemm.n if row else gemm.m
        tile_axes = (0, 1) if row else (1, 0)     # (outer, inner) index into (M, N) tiles
        self.wg_outer = gemm.wg_tile[tile_axes[0]]
        self.wf_outer = gemm.wf_tile[tile_axes[0]]
        wg_inner, wf_inner = gemm.wg_tile[tile_axes[1]], gemm.wf_tile[tile_axes[1]]
        line_dim = "N" if row else "M"
        if row and gemm.n % lanes:
            _fail("n", gemm.n, f"row-major output needs N to be a multiple of lanes={lanes}")
        for name, v in (("wf_tile", wf_inner), ("wg_tile", wg_inner)):
            if v % lanes:
                _fail(name, getattr(gemm, name),
                      f"size along {line_dim} (the line direction) must be a multiple of lanes={lanes}")
        self.wg_inner_lines = wg_inner // lanes
        self.wf_inner_lines = wf_inner // lanes
        self.pitch = _ceil_div(self.inner_elems, lanes)
        self.total_lines = self.outer_elems * self.pitch
        self.wg_grid = (_ceil_div(self.outer_elems, self.wg_outer),
                        _ceil_div(self.pitch, self.wg_inner_lines))
        self.wf_grid = (_ceil_div(self.outer_elems, self.wf_outer),
                        _ceil_div(self.pitch, self.wf_inner_lines))

    @property
    def limit(self) -> int:
        """First line address after the output."""
        return self.gemm.out_base + self.total_lines

    def to_lines(self, matrix: np.ndarray) -> np.ndarray:
        """M x N raw-bit matrix -> (total_lines, lanes) line image (line 0 = out_base)."""
        v = matrix if self.row_major else matrix.T
        pad = self.pitch * self.lanes - self.inner_elems
        if pad:
            v = np.concatenate([v, np.zeros((v.shape[0], pad), v.dtype)], axis=1)
        return np.ascontiguousarray(v).reshape(self.total_lines, self.lanes)

    def from_lines(self, lines: np.ndarray) -> np.ndarray:
        """(total_lines, lanes) line image -> M x N matrix (pad lanes dropped)."""
        v = lines.reshape(self.outer_elems, self.pitch * self.lanes)[:, :self.inner_elems]
        return np.ascontiguousarray(v if self.row_major else v.T)

    def wg_lines(self, wg_outer_idx: int, wg_inner_idx: int) -> tuple[np.ndarray, np.ndarray]:
        """(line addresses, wf tile (outer, inner) grid positions) of one WG, in emission
        order: WF tiles outer-major inside the WG, each tile row by row (TileGeometry order)."""
        o0, i0 = wg_outer_idx * self.wg_outer, wg_inner_idx * self.wg_inner_lines
        o1 = min(o0 + self.wg_outer, self.outer_elems)
        i1 = min(i0 + self.wg_inner_lines, self.pitch)
        addrs, tiles = [], []
        for fo in range(o0, o1, self.wf_outer):
            fo1 = min(fo + self.wf_outer, o1)
            for fi in range(i0, i1, self.wf_inner_lines):
                fi1 = min(fi + self.wf_inner_lines, i1)
                rows = np.arange(fo, fo1)[:, None] * self.pitch + np.arange(fi, fi1)[None, :]
                addrs.append(rows.ravel())
                tiles.append(np.full((rows.size, 2), (fo // self.wf_outer, fi // self.wf_inner_lines)))
        return (np.concatenate(addrs) + self.gemm.out_base, np.concatenate(tiles))


@dataclass(frozen=True)
class Chunk:
    """One of the ``devices`` output chunks: rows [row_start, row_stop) x columns
    [col_start, col_stop) of the M x N matrix (elements), memory lines [base, limit),
    outer rows [outer_start, outer_stop). ``owner`` holds it reduced at the end;
    ``ring_order`` lists the devices in the order they add their partials (the owner last)."""
    index: int
    row_start: int
    row_stop: int
    col_start: int
    col_stop: int
    outer_start: int
    outer_stop: int
    owner: int
    base: int
    limit: int
    ring_order: tuple[int, ...]

    @property
    def lines(self) -> int:
        return self.limit - self.base

    @property
    def stage_order(self) -> tuple[int, ...]:
        """Devices in stage order: ``stage_order[s - 1]`` computes this chunk at stage s
        (the same list as ``ring_order``)."""
        return self.ring_order


def split_chunks(gemm: GemmSpec, geo: OutputGeometry) -> list[Chunk]:
    """Cut the output along the outer dimension into ``devices`` chunks on WG-row
    boundaries, as evenly as possible (the first chunks get one WG row more)."""
    n = gemm.devices
    wg_rows = geo.wg_grid[0]
    if wg_rows < n:
        _fail("devices", n, f"the output has only {wg_rows} WG rows along the "
                            f"{'M' if geo.row_major else 'N'} dimension; every device needs a chunk "
                            f"(use a smaller wg_tile or fewer devices)")
    q, r = divmod(wg_rows, n)
    chunks, wg0 = [], 0
    for c in range(n):
        wg1 = wg0 + q + (c < r)
        o0, o1 = wg0 * geo.wg_outer, min(wg1 * geo.wg_outer, geo.outer_elems)
        if geo.row_major:
            rows, cols = (o0, o1), (0, gemm.n)
        else:
            rows, cols = (0, gemm.m), (o0, o1)
        chunks.append(Chunk(index=c, row_start=rows[0], row_stop=rows[1], col_start=cols[0],
                            col_stop=cols[1], outer_start=o0, outer_stop=o1, owner=c,
                            base=gemm.out_base + o0 * geo.pitch,
                            limit=gemm.out_base + o1 * geo.pitch,
                            ring_order=tuple(ring_order(c, n))))
        wg0 = wg1
    return chunks


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
    ``ring_devices``, a power-of-two ``mem_depth_lines`` that holds the output and a
    ``dma_queue_depth`` of at least :func:`fire_queue_needed` (neither is shrunk)."""
    base = base_cfg or T3Config()
    cfg = base.replace(dtype=gemm.dtype, ring_devices=gemm.devices)
    geo = gemm.geometry(cfg.lanes)
    need = gemm.out_base + geo.total_lines
    depth = max(cfg.mem_depth_lines, _next_pow2(max(need, 16)))
    queue = max(cfg.dma_queue_depth, fire_queue_needed(gemm, geo))
    return cfg.replace(mem_depth_lines=depth, dma_queue_depth=queue)


def check_config(cfg: T3Config, gemm: GemmSpec) -> OutputGeometry:
    """Check that ``cfg`` can run ``gemm``; returns its geometry. ConfigError otherwise."""
    if cfg.ring_devices != gemm.devices:
        raise ConfigError(f"config: ring_devices={cfg.ring_devices}: must equal gemm devices="
                          f"{gemm.devices} (use sim_models.gemm.config_for)")
    if cfg.dtype != gemm.dtype:
        raise ConfigError(f"config: dtype={cfg.dtype!r}: must equal gemm dtype={gemm.dtype!r}")
    geo = gemm.geometry(cfg.lanes)
    if geo.limit > cfg.mem_depth_lines:
        raise ConfigError(f"config: mem_depth_lines={cfg.mem_depth_lines}: the output needs lines "
                          f"[{gemm.out_base}, {geo.limit}) (use sim_models.gemm.config_for)")
    for axis, bits_name in ((0, "wf_outer_bits"), (1, "wf_inner_bits")):
        bits = getattr(cfg, bits_name)
        if geo.wf_grid[axis] > (1 << bits):
            raise ConfigError(f"config: {bits_name}={bits}: the WF tile grid has {geo.wf_grid[axis]} "
                              f"tiles along {'outer' if axis == 0 else 'inner'} (use a larger wf_tile)")
    return geo


def _random_inputs(gemm: GemmSpec) -> tuple[np.ndarray, np.ndarray]:
    """A (m x k), B (k x n) as float32 holding values exact in every element type:
    +-j/64, j in 1..64. No zeros, so no partial is ever -0 (see docs/programming.md)."""
    rng = np.random.default_rng(gemm.seed)

    def draw(shape):
        mag = rng.integers(1, 65, size=shape).astype(np.float32) / 64
        return np.where(rng.random(shape) < 0.5, -mag, mag).astype(np.float32)
    return draw((gemm.m, gemm.k)), draw((gemm.k, gemm.n))


def compute_partials(gemm: GemmSpec) -> list[np.ndarray]:
    """Each device's M x N partial product over its K slice, accumulated in fp32 and
    rounded once to the element type (raw bits)."""
    a, b = _random_inputs(gemm)
    return [fparith.from_float(gemm.dtype, a[:, k0:k1] @ b[k0:k1, :]) for k0, k1 in gemm.k_slices()]


@dataclass
class Workload:
    """Everything one ring run needs (see :func:`make_workload`)."""
    cfg: T3Config
    gemm: GemmSpec
    geometry: OutputGeometry
    chunks: list[Chunk]
    partials: list[np.ndarray]
    programs: list
    traces: list
    fuse_allgather: bool = True


def make_workload(cfg: T3Config, gemm: GemmSpec, *, fuse_allgather: bool = True,
                  partials: Sequence[np.ndarray] | None = None) -> Workload:
    """Partials, per-device programming and store traces for ``gemm`` on ``cfg``'s ring.
    ``partials`` (optional, M x N raw bits per device) replaces the computed products,
    e.g. to test special values."""
    from .collective import ring_programs
    from .trace import producer_trace
    geo = check_config(cfg, gemm)
    chunks = split_chunks(gemm, geo)
    if partials is None:
        partials = compute_partials(gemm)
    else:
        ud = fparith.uint_dtype(gemm.dtype)
        if len(partials) != gemm.devices:
            raise ConfigError(f"partials: {len(partials)} given: need one per device ({gemm.devices})")
        partials = [np.asarray(p) for p in partials]
        for d, p in enumerate(partials):
            if p.shape != (gemm.m, gemm.n) or p.dtype != ud:
                raise ConfigError(f"partials[{d}]: shape {p.shape} dtype {p.dtype}: must be "
                                  f"({gemm.m}, {gemm.n}) {ud}")
    programs = ring_programs(cfg, gemm, chunks, fuse_allgather=fuse_allgather)
    for p in programs:
        p.validate(cfg)
    traces = [producer_trace(cfg, gemm, geo, chunks, programs[d], partials[d])
              for d in range(gemm.devices)]
    return Workload(cfg=cfg, gemm=gemm, geometry=geo, chunks=chunks, partials=list(partials),
                    programs=programs, traces=traces, fuse_allgather=fuse_allgather)
