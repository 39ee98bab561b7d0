"""What one device of the fused ring sends on its outgoing link, from the golden ring
model (sim_models.golden.run_ring): its REMOTE producer stores (trace order) and the DMA
packets of the tiles it fired (fire order; each tile's lines in the order of
TileGeometry.addresses()), and how many requests its tracker counts.

The track & trigger unit bench (verif/tb_track_trigger.py) expects exactly this traffic
on the unit's egress and replays the previous device's on its ingress.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from contract.program import DeviceProgram
from contract.spec import FireOp, Op, fire_packet_op

from .golden import FireRecord, RingResult
from .trace import ROUTE_REMOTE, Trace

__all__ = ["LinkPacket", "LinkTraffic", "link_traffic", "remote_stores", "fire_packets",
           "tracked_requests"]


@dataclass(frozen=True)
class LinkPacket:
    """One packet on a link: the memory opcode, the receiving device, the line address
    on it, the WF id and the line's raw elements (lane 0 first)."""
    op: Op
    dest: int
    addr: int
    wf_id: int
    data: np.ndarray


@dataclass
class LinkTraffic:
    """Everything a device sends to its next device."""
    remote: list[LinkPacket]            # REMOTE producer stores, trace order
    dma: list[list[LinkPacket]]         # per fire that sends, fire order: its tile's packets

    @property
    def dma_packets(self) -> list[LinkPacket]:
        return [p for tile in self.dma for p in tile]


def remote_stores(program: DeviceProgram, trace: Trace, dest: int) -> list[LinkPacket]:
    """The producer requests of ``trace`` that go to the next device (``dest``), at their
    translated addresses, in trace order."""
    out = []
    for i in np.flatnonzero(trace.route == ROUTE_REMOTE):
        addr = int(trace.addr[i])
        _, region = program.region_of(addr)
        out.append(LinkPacket(op=Op(int(trace.op[i])), dest=dest,
                              addr=region.translate(addr, region.remote_base),
                              wf_id=int(trace.wf_id[i]), data=trace.data[i]))
    return out


def fire_packets(fires: Sequence[FireRecord], dest: int) -> list[list[LinkPacket]]:
    """Per fire that sends packets (FireOp.NONE sends none), the tile's DMA packets to
    ``dest``, one per line, in line order."""
    return [[LinkPacket(op=fire_packet_op(f.op), dest=dest, addr=a, wf_id=f.wf_id, data=f.data[i])
             for i, a in enumerate(f.dest_addrs)]
            for f in fires if f.op != FireOp.NONE]


def link_traffic(programs: Sequence[DeviceProgram], traces: Sequence[Trace], ring: RingResult,
                 device: int) -> LinkTraffic:
    """What ``device`` sends to its next device in the golden ring ``ring`` (run on
    ``programs`` and ``traces``)."""
    dest = programs[device].next_device
    return LinkTraffic(remote=remote_stores(programs[device], traces[device], dest),
                       dma=fire_packets(ring.fires[device], dest))


def tracked_requests(program: DeviceProgram, fires: Sequence[FireRecord]) -> int:
    """Requests the device's tracker counted: per fired tile, its lines times the
    contributions per line its region expects in the fire's phase."""
    total = 0
    for f in fires:
        _, region = program.region_of(f.src_addrs[0])
        total += len(f.src_addrs) * region.contribs(bool(f.phase))
    return total
