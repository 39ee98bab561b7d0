"""The programming model of a T3 unit: the paper's ``remote_map`` and ``dma_map``.

A device is programmed with up to ``cfg.regions`` *regions*. A region is a contiguous
range of local line addresses ``[base, limit)`` holding a rectangle of the output
matrix (an output chunk) and says

* what the address map does with a **producer** (local GPU) request that falls in it
  (``ProducerAction``: plain local, remote to the next device, or local and tracked);
* how many **contributions per line** the tracker expects for UPDATEs
  (``update_contribs``: local updates plus incoming remote updates) and for incoming
  STOREs (``store_contribs``, the all-gather); 0 means untracked;
* what a completed tile **fires** (``update_fire`` / ``store_fire``: nothing, a DMA of the
  tile as UPDATEs, or as STOREs) and where it goes (``dest_base`` on the next device);
* the **tile geometry**, so the trigger can compute any WF tile's lines from its id.

Tracking is per wavefront (WF) output tile, keyed by the WF id that travels with every
request: ``wf_id = (tile_outer << cfg.wf_inner_bits) | tile_inner`` where
(tile_outer, tile_inner) is the WF tile's position in the output's tile grid along the
memory-outer and memory-inner dimensions. The tracker key is ``(phase, wf_id)`` with
phase 0 for UPDATEs (reduce-scatter) and 1 for STOREs (all-gather).

Geometry, in lines: the region's memory is ``outer_extent`` rows of ``inner_extent``
lines, row ``r`` starting at ``base + r * pitch``. WF tiles are ``tile_outer`` rows by
``tile_inner`` lines; the region's first tile has grid position
(``tile_outer0``, ``tile_inner0``). Tiles at the region's far edges are clipped.
A tile's threshold is ``rows * lines_per_row * contribs``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

from .spec import CONTRIB_BITS, ConfigError, FireOp, ProducerAction, T3Config

__all__ = ["Region", "TileGeometry", "DeviceProgram", "wf_id", "pack_wf_id", "split_wf_id"]


def pack_wf_id(cfg: T3Config, tile_outer, tile_inner):
    """The WF id of grid position (``tile_outer``, ``tile_inner``), unchecked: ints, or
    integer arrays elementwise (the trace generator and checker). :func:`wf_id` checks."""
    return (tile_outer << cfg.wf_inner_bits) | tile_inner


def wf_id(cfg: T3Config, tile_outer: int, tile_inner: int) -> int:
    """Pack a WF tile's grid position into the WF id carried by requests (ConfigError if
    the position does not fit ``wf_outer_bits`` / ``wf_inner_bits``)."""
    if not (0 <= tile_outer < (1 << cfg.wf_outer_bits)):
        raise ConfigError(f"tile_outer={tile_outer}: must be in [0, {(1 << cfg.wf_outer_bits) - 1}]"
                          f" (wf_outer_bits={cfg.wf_outer_bits})")
    if not (0 <= tile_inner < (1 << cfg.wf_inner_bits)):
        raise ConfigError(f"tile_inner={tile_inner}: must be in [0, {(1 << cfg.wf_inner_bits) - 1}]"
                          f" (wf_inner_bits={cfg.wf_inner_bits})")
    return pack_wf_id(cfg, tile_outer, tile_inner)


def split_wf_id(cfg: T3Config, wf: int) -> tuple[int, int]:
    return wf >> cfg.wf_inner_bits, wf & ((1 << cfg.wf_inner_bits) - 1)


@dataclass(frozen=True)
class TileGeometry:
    """The lines of one WF tile in local memory."""
    origin: int       # line address of the tile's first line
    rows: int         # outer rows in the tile (after clipping)
    row_lines: int    # lines per row in the tile (after clipping)
    pitch: int        # lines between rows

    @property
    def lines(self) -> int:
        return self.rows * self.row_lines

    def addresses(self) -> Iterator[int]:
        """Line addresses in DMA order: row by row, lines in increasing address."""
        for r in range(self.rows):
            start = self.origin + r * self.pitch
            yield from range(start, start + self.row_lines)


@dataclass(frozen=True)
class Region:
    base: int
    limit: int
    producer: ProducerAction = ProducerAction.LOCAL
    remote_base: int = 0
    update_contribs: int = 0
    update_fire: FireOp = FireOp.NONE
    store_contribs: int = 0
    store_fire: FireOp = FireOp.NONE
    dest_base: int = 0
    pitch: int = 1
    outer_extent: int = 1
    inner_extent: int = 1
    tile_outer: int = 1
    tile_inner: int = 1
    tile_outer0: int = 0
    tile_inner0: int = 0

    # ---- semantics shared by the golden model and the hardware tests ----------------
    def contains(self, addr: int) -> bool:
        return self.base <= addr < self.limit

    @property
    def tracked(self) -> bool:
        return self.update_contribs > 0 or self.store_contribs > 0

    def contribs(self, is_store: bool) -> int:
        return self.store_contribs if is_store else self.update_contribs

    def fire(self, is_store: bool) -> FireOp:
        return self.store_fire if is_store else self.update_fire

    @property
    def tiles_outer(self) -> int:
        return -(-self.outer_extent // self.tile_outer)

    @property
    def tiles_inner(self) -> int:
        return -(-self.inner_extent // self.tile_inner)

    def owns_tile(self, cfg: T3Config, wf: int) -> bool:
        to, ti = split_wf_id(cfg, wf)
        return (0 <= to - self.tile_outer0 < self.tiles_outer
                and 0 <= ti - self.tile_inner0 < self.tiles_inner)

    def tile(self, cfg: T3Config, wf: int) -> TileGeometry:
        """Geometry of WF tile ``wf`` in this region (ConfigError if not in it)."""
        if not self.owns_tile(cfg, wf):
            raise ConfigError(f"wf_id={wf:#x}: tile is not in region [{self.base}, {self.limit})")
        to, ti = split_wf_id(cfg, wf)
        lo, li = to - self.tile_outer0, ti - self.tile_inner0
        rows = min(self.tile_outer, self.outer_extent - lo * self.tile_outer)
        row_lines = min(self.tile_inner, self.inner_extent - li * self.tile_inner)
        origin = self.base + lo * self.tile_outer * self.pitch + li * self.tile_inner
        return TileGeometry(origin=origin, rows=rows, row_lines=row_lines, pitch=self.pitch)

    def threshold(self, cfg: T3Config, wf: int, is_store: bool) -> int:
        return self.tile(cfg, wf).lines * self.contribs(is_store)

    def tile_of_addr(self, cfg: T3Config, addr: int) -> int:
        """WF id of the tile that holds line ``addr`` (for checking producer traces)."""
        off = addr - self.base
        r, c = divmod(off, self.pitch)
        if not self.contains(addr) or r >= self.outer_extent or c >= self.inner_extent:
            raise ConfigError(f"addr={addr}: not a line of region [{self.base}, {self.limit})")
        return wf_id(cfg, self.tile_outer0 + r // self.tile_outer,
                     self.tile_inner0 + c // self.tile_inner)

    def translate(self, addr: int, to_base: int) -> int:
        return addr - self.base + to_base

    # ---- validation ------------------------------------------------------------------
    def validate(self, cfg: T3Config, where: str = "region") -> None:
        def bad(name: str, allowed: str) -> None:
            raise ConfigError(f"{where}: {name}={getattr(self, name)!r}: {allowed}")

        depth = cfg.mem_depth_lines
        for name in ("base", "limit", "remote_base", "dest_base"):
            v = getattr(self, name)
            if not isinstance(v, int) or not (0 <= v <= depth):
                bad(name, f"must be a line address in [0, {depth}]")
        if self.limit <= self.base:
            bad("limit", f"must be greater than base={self.base}")
        size = self.limit - self.base
        if self.producer == ProducerAction.REMOTE and self.remote_base + size > depth:
            bad("remote_base", f"translated range overflows memory depth {depth}")
        if self.tracked and any(f != FireOp.NONE for f in (self.update_fire, self.store_fire)) \
                and self.dest_base + size > depth:
            bad("dest_base", f"translated range overflows memory depth {depth}")
        for name in ("update_contribs", "store_contribs"):
            v = getattr(self, name)
            if not isinstance(v, int) or not (0 <= v < (1 << CONTRIB_BITS)):
                bad(name, f"must be an integer in [0, {(1 << CONTRIB_BITS) - 1}]")
        if self.store_fire == FireOp.UPDATE:
            bad("store_fire", "an all-gather arrival can fire NONE or STORE, not UPDATE")
        for name in ("pitch", "outer_extent", "inner_extent", "tile_outer", "tile_inner"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                bad(name, "must be a positive integer")
        if self.inner_extent > self.pitch:
            bad("inner_extent", f"must not exceed pitch={self.pitch}")
        if self.base + (self.outer_extent - 1) * self.pitch + self.inner_extent > self.limit:
            bad("outer_extent", f"rows of the region run past limit={self.limit}")
        if self.tile_outer0 + self.tiles_outer > (1 << cfg.wf_outer_bits):
            bad("tile_outer0", f"tile grid exceeds wf_outer_bits={cfg.wf_outer_bits}")
        if self.tile_inner0 + self.tiles_inner > (1 << cfg.wf_inner_bits):
            bad("tile_inner0", f"tile grid exceeds wf_inner_bits={cfg.wf_inner_bits}")
        full = self.tile_outer * self.tile_inner * max(self.update_contribs, self.store_contribs)
        if full > cfg.max_tile_count:
            bad("tile_outer", f"tile threshold {full} exceeds count_bits={cfg.count_bits} "
                              f"(max {cfg.max_tile_count})")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("producer", "update_fire", "store_fire"):
            d[k] = getattr(self, k).name
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "region") -> "Region":
        if not isinstance(d, Mapping):
            raise ConfigError(f"{where}: must be an object (JSON) or table (TOML), "
                              f"got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        for f in dataclasses.fields(cls):
            if f.default is dataclasses.MISSING and f.name not in d:
                raise ConfigError(f"{where}: {f.name}: missing key")
        kw: dict[str, Any] = {}
        for k, v in d.items():
            if k not in known:
                raise ConfigError(f"{where}: {k}: unknown key")
            kw[k] = v
        enums = {"producer": ProducerAction, "update_fire": FireOp, "store_fire": FireOp}
        for k, e in enums.items():
            if k in kw:
                try:
                    kw[k] = e[kw[k]] if isinstance(kw[k], str) else e(kw[k])
                except (KeyError, ValueError):
                    raise ConfigError(f"{where}: {k}={kw[k]!r}: must be one of "
                                      f"{', '.join(m.name for m in e)}") from None
        return cls(**kw)


@dataclass(frozen=True)
class DeviceProgram:
    """Everything the collective library programs into one device's T3 unit."""
    device: int
    next_device: int
    regions: tuple[Region, ...] = field(default_factory=tuple)

    def validate(self, cfg: T3Config) -> None:
        where = f"device {self.device}"
        if not (0 <= self.device < cfg.ring_devices):
            raise ConfigError(f"{where}: device={self.device}: must be in [0, {cfg.ring_devices - 1}]")
        if not (0 <= self.next_device < cfg.ring_devices) or self.next_device == self.device:
            raise ConfigError(f"{where}: next_device={self.next_device}: must be another device "
                              f"in [0, {cfg.ring_devices - 1}]")
        if len(self.regions) > cfg.regions:
            raise ConfigError(f"{where}: {len(self.regions)} regions: at most cfg.regions={cfg.regions}")
        spans = []
        for i, r in enumerate(self.regions):
            r.validate(cfg, f"{where} region {i}")
            spans.append((r.base, r.limit, i))
        spans.sort()
        for (b0, l0, i0), (b1, l1, i1) in zip(spans, spans[1:]):
            if b1 < l0:
                raise ConfigError(f"{where}: region {i1} [{b1}, {l1}) overlaps region {i0} [{b0}, {l0})")

    def region_of(self, addr: int) -> tuple[int, Region] | tuple[None, None]:
        """The region holding ``addr`` (regions never overlap), or (None, None)."""
        for i, r in enumerate(self.regions):
            if r.contains(addr):
                return i, r
        return None, None

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "next_device": self.next_device,
                "regions": [r.to_dict() for r in self.regions]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "program") -> "DeviceProgram":
        if not isinstance(d, Mapping):
            raise ConfigError(f"{where}: must be an object, got {type(d).__name__}")
        if not isinstance(d.get("regions", []), (list, tuple)):
            raise ConfigError(f"{where}: regions: must be a list, got {type(d['regions']).__name__}")
        try:
            regions = tuple(Region.from_dict(r, f"{where} region {i}")
                            for i, r in enumerate(d["regions"]))
            for k in ("device", "next_device"):
                if not isinstance(d[k], int) or isinstance(d[k], bool):
                    raise ConfigError(f"{where}: {k}={d[k]!r}: must be an integer")
            return cls(device=d["device"], next_device=d["next_device"], regions=regions)
        except KeyError as e:
            raise ConfigError(f"{where}: missing key {e.args[0]!r}") from None
        except TypeError as e:
            raise ConfigError(f"{where}: malformed: {e}") from None
