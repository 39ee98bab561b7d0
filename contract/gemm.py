"""The GEMM a T3 ring reduces: its output layout, tiling and chunks.

One sublayer on ``devices`` GPUs: ``A (m x k) @ B (k x n)`` with K split ``devices`` ways,
so every device holds a partial sum of the whole ``m x n`` output. This module says

* what the GEMM is (:class:`GemmSpec`),
* how its output sits in memory (:class:`OutputGeometry`: row- or column-major lines,
  and the line image of a matrix),
* how the output is cut into workgroup (WG) macro-tiles and wavefront (WF) sub-tiles,
* how it is cut into ``devices`` chunks along the memory-outer dimension
  (:class:`Chunk`, :func:`split_chunks`), and in which order the ring's devices work on
  them (:func:`ring_order`, :func:`stage_chunk`).

The programming (``contract.program``), the trace format (docs/trace_format.md) and the
sizing rules (:mod:`contract.sizing`) are defined on these. docs/programming.md
describes them ("Output layout", "Tiles and ids", "Chunks and stages").

Units: element counts are named ``m``/``n``/``k``/``*_elems``; memory lines ``*_lines``;
time in T3 clock cycles ``*_cycles``. Numpy is used only for the line image of a matrix
(:meth:`OutputGeometry.to_lines` / :meth:`~OutputGeometry.from_lines`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .spec import FORMATS, ConfigError, Layout

__all__ = ["GemmSpec", "OutputGeometry", "Chunk", "split_chunks", "ring_order", "stage_chunk"]


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

    Sizes: ``outer_elems``/``inner_elems``, ``wg_outer``/``wf_outer`` in elements along
    outer; ``wg_inner_lines``/``wf_inner_lines``, ``pitch``, ``total_lines`` in lines;
    ``wg_grid``/``wf_grid``: tiles along (outer, inner), edge tiles clipped.
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

    def chunk_wf_tiles(self, chunk: Chunk) -> int:
        """WF tiles of ``chunk`` (its region's tile grid): its outer rows in WF tile rows,
        the last one clipped, times the tiles along inner."""
        return _ceil_div(chunk.outer_stop - chunk.outer_start, self.wf_outer) * self.wf_grid[1]

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
