"""DRAM bytes read and written per device, by phase, for each configuration.

Counted at the DRAM interface. ``S`` = output bytes (T x H x 2), ``C = S / n``,
``I`` = GEMM input bytes after L2 reuse (gemm_time.input_traffic).

Baseline (sequential, ideal, sw_overlap): the GEMM reads I and writes S. The ring RS
kernel reads its own chunk to send (step 1), then per step reads the incoming chunk
(which the neighbour wrote into this device's memory) and the local partial, and sends
the sum; the last step writes the result: reads (2n-1)C, writes (n-1)C incoming + C.
The ring AG writes the n-1 incoming chunks and reads n-1 chunks to send (own + n-2
forwards): (n-1)C each way.

T3 (t3, t3_mca): stage-1 stores go to the neighbour (no local write); stages 2..n are
local UPDATEs: writes (n-1)C. The n-1 incoming chunks are UPDATEs executed by the
near-memory ALU: one write each at the interface (the read-add happens beside the
banks and is reported as ``nmc_internal_read_bytes``). The DMA reads the n-2 reduced
intermediate chunks to send: reads (n-2)C. Fusion removes the GEMM output write/read
round trip; NMC removes the reads of the incoming and local partials.
The AG is unfused, as in the paper: same bytes as the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

from .collective_time import ag_steps, rs_steps

__all__ = ["Traffic", "baseline_traffic", "t3_traffic", "nmc_traffic"]


@dataclass(frozen=True)
class Traffic:
    gemm_read: float
    gemm_write: float
    rs_read: float
    rs_write: float
    ag_read: float
    ag_write: float
    nmc_internal_read: float = 0.0

    @property
    def read(self) -> float:
        return self.gemm_read + self.rs_read + self.ag_read

    @property
    def write(self) -> float:
        return self.gemm_write + self.rs_write + self.ag_write

    @property
    def total(self) -> float:
        return self.read + self.write


def _sum(steps: list[tuple[float, float]]) -> tuple[float, float]:
    return sum(r for r, _ in steps), sum(w for _, w in steps)


def baseline_traffic(input_bytes: float, out_bytes: float, n: int) -> Traffic:
    """The ring kernels' step by step traffic (collective_time): RS (2n-1)C read, nC
    written; AG (n-1)C each way."""
    c = out_bytes / n
    return Traffic(input_bytes, out_bytes, *_sum(rs_steps(c, n)), *_sum(ag_steps(c, n)))


def t3_traffic(input_bytes: float, out_bytes: float, n: int) -> Traffic:
    c = out_bytes / n
    return Traffic(input_bytes, (n - 1) * c, (n - 2) * c, (n - 1) * c, *_sum(ag_steps(c, n)),
                   nmc_internal_read=(n - 1) * c)


def nmc_traffic(input_bytes: float, out_bytes: float, n: int) -> Traffic:
    """Unfused RS with near-memory UPDATEs (the paper's NMC-only case): the GEMM writes
    its whole output S; each of the n - 1 steps the DMA reads the chunk to send (own,
    then the reduced one) and the incoming chunk is an UPDATE (one write at the
    interface): RS (n-1)C read, (n-1)C written; the AG as the baseline's."""
    c = out_bytes / n
    return Traffic(input_bytes, out_bytes, (n - 1) * c, (n - 1) * c, *_sum(ag_steps(c, n)),
                   nmc_internal_read=(n - 1) * c)
