"""Ring collectives on their own (not overlapped): reduce-scatter and all-gather run by a
collective kernel on the CUs, and the link-only lower bound.

A ring over ``n`` devices moves ``n - 1`` chunks of ``C = S / n`` bytes through every
link. A step's time is the link latency plus the slower of the link transfer and the
step's DRAM traffic at full DRAM bandwidth (the kernel streams: it reads, reduces and
sends in slices, so the three overlap). Per step and device the kernel's DRAM traffic
is (see traffic.py): reduce-scatter 3C (incoming written, incoming and local partial
read), the last step 4C (plus the result written); all-gather 2C (incoming written and
read to forward), the last step C.
"""

from __future__ import annotations

from .hardware import Hardware

__all__ = ["ring_rs_s", "ring_ag_s", "ring_link_bound_s", "step_s"]


def step_s(hw: Hardware, chunk: float, dram_bytes: float) -> float:
    return hw.link.latency_s + max(chunk / hw.link.Bps, dram_bytes / hw.gpu.dram_Bps)


def ring_rs_s(hw: Hardware, out_bytes: float, n: int) -> float:
    c = out_bytes / n
    return (n - 2) * step_s(hw, c, 3 * c) + step_s(hw, c, 4 * c)


def ring_ag_s(hw: Hardware, out_bytes: float, n: int) -> float:
    c = out_bytes / n
    return (n - 2) * step_s(hw, c, 2 * c) + step_s(hw, c, c)


def ring_link_bound_s(hw: Hardware, out_bytes: float, n: int) -> float:
    """No collective can beat this: n - 1 chunks serialised on one link, one latency
    (perfectly pipelined hops)."""
    return (n - 1) * out_bytes / n / hw.link.Bps + hw.link.latency_s
