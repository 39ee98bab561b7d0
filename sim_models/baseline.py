"""The unfused baseline: GEMM, then a classic ring reduce-scatter, then a ring all-gather.

Every device first STOREs its whole partial output to local memory. Then N - 1
reduce-scatter steps: at step k device d reads chunk (d - k - 1) mod N and sends it to
d + 1, which reads its own copy, adds (received running sum + local partial, rounding
once) and writes the sum back. After step N - 2 device c holds chunk c reduced. Then
N - 1 all-gather steps: at step k device d reads chunk (d - k) mod N and sends it to
d + 1, which writes it.

The summation order is the fused ring's, so the memories match the golden T3 result bit
for bit with one documented exception: T3 accumulates into zeroed memory (+0 + x), the
baseline adds partials directly, so an element whose partials are *all* -0 ends -0 here
and +0 under T3. The workload generator never produces a -0 partial (no zero inputs).

Counts per device, in lines: ``dram_reads``, ``dram_writes``, ``link_out``.

The step order is defined once, by :func:`ring_steps` (a list of :class:`RingStep`): this
model runs it, and the RTL ring bench (verif/tb_ring.py, mode ``baseline``) plays the
same list on the hardware, programmed with :func:`baseline_programs` (every producer
store local, each step one DMA kick per device, :meth:`RingStep.kick_regions`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from contract.gemm import GemmSpec, split_chunks
from contract.program import DeviceProgram
from contract.sizing import check_config
from contract.spec import PHASE_STORE, PHASE_UPDATE, FireOp, ProducerAction, T3Config

from .fparith import add_bits, uint_dtype

__all__ = ["BaselineResult", "run_baseline", "RingStep", "ring_steps", "baseline_programs",
           "REDUCE_SCATTER", "ALL_GATHER"]

#: RingStep.phase of a reduce-scatter step (the receiver adds: DMA as UPDATEs) and of an
#: all-gather step (the receiver overwrites: DMA as STOREs): the contract's tracker /
#: DMA-kick phases
REDUCE_SCATTER, ALL_GATHER = PHASE_UPDATE, PHASE_STORE


@dataclass(frozen=True)
class RingStep:
    """One step of the unfused ring collective: every device ``d`` sends chunk
    ``send[d]`` to device ``d + 1`` (mod N), which adds it to its own copy
    (``phase`` REDUCE_SCATTER) or overwrites its copy with it (ALL_GATHER). The next step
    starts when every device has applied what it received."""
    phase: int
    send: tuple[int, ...]

    @property
    def reduces(self) -> bool:
        return self.phase == REDUCE_SCATTER

    def received(self, d: int) -> int:
        """The chunk device ``d`` receives (from ``d - 1``)."""
        return self.send[(d - 1) % len(self.send)]

    def kick_regions(self, programs: Sequence[DeviceProgram],
                     chunk_bases: Sequence[int]) -> list[int]:
        """Per device, the region of its program that holds the chunk it sends (the DMA
        kick of this step moves that whole region); ``chunk_bases[c]``: chunk c's first
        line."""
        out = []
        for d, prog in enumerate(programs):
            region, _ = prog.region_of(chunk_bases[self.send[d]])
            if region is None:
                raise ValueError(f"device {d}: no region holds chunk {self.send[d]} "
                                 f"(line {chunk_bases[self.send[d]]})")
            out.append(region)
        return out

    def memory_requests(self, chunk_lines: Sequence[int]) -> list[int]:
        """Per device, the requests its memory applies in this step: one READ per line
        of the chunk it sends (the DMA) and one UPDATE or STORE per line it receives;
        ``chunk_lines[c]``: chunk c's lines."""
        return [chunk_lines[self.send[d]] + chunk_lines[self.received(d)]
                for d in range(len(self.send))]


def ring_steps(devices: int, *, allgather: bool = True) -> list[RingStep]:
    """The unfused ring collective on ``devices`` devices: N - 1 reduce-scatter steps (at
    step k device d sends chunk d - k - 1, so device c ends with chunk c reduced), then,
    with ``allgather``, N - 1 all-gather steps (at step k device d sends chunk d - k)."""
    n = devices
    steps = [RingStep(REDUCE_SCATTER, tuple((d - k - 1) % n for d in range(n)))
             for k in range(n - 1)]
    if allgather:
        steps += [RingStep(ALL_GATHER, tuple((d - k) % n for d in range(n)))
                  for k in range(n - 1)]
    return steps


def baseline_programs(programs: Sequence[DeviceProgram]) -> list[DeviceProgram]:
    """The T3 programs' regions with no tracking, for the baseline on the T3 hardware:
    every producer store is local; a DMA kick of a region moves it to the next device as
    UPDATEs (kick phase REDUCE_SCATTER) or as STOREs (ALL_GATHER)."""
    out = []
    for p in programs:
        regions = tuple(dataclasses.replace(r, producer=ProducerAction.LOCAL, update_contribs=0,
                                            store_contribs=0, update_fire=FireOp.UPDATE,
                                            store_fire=FireOp.STORE)
                        for r in p.regions)
        out.append(DeviceProgram(device=p.device, next_device=p.next_device, regions=regions))
    return out


@dataclass
class BaselineResult:
    memories: list[np.ndarray]        # per device: (mem_depth_lines, lanes) raw bits
    counts: list[dict[str, int]]      # per device: dram_reads, dram_writes, link_out


def run_baseline(cfg: T3Config, gemm: GemmSpec, partials: Sequence[np.ndarray], *,
                 allgather: bool = True) -> BaselineResult:
    geo = check_config(cfg, gemm)
    n = gemm.devices
    spans = [(c.base, c.limit) for c in split_chunks(gemm, geo)]
    mems = []
    counts = [dict(dram_reads=0, dram_writes=0, link_out=0) for _ in range(n)]
    for d in range(n):
        mem = np.zeros((cfg.mem_depth_lines, cfg.lanes), uint_dtype(gemm.dtype))
        mem[gemm.out_base:geo.limit] = geo.to_lines(partials[d])
        counts[d]["dram_writes"] += geo.total_lines
        mems.append(mem)

    for st in ring_steps(n, allgather=allgather):
        sent = []
        for d in range(n):                       # all sends of a step read before any write
            b, l = spans[st.send[d]]
            sent.append(mems[d][b:l].copy())
            counts[d]["dram_reads"] += l - b
            counts[d]["link_out"] += l - b
        for d in range(n):
            dst = (d + 1) % n
            b, l = spans[st.send[d]]
            if st.reduces:
                mems[dst][b:l] = add_bits(gemm.dtype, sent[d], mems[dst][b:l])
                counts[dst]["dram_reads"] += l - b
            else:
                mems[dst][b:l] = sent[d]
            counts[dst]["dram_writes"] += l - b
    return BaselineResult(memories=mems, counts=counts)
