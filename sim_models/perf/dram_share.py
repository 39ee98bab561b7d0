"""DRAM bandwidth sharing between the GEMM stream and the communication stream.

Fluid model: each stream *offers* a rate (bytes/s) it would use unhindered; the memory
controller delivers at most ``bw`` in total.

* ``fifo`` (plain first-come first-served, T3 without MCA and software overlap): when
  oversubscribed, each stream gets bandwidth in proportion to its offered rate.
* ``mca`` (T3-MCA, compute first): the GEMM gets what it asks for, except the floor the
  starvation limit guarantees to communication (one request per ``limit + 1`` memory
  slots); communication gets the rest, but only while the queue occupancy is below the
  threshold. With the GEMM alone keeping utilisation ``rho``, the occupancy is at or
  above ``thr`` a fraction ``rho**thr`` of the time (M/M/1 tail), when communication
  may not issue.
"""

from __future__ import annotations

from .hardware import T3Unit

__all__ = ["POLICIES", "share"]

POLICIES = ("fifo", "mca")


def share(policy: str, gemm_Bps: float, comm_Bps: float, bw: float,
          t3: T3Unit | None = None) -> tuple[float, float]:
    """Delivered (gemm, comm) bandwidth for offered rates under ``policy``."""
    if gemm_Bps < 0 or comm_Bps < 0 or bw <= 0:
        raise ValueError("rates must be >= 0 and bandwidth > 0")
    if policy == "fifo":
        total = gemm_Bps + comm_Bps
        if total <= bw:
            return gemm_Bps, comm_Bps
        return bw * gemm_Bps / total, bw * comm_Bps / total
    if policy == "mca":
        assert t3 is not None
        floor = min(comm_Bps, bw / (t3.mca_starvation_limit + 1))
        g = min(gemm_Bps, bw - floor)
        rho = g / bw
        left = (bw - g) * (1.0 - rho ** t3.mca_queue_threshold)
        return g, min(comm_Bps, max(floor, left))
    raise ValueError(f"policy={policy!r}: must be one of {', '.join(POLICIES)}")
