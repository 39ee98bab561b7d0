"""Store traces: the line-granular requests a GPU emits, per device, and their files.

A :class:`Trace` holds one device's producer requests as equal-length numpy arrays, in
issue order. :func:`producer_trace` generates it from a GEMM (timing rule in
docs/programming.md); :func:`save_traces` / :func:`load_traces` write and read the
on-disk format (docs/trace_format.md): ``trace.json`` (header: format name and version,
config, GEMM, programming) and one ``device<d>.npz`` per device. The loader checks
everything and raises :class:`~contract.spec.ConfigError` with one line
``<file>: <field>: <problem>``. Addresses and WF ids follow the GEMM's layout and tiling
(:mod:`contract.gemm`) and the WF id packing of :mod:`contract.program`.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence
from weakref import WeakKeyDictionary

import numpy as np

from contract.gemm import Chunk, GemmSpec, OutputGeometry
from contract.program import DeviceProgram, pack_wf_id
from contract.sizing import check_config
from contract.spec import ConfigError, Op, ProducerAction, T3Config, read_text

from . import fparith

__all__ = ["Trace", "TraceSet", "FORMAT_NAME", "FORMAT_VERSION", "HEADER_FILE", "producer_trace",
           "wg_store_order", "device_waves", "wave_lines", "save_traces", "load_traces", "load_header", "check_trace",
           "ROUTE_LOCAL", "ROUTE_REMOTE"]

FORMAT_NAME = "t3-trace"
FORMAT_VERSION = 1
HEADER_FILE = "trace.json"
ROUTE_LOCAL, ROUTE_REMOTE = 0, 1

#: array name -> numpy dtype (``data`` takes the element type's raw-bit dtype)
FIELDS: dict[str, str] = {"time": "uint64", "wg_id": "uint32", "wf_id": "uint32",
                          "addr": "uint32", "op": "uint8", "route": "uint8", "data": "elem"}


@dataclass
class Trace:
    """One device's producer requests in issue order. ``time``: issue cycle
    (non-decreasing); ``wg_id``/``wf_id``: issuing workgroup / wavefront tile; ``addr``:
    line address; ``op``: :class:`~contract.spec.Op` (STORE or UPDATE); ``route``:
    0 local, 1 remote (to the next device); ``data``: (len, lanes) raw bits."""
    time: np.ndarray
    wg_id: np.ndarray
    wf_id: np.ndarray
    addr: np.ndarray
    op: np.ndarray
    route: np.ndarray
    data: np.ndarray

    def __len__(self) -> int:
        return len(self.time)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in FIELDS}


class TraceSet(Protocol):
    """What :func:`save_traces` writes: a ring run's configuration, GEMM, programming and
    one trace per device (a :class:`sim_models.workload.Workload` is one)."""
    cfg: T3Config
    gemm: GemmSpec
    fuse_allgather: bool
    programs: Sequence[DeviceProgram]
    traces: Sequence[Trace]


def wg_store_order(geo: OutputGeometry, wg_outer_idx: int,
                   wg_inner_idx: int) -> tuple[np.ndarray, np.ndarray]:
    """(line addresses, WF tile (outer, inner) grid positions) of one WG's stores, in
    emission order: WF tiles outer-major inside the WG, each tile row by row
    (TileGeometry order)."""
    o0, i0 = wg_outer_idx * geo.wg_outer, wg_inner_idx * geo.wg_inner_lines
    o1 = min(o0 + geo.wg_outer, geo.outer_elems)
    i1 = min(i0 + geo.wg_inner_lines, geo.pitch)
    addrs, tiles = [], []
    for fo in range(o0, o1, geo.wf_outer):
        fo1 = min(fo + geo.wf_outer, o1)
        for fi in range(i0, i1, geo.wf_inner_lines):
            fi1 = min(fi + geo.wf_inner_lines, i1)
            rows = np.arange(fo, fo1)[:, None] * geo.pitch + np.arange(fi, fi1)[None, :]
            addrs.append(rows.ravel())
            tiles.append(np.full((rows.size, 2), (fo // geo.wf_outer, fi // geo.wf_inner_lines)))
    return (np.concatenate(addrs) + geo.gemm.out_base, np.concatenate(tiles))


def device_waves(gemm: GemmSpec, geo: OutputGeometry, chunks: list[Chunk], device: int):
    """Device ``device``'s waves in issue order, as ``(chunk, [(wg_outer_idx,
    wg_inner_idx), ...])``: stages 1..N (chunk (d - s) mod N), each stage's WGs in WG-id
    order, in waves of ``gemm.cus`` (a stage starts a new wave)."""
    n = gemm.devices
    for s in range(1, n + 1):
        ch = chunks[(device - s) % n]
        wg_o0, wg_o1 = ch.outer_start // geo.wg_outer, -(-ch.outer_stop // geo.wg_outer)
        wgs = [(wo, wi) for wo in range(wg_o0, wg_o1) for wi in range(geo.wg_grid[1])]
        for w0 in range(0, len(wgs), gemm.cus):
            yield ch, wgs[w0:w0 + gemm.cus]


def wave_lines(gemm: GemmSpec, geo: OutputGeometry, chunks: list[Chunk], device: int) -> list[int]:
    """Store lines of each of device ``device``'s waves (:func:`device_waves`), in order:
    what the closed-loop GEMM releases per wave (hw/env/gemm_producer.py)."""
    cache = _WG_ORDER.setdefault(geo, {})
    out = []
    for _, wave in device_waves(gemm, geo, chunks, device):
        total = 0
        for wg in wave:
            if wg not in cache:
                cache[wg] = wg_store_order(geo, *wg)
            total += len(cache[wg][0])
        out.append(total)
    return out


#: per geometry, for as long as it lives: (wg_outer_idx, wg_inner_idx) -> its
#: wg_store_order; shared by the devices of a workload (the same WGs in other orders)
_WG_ORDER: WeakKeyDictionary[OutputGeometry, dict] = WeakKeyDictionary()


def producer_trace(cfg: T3Config, gemm: GemmSpec, geo: OutputGeometry, chunks: list[Chunk],
                   program: DeviceProgram, partial: np.ndarray) -> Trace:
    """Device ``program.device``'s stores of ``partial`` (M x N raw bits).

    Timing rule: stages in order 1..N (chunk (d - s) mod N), each stage's WGs in WG-id
    order, dispatched in waves of ``gemm.cus`` WGs. A wave starting at cycle T computes for
    ``wg_cycles``; then each of its WGs emits one line per cycle (WF tiles in order, each
    tile row by row), the WGs of the wave interleaved round-robin within a cycle. The next
    wave starts when the wave's longest WG has emitted its last line.
    """
    d = program.device
    lines = geo.to_lines(partial)
    cache = _WG_ORDER.setdefault(geo, {})
    ud = lines.dtype
    parts: list[tuple[np.ndarray, ...]] = []
    t = 0
    for ch, wave in device_waves(gemm, geo, chunks, d):
        region = program.regions[ch.index]
        route = ROUTE_REMOTE if region.producer == ProducerAction.REMOTE else ROUTE_LOCAL
        addrs, tiles, j, k, wgid = [], [], [], [], []
        for slot, (wo, wi) in enumerate(wave):
            if (wo, wi) not in cache:
                cache[(wo, wi)] = wg_store_order(geo, wo, wi)
            a, tl = cache[(wo, wi)]
            addrs.append(a)
            tiles.append(tl)
            j.append(np.arange(len(a)))
            k.append(np.full(len(a), slot))
            wgid.append(np.full(len(a), wo * geo.wg_grid[1] + wi))
        jj, kk = np.concatenate(j), np.concatenate(k)
        order = np.argsort(jj * len(wave) + kk, kind="stable")
        a = np.concatenate(addrs)[order]
        tl = np.concatenate(tiles)[order]
        parts.append((t + gemm.wg_cycles + jj[order], np.concatenate(wgid)[order],
                      pack_wf_id(cfg, tl[:, 0], tl[:, 1]), a,
                      np.full(len(a), route)))
        t += gemm.wg_cycles + int(jj.max()) + 1
    time, wg, wf, addr, route = (np.concatenate([p[i] for p in parts]) for i in range(5))
    return Trace(time=time.astype(np.uint64), wg_id=wg.astype(np.uint32), wf_id=wf.astype(np.uint32),
                 addr=addr.astype(np.uint32), op=np.full(len(addr), int(Op.UPDATE), np.uint8),
                 route=route.astype(np.uint8), data=lines[addr - gemm.out_base].astype(ud))


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------

def check_trace(cfg: T3Config, gemm: GemmSpec, program: DeviceProgram, trace: Trace,
                where: str = "trace") -> None:
    """Check one device's trace against the config, the GEMM and the device's programming.
    ConfigError ``<where>: <field>: <problem>`` on the first problem found."""
    def bad(field: str, problem: str, idx: np.ndarray | None = None) -> None:
        at = ""
        if idx is not None and idx.size:
            at = f" (first at request {int(idx[0])})"
        raise ConfigError(f"{where}: {field}: {problem}{at}")

    geo = gemm.geometry(cfg.lanes)
    arrays = trace.arrays()
    ud = fparith.uint_dtype(gemm.dtype)
    for name, dt in FIELDS.items():
        a = arrays[name]
        want = ud if dt == "elem" else np.dtype(dt)
        if not isinstance(a, np.ndarray):
            bad(name, f"must be a numpy array, got {type(a).__name__}")
        if a.dtype != want:
            bad(name, f"dtype {a.dtype}: must be {want}")
        want_ndim = 2 if name == "data" else 1
        if a.ndim != want_ndim:
            bad(name, f"shape {a.shape}: must have {want_ndim} dimension(s)")
    if trace.data.shape[1] != cfg.lanes:
        bad("data", f"shape {trace.data.shape}: must be (requests, lanes={cfg.lanes})")
    n = len(trace.time)
    for name, a in arrays.items():
        if len(a) != n:
            bad(name, f"length {len(a)}: must equal the length of time ({n})")
    if n and (np.diff(trace.time.astype(np.int64)) < 0).any():
        bad("time", "must be non-decreasing", np.flatnonzero(np.diff(trace.time.astype(np.int64)) < 0) + 1)
    ok_ops = np.isin(trace.op, [int(Op.STORE), int(Op.UPDATE)])
    if not ok_ops.all():
        bad("op", f"value {int(trace.op[~ok_ops][0])}: must be STORE ({int(Op.STORE)}) or "
                  f"UPDATE ({int(Op.UPDATE)})", np.flatnonzero(~ok_ops))
    ok_route = trace.route <= ROUTE_REMOTE
    if not ok_route.all():
        bad("route", f"value {int(trace.route[~ok_route][0])}: must be 0 (local) or 1 (remote)",
            np.flatnonzero(~ok_route))
    out_of = (trace.addr < gemm.out_base) | (trace.addr >= geo.limit)
    if out_of.any():
        bad("addr", f"value {int(trace.addr[out_of][0])}: outside the output lines "
                    f"[{gemm.out_base}, {geo.limit}) (mem_depth_lines={cfg.mem_depth_lines})",
            np.flatnonzero(out_of))
    n_wg = geo.wg_grid[0] * geo.wg_grid[1]
    if n and int(trace.wg_id.max()) >= n_wg:
        bad("wg_id", f"value {int(trace.wg_id.max())}: the GEMM has {n_wg} workgroups",
            np.flatnonzero(trace.wg_id >= n_wg))
    seen = np.bincount(trace.addr.astype(np.int64) - gemm.out_base, minlength=geo.total_lines)
    if (seen != 1).any():
        line = int(np.flatnonzero(seen != 1)[0]) + gemm.out_base
        bad("addr", f"line {line} is stored {int(seen[line - gemm.out_base])} times: every output "
                    f"line must be stored exactly once per device")
    addr = trace.addr.astype(np.int64)
    in_region = np.zeros(n, bool)
    for ri, r in enumerate(program.regions):
        m = (addr >= r.base) & (addr < r.limit)
        in_region |= m
        idx = np.flatnonzero(m)
        want_route = ROUTE_REMOTE if r.producer == ProducerAction.REMOTE else ROUTE_LOCAL
        wrong = idx[trace.route[idx] != want_route]
        if wrong.size:
            bad("route", f"value {int(trace.route[wrong[0]])} at addr {int(addr[wrong[0]])}: region "
                         f"{ri} is {r.producer.name}, so route must be {want_route}", wrong)
        row, col = np.divmod(addr[idx] - r.base, r.pitch)
        outside = (row >= r.outer_extent) | (col >= r.inner_extent)
        if outside.any():
            bad("addr", f"value {int(addr[idx][outside][0])}: not a line of region {ri}", idx[outside])
        want = pack_wf_id(cfg, r.tile_outer0 + row // r.tile_outer,
                          r.tile_inner0 + col // r.tile_inner)
        wrong = idx[trace.wf_id[idx] != want]
        if wrong.size:
            i = int(wrong[0])
            bad("wf_id", f"value {int(trace.wf_id[i]):#x} at addr {int(addr[i])}: the line belongs to "
                         f"WF tile {int(want[np.searchsorted(idx, i)]):#x} of region {ri}", wrong)
    stray = ~in_region & (trace.route != ROUTE_LOCAL)
    if stray.any():
        bad("route", "remote request outside every region", np.flatnonzero(stray))


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------

def _device_file(d: int) -> str:
    return f"device{d}.npz"


def save_traces(directory: str | Path, workload: TraceSet) -> Path:
    """Write ``workload`` (e.g. a :class:`~sim_models.workload.Workload`) to ``directory``
    (created if needed). Returns the header path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    header = {
        "format": FORMAT_NAME, "version": FORMAT_VERSION,
        "config": workload.cfg.to_dict(), "gemm": workload.gemm.to_dict(),
        "fuse_allgather": bool(workload.fuse_allgather),
        "programs": [p.to_dict() for p in workload.programs],
        "devices": [{"file": _device_file(d), "requests": len(t)} for d, t in enumerate(workload.traces)],
    }
    for d, t in enumerate(workload.traces):
        np.savez(out / _device_file(d), **t.arrays())
    path = out / HEADER_FILE
    path.write_text(json.dumps(header, indent=1) + "\n")
    return path


def _field(header: dict, key: str, kind: type, where: str) -> Any:
    if key not in header:
        raise ConfigError(f"{where}: {key}: missing field")
    v = header[key]
    if not isinstance(v, kind) or isinstance(v, bool) and kind is not bool:
        raise ConfigError(f"{where}: {key}: must be a JSON {kind.__name__}, got {type(v).__name__}")
    return v


#: what a damaged or foreign file raises inside numpy / zipfile
_NPZ_ERRORS = (OSError, ValueError, zipfile.BadZipFile, EOFError, NotImplementedError)


def _load_npz(fpath: Path) -> dict[str, np.ndarray]:
    """Every array of the .npz archive ``fpath`` (no pickles). ConfigError naming the
    file, and the array when one member is damaged (bad CRC, object dtype, truncated)."""
    def why(e: BaseException) -> str:
        return " ".join(str(e).split())
    try:
        z = np.load(fpath, allow_pickle=False)
    except FileNotFoundError:
        raise ConfigError(f"{fpath}: cannot read: file not found") from None
    except _NPZ_ERRORS as e:
        raise ConfigError(f"{fpath}: not a readable .npz file: {why(e)}") from None
    if not isinstance(z, np.lib.npyio.NpzFile):      # a bare .npy array under that name
        raise ConfigError(f"{fpath}: not a .npz archive (a single .npy array; "
                          f"want one array per field: {', '.join(FIELDS)})")
    arrays = {}
    with z:
        for k in z.files:
            try:
                arrays[k] = z[k]
            except _NPZ_ERRORS as e:
                raise ConfigError(f"{fpath}: {k}: cannot load the array: {why(e)}") from None
    return arrays


def load_traces(directory: str | Path) -> tuple[T3Config, GemmSpec, list[DeviceProgram], list[Trace]]:
    """Read and validate a trace directory written by :func:`save_traces`."""
    base = Path(directory)
    hpath = base / HEADER_FILE
    where = str(hpath)
    text = read_text(hpath)
    try:
        header = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{where}: not valid JSON: {e.msg} at line {e.lineno}") from None
    if not isinstance(header, dict):
        raise ConfigError(f"{where}: must be a JSON object")
    fmt = _field(header, "format", str, where)
    if fmt != FORMAT_NAME:
        raise ConfigError(f"{where}: format={fmt!r}: not a T3 trace (expected {FORMAT_NAME!r})")
    version = _field(header, "version", int, where)
    if version != FORMAT_VERSION:
        raise ConfigError(f"{where}: version={version}: this reader supports version {FORMAT_VERSION}")
    cfg = T3Config.from_dict(_field(header, "config", dict, where), where=f"{where}: config")
    gemm = GemmSpec.from_dict(_field(header, "gemm", dict, where), where=f"{where}: gemm")
    try:
        check_config(cfg, gemm)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    _field(header, "fuse_allgather", bool, where)
    progs = _field(header, "programs", list, where)
    devs = _field(header, "devices", list, where)
    for name, lst in (("programs", progs), ("devices", devs)):
        if len(lst) != gemm.devices:
            raise ConfigError(f"{where}: {name}: {len(lst)} entries: need one per device ({gemm.devices})")
    programs = []
    for d, pd in enumerate(progs):
        pw = f"{where}: programs[{d}]"
        if not isinstance(pd, dict):
            raise ConfigError(f"{pw}: must be a JSON object")
        p = DeviceProgram.from_dict(pd, where=pw)
        if p.device != d:
            raise ConfigError(f"{pw}: device={p.device}: must be {d}")
        try:
            p.validate(cfg)
        except ConfigError as e:
            raise ConfigError(f"{pw}: {e}") from None
        programs.append(p)
    traces = []
    for d, entry in enumerate(devs):
        ew = f"{where}: devices[{d}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{ew}: must be a JSON object")
        fname = _field(entry, "file", str, ew)
        requests = _field(entry, "requests", int, ew)
        if requests < 0:
            raise ConfigError(f"{ew}: requests={requests}: must be >= 0")
        fpath = base / fname
        if Path(fname).name != fname:
            raise ConfigError(f"{ew}: file={fname!r}: must be a plain file name in {base}")
        arrays = _load_npz(fpath)
        for k in FIELDS:
            if k not in arrays:
                raise ConfigError(f"{fpath}: {k}: missing array")
        for k in arrays:
            if k not in FIELDS:
                raise ConfigError(f"{fpath}: {k}: unknown array (known: {', '.join(FIELDS)})")
        trace = Trace(**arrays)
        check_trace(cfg, gemm, programs[d], trace, where=str(fpath))
        if len(trace) != requests:
            raise ConfigError(f"{fpath}: time: {len(trace)} requests: the header says {requests}")
        traces.append(trace)
    return cfg, gemm, programs, traces


def load_header(directory: str | Path) -> dict:
    """The raw header (after :func:`load_traces` has validated the directory)."""
    return json.loads((Path(directory) / HEADER_FILE).read_text())
