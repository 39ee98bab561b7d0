"""Ring collectives on their own (not overlapped): reduce-scatter and all-gather run by a
collective kernel on the CUs, and the link-only lower bound.

A ring over ``n`` devices moves ``n - 1`` chunks of ``C = S / n`` bytes through every
link. A step's time is the link latency plus the slower of the link transfer and the
step's DRAM traffic at full DRAM bandwidth (the kernel streams: it reads, reduces and
sends in slices, so the three overlap). Per step and device the kernel's DRAM traffic
(:func:`rs_steps`, :func:`ag_steps`, also the source of traffic.py's byte counts):

* reduce-scatter, step 1: read the own partial chunk to send, write the incoming one;
  steps 2..n-1: read the incoming chunk and the local partial (to reduce and send),
  write the next incoming one; after the last step, streaming behind its receive: read
  the incoming chunk and the local partial, write the reduced result;
* all-gather, every step: read the chunk to send (own, then forwards), write the
  incoming one.
"""

from __future__ import annotations

from .hardware import Hardware

__all__ = ["rs_steps", "ag_steps", "ring_rs_s", "ring_ag_s", "ring_link_bound_s", "step_s"]


def rs_steps(c: float, n: int) -> list[tuple[float, float]]:
    """(DRAM read, DRAM write) bytes of each of the n - 1 reduce-scatter steps."""
    steps = [(c, c)] + [(2 * c, c)] * (n - 2)
    r, w = steps[-1]
    steps[-1] = (r + 2 * c, w + c)            # the final reduce streams behind the last step
    return steps


def ag_steps(c: float, n: int) -> list[tuple[float, float]]:
    return [(c, c)] * (n - 1)


def step_s(hw: Hardware, chunk: float, dram_bytes: float) -> float:
    return hw.link.latency_s + max(chunk / hw.link.Bps, dram_bytes / hw.gpu.dram_Bps)


def ring_rs_s(hw: Hardware, out_bytes: float, n: int) -> float:
    c = out_bytes / n
    return sum(step_s(hw, c, r + w) for r, w in rs_steps(c, n))


def ring_ag_s(hw: Hardware, out_bytes: float, n: int) -> float:
    c = out_bytes / n
    return sum(step_s(hw, c, r + w) for r, w in ag_steps(c, n))


def ring_link_bound_s(hw: Hardware, out_bytes: float, n: int) -> float:
    """No collective can beat this: n - 1 chunks serialised on one link, one latency
    (perfectly pipelined hops)."""
    return (n - 1) * out_bytes / n / hw.link.Bps + hw.link.latency_s
