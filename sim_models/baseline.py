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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .fparith import add_bits, uint_dtype
from .gemm import GemmSpec, check_config, split_chunks
from contract.spec import T3Config

__all__ = ["BaselineResult", "run_baseline"]


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

    def step(chunk_of, combine: bool) -> None:
        sent = []
        for d in range(n):                       # all sends of a step read before any write
            b, l = spans[chunk_of(d)]
            sent.append(mems[d][b:l].copy())
            counts[d]["dram_reads"] += l - b
            counts[d]["link_out"] += l - b
        for d in range(n):
            dst = (d + 1) % n
            b, l = spans[chunk_of(d)]
            if combine:
                mems[dst][b:l] = add_bits(gemm.dtype, sent[d], mems[dst][b:l])
                counts[dst]["dram_reads"] += l - b
            else:
                mems[dst][b:l] = sent[d]
            counts[dst]["dram_writes"] += l - b

    for k in range(n - 1):
        step(lambda d, k=k: (d - k - 1) % n, combine=True)
    if allgather:
        for k in range(n - 1):
            step(lambda d, k=k: (d - k) % n, combine=False)
    return BaselineResult(memories=mems, counts=counts)
