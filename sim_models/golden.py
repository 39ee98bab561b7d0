"""The golden event-level model of N T3 units in a ring (fused RS, fused AG).

Per device: the address map (the device's :class:`~contract.program.DeviceProgram`),
near-memory STORE/UPDATE on a zero-initialised line memory (UPDATE =
``fparith.add_bits``, canonical NaN), a tracker keyed by ``(phase, wf_id)`` (phase 0 =
UPDATE, 1 = STORE) counting lines against the region's threshold, and a trigger that,
when a tile completes, reads its lines (``TileGeometry.addresses()`` order) and sends
them to the next device with the region's fire op, the same WF id and the translated
address. Links are FIFOs (device d -> d + 1).

Events: the head of every producer trace (in trace order) and of every link FIFO. With
``seed=None`` they are taken in issue-time order (producer request: its trace time;
link packet: send time + ``link_latency_cycles``, ``link_lines_per_cycle`` lines per
cycle per link); with a
seed, each step takes the head of a uniformly chosen non-empty source, which explores
arbitrary interleavings between devices and sources while keeping every FIFO in order.

Misuse raises :class:`RingError` (a ConfigError, so the CLI prints one line): a request
whose tile is not tracked for its op, a WF id that does not match its address, a
tile counted beyond its threshold, a link arrival outside every region, a route that
disagrees with the address map, tiles still incomplete at the end.

Provenance: every line carries the tuple of devices whose partials it sums, in the
order they joined the running sum (an arriving link UPDATE's running sum comes first,
then what memory holds; a local UPDATE appends the device). Because IEEE addition is
commutative, this is the fold order ``RingResult.order`` reports per chunk.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from contract.gemm import GemmSpec
from contract.program import DeviceProgram, Region
from contract.spec import (PHASE_STORE, PHASE_UPDATE, ConfigError, FireOp, Op, ProducerAction,
                           T3Config, fire_packet_op)

from . import fparith
from .trace import ROUTE_LOCAL, ROUTE_REMOTE, Trace

__all__ = ["RingError", "FireRecord", "RingResult", "run_ring", "COUNT_KEYS"]

COUNT_KEYS = ("producer_local", "producer_remote", "link_in_update", "link_in_store",
              "link_out", "dma_reads", "fires", "completions", "nmc_updates",
              "dram_reads", "dram_writes", "tracker_peak")


class RingError(ConfigError):
    """The programming or the traces make the ring misbehave (one-line message)."""


@dataclass(frozen=True)
class FireRecord:
    """A completed tracker entry: tile ``wf_id`` of ``phase`` fired ``op`` (NONE: the
    tile completed and nothing was sent). ``data``: the tile's lines as read."""
    wf_id: int
    phase: int
    op: FireOp
    src_addrs: tuple[int, ...]
    dest_addrs: tuple[int, ...]
    data: np.ndarray


@dataclass
class RingResult:
    cfg: T3Config
    programs: list[DeviceProgram]
    memories: list[np.ndarray]            # per device: (mem_depth_lines, lanes) raw bits
    fires: list[list[FireRecord]]         # per device, in fire order
    counts: list[dict[str, int]]          # per device, keys COUNT_KEYS
    order: list[tuple[int, ...]]          # per chunk (regions by address): fold order
    gemm: GemmSpec | None = None

    def final_matrix(self, device: int, gemm: GemmSpec | None = None) -> np.ndarray:
        """The M x N output as held in ``device``'s memory."""
        gemm = gemm or self.gemm
        if gemm is None:
            raise ConfigError("final_matrix: no GemmSpec (pass gemm= to run_ring or here)")
        geo = gemm.geometry(self.cfg.lanes)
        return geo.from_lines(self.memories[device][gemm.out_base:geo.limit])


@dataclass
class _Packet:
    time: float       # arrival time at the receiver (cycles)
    op: int
    addr: int
    wf: int
    data: np.ndarray
    prov: tuple[int, ...]


class _Device:
    def __init__(self, cfg: T3Config, program: DeviceProgram, ud: np.dtype):
        self.cfg, self.program = cfg, program
        self.mem = np.zeros((cfg.mem_depth_lines, cfg.lanes), ud)
        self.prov: list[tuple[int, ...]] = [()] * cfg.mem_depth_lines
        self.region_at = np.full(cfg.mem_depth_lines, -1, np.int32)
        for i, r in enumerate(program.regions):
            self.region_at[r.base:r.limit] = i
        self.tracker: dict[tuple[int, int], int] = {}
        self.thresholds: dict[tuple[int, int], int] = {}
        self.done: set[tuple[int, int]] = set()
        self.fires: list[FireRecord] = []
        self.counts = dict.fromkeys(COUNT_KEYS, 0)
        self.link_free = 0.0        # next time (cycles) the outgoing link can accept a line

    def region(self, addr: int) -> tuple[int, Region | None]:
        i = int(self.region_at[addr])
        return (i, self.program.regions[i]) if i >= 0 else (-1, None)


def _op_name(op: int) -> str:
    try:
        return Op(op).name
    except ValueError:
        return f"op {op}"


def run_ring(cfg: T3Config, programs: Sequence[DeviceProgram], traces: Sequence[Trace], *,
             seed: int | None = None, gemm: GemmSpec | None = None) -> RingResult:
    """Run the ring until every source is drained. ``gemm`` (optional) enables
    ``RingResult.final_matrix``."""
    n = cfg.ring_devices
    if len(programs) != n or len(traces) != n:
        raise ConfigError(f"run_ring: {len(programs)} programs and {len(traces)} traces: "
                          f"need ring_devices={n} of each")
    for d, p in enumerate(programs):
        p.validate(cfg)
        if p.device != d:
            raise ConfigError(f"run_ring: programs[{d}].device={p.device}: must be {d}")
    fmt = cfg.fmt
    ud = fparith.uint_dtype(fmt)
    devs = [_Device(cfg, p, ud) for p in programs]
    links: list[deque[_Packet]] = [deque() for _ in range(n)]     # links[d]: into device d
    cursor = [0] * n
    rng = random.Random(seed) if seed is not None else None
    depth = cfg.mem_depth_lines
    for d, t in enumerate(traces):
        if len(t) and int(np.max(t.addr)) >= depth:
            raise RingError(f"device {d}: trace addr={int(np.max(t.addr))}: beyond mem_depth_lines={depth}")

    def send(d: int, now: float, op: int, addr: int, wf: int, data: np.ndarray, prov) -> None:
        dev = devs[d]
        t = max(now + cfg.link_latency_cycles, dev.link_free)
        dev.link_free = t + 1 / cfg.link_lines_per_cycle
        dev.counts["link_out"] += 1
        links[dev.program.next_device].append(_Packet(t, op, addr, wf, data, prov))

    def apply(d: int, op: int, addr: int, data: np.ndarray, prov, from_link: bool) -> None:
        dev = devs[d]
        if op == Op.STORE:
            dev.mem[addr] = data
            dev.prov[addr] = prov
        elif op == Op.UPDATE:
            dev.mem[addr] = fparith.add_bits(fmt, dev.mem[addr], data)
            dev.prov[addr] = prov + dev.prov[addr] if from_link else dev.prov[addr] + prov
            dev.counts["nmc_updates"] += 1
            dev.counts["dram_reads"] += 1
        else:
            raise RingError(f"device {d}: op={op} at addr {addr}: only STORE and UPDATE write memory")
        dev.counts["dram_writes"] += 1

    def track(d: int, now: float, ri: int, r: Region, op: int, addr: int, wf: int, what: str) -> None:
        dev = devs[d]
        is_store = op == Op.STORE
        phase = PHASE_STORE if is_store else PHASE_UPDATE
        where = f"device {d}: {what} {_op_name(op)} addr={addr} wf_id={wf:#x}"
        if r.contribs(is_store) == 0:
            raise RingError(f"{where}: region {ri} does not track {_op_name(op)}s")
        if not r.owns_tile(cfg, wf) or r.tile_of_addr(cfg, addr) != wf:
            raise RingError(f"{where}: the line is not in WF tile {wf:#x} of region {ri}")
        key = (phase, wf)
        if key in dev.done:
            raise RingError(f"{where}: tile already reached its threshold (count beyond threshold)")
        if key not in dev.tracker:
            dev.thresholds[key] = r.threshold(cfg, wf, is_store)
            dev.tracker[key] = 0
            dev.counts["tracker_peak"] = max(dev.counts["tracker_peak"], len(dev.tracker))
        dev.tracker[key] += 1
        if dev.tracker[key] < dev.thresholds[key]:
            return
        del dev.tracker[key]
        dev.done.add(key)
        geo = r.tile(cfg, wf)
        src = tuple(geo.addresses())
        fire = r.fire(is_store)
        data = dev.mem[list(src)].copy()
        dest: tuple[int, ...] = ()
        dev.counts["completions"] += 1
        if fire != FireOp.NONE:
            dest = tuple(r.translate(a, r.dest_base) for a in src)
            out_op = int(fire_packet_op(fire))
            for i, (a, da) in enumerate(zip(src, dest)):
                send(d, now, out_op, da, wf, data[i], dev.prov[a])
            dev.counts["fires"] += 1
            dev.counts["dma_reads"] += len(src)
            dev.counts["dram_reads"] += len(src)
        dev.fires.append(FireRecord(wf_id=wf, phase=phase, op=fire, src_addrs=src,
                                    dest_addrs=dest, data=data))

    def producer_step(d: int) -> None:
        t, i = traces[d], cursor[d]
        cursor[d] += 1
        now, op, addr, wf = int(t.time[i]), int(t.op[i]), int(t.addr[i]), int(t.wf_id[i])
        route = int(t.route[i])
        dev = devs[d]
        ri, r = dev.region(addr)
        action = r.producer if r is not None else ProducerAction.LOCAL
        want_route = ROUTE_REMOTE if action == ProducerAction.REMOTE else ROUTE_LOCAL
        if route != want_route:
            raise RingError(f"device {d}: trace request {i} addr={addr}: route={route} but the "
                            f"address map says {action.name}")
        if action == ProducerAction.REMOTE:
            dev.counts["producer_remote"] += 1
            send(d, now, op, r.translate(addr, r.remote_base), wf, t.data[i], (d,))
            return
        dev.counts["producer_local"] += 1
        apply(d, op, addr, t.data[i], (d,), from_link=False)
        if action == ProducerAction.TRACKED:
            track(d, now, ri, r, op, addr, wf, f"trace request {i}")

    def link_step(d: int) -> None:
        pkt = links[d].popleft()
        dev = devs[d]
        ri, r = dev.region(pkt.addr)
        name = _op_name(pkt.op)
        if r is None:
            raise RingError(f"device {d}: link {name} addr={pkt.addr}: outside every region")
        dev.counts["link_in_store" if pkt.op == Op.STORE else "link_in_update"] += 1
        is_store = pkt.op == Op.STORE
        if r.contribs(is_store) == 0:
            raise RingError(f"device {d}: link {name} addr={pkt.addr} wf_id={pkt.wf:#x}: "
                            f"region {ri} does not track {name}s")
        apply(d, pkt.op, pkt.addr, pkt.data, pkt.prov, from_link=True)
        track(d, pkt.time, ri, r, pkt.op, pkt.addr, pkt.wf, "link")

    # sources 0..n-1: producers; n..2n-1: links into device (s - n)
    while True:
        live = [s for s in range(n) if cursor[s] < len(traces[s])]
        live += [n + d for d in range(n) if links[d]]
        if not live:
            break
        if rng is None:
            def head_time(s: int) -> float:
                return int(traces[s].time[cursor[s]]) if s < n else links[s - n][0].time
            src = min(live, key=lambda s: (head_time(s), s))
        else:
            src = rng.choice(live)
        if src < n:
            producer_step(src)
        else:
            link_step(src - n)

    for d, dev in enumerate(devs):
        if dev.tracker:
            (phase, wf), cnt = next(iter(dev.tracker.items()))
            raise RingError(f"device {d}: {len(dev.tracker)} tile(s) never completed, e.g. phase {phase} "
                            f"wf_id={wf:#x} at {cnt}/{dev.thresholds[(phase, wf)]}")
    return RingResult(cfg=cfg, programs=list(programs), memories=[dv.mem for dv in devs],
                      fires=[dv.fires for dv in devs], counts=[dv.counts for dv in devs],
                      order=_chunk_orders(programs[0], devs), gemm=gemm)


def _chunk_orders(program: DeviceProgram, devs: list[_Device]) -> list[tuple[int, ...]]:
    """Per region (by address): the longest provenance found on any device; every line of
    the region on that device must agree."""
    out = []
    for r in sorted(program.regions, key=lambda r: r.base):
        best: tuple[int, ...] = ()
        for d, dev in enumerate(devs):
            provs = set(dev.prov[r.base:r.limit])
            longest = max(provs, key=len)
            if len(longest) > len(best):
                if len(provs) != 1:
                    raise RingError(f"device {d}: region [{r.base}, {r.limit}): lines hold different "
                                    f"sums {sorted(provs)[:3]}")
                best = longest
        out.append(best)
    return out
