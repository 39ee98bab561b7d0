"""Stage-by-stage pipeline of a GEMM fused with a ring reduce-scatter (one device; all
devices behave alike, so what this device receives for chunk j is what it sent for
chunk j-1, one link latency later).

The output is cut into ``n`` chunks computed as ``n`` stages; chunk ``x`` leaves the
device as transfer ``X_x`` (x = 1..n-1). Stage ``j`` of the GEMM overlaps the link
traffic of the transfers in flight, and both streams share DRAM (dram_share). With
``c_j`` the end of stage j and ``F_x`` the end of transfer x:

* stage time: alone ``g0 = max(w, b / bw)`` (w compute, b DRAM bytes of the stage);
  fully overlapped ``g1 = max(w, b / bw_gemm)``; overlapped for ``o = C / rate`` of it:
  ``g = min(g1, g0 + o (1 - g0 / g1))``;
* T3 (tile-granular tracking): stage-1 stores stream to the neighbour, so stage 1
  cannot end before its chunk crossed the link: ``c_1 = max(g_1, C / rate)``;
  ``F_x = max(S_x + C / rate, c_x + d, F_{x-1} + L + d)`` with start
  ``S_x = max(F_{x-1}, c_{x-1})`` and ``d`` = trigger latency + one tile on the link;
* software (chunk-granular flags): ``S_x = max(F_{x-1}, c_x + sync, S_{x-1} + L)``,
  ``F_x = max(S_x + C / rate, F_{x-1} + L + tile / B)``;
* end of the reduce-scatter: ``max(c_n (+ sync), F_{n-1} + L + d)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .contention import LINES_PER_FETCH, service, share as cshare
from .dram_share import share as fluid_share
from .contention_sim import mca_threshold
from .gemm_time import GemmCost
from .hardware import Hardware

__all__ = ["FusedResult", "fused_rs", "fused_ag_end"]


@dataclass(frozen=True)
class FusedResult:
    gemm_end_s: float          # last stage done
    rs_end_s: float            # this device's chunk fully reduced
    stage_s: tuple[float, ...]
    last_send_start_s: float = 0.0   # start of the last RS transfer (X_{n-1})
    last_send_end_s: float = 0.0     # its end: the link is free again


def _stage_time(w: float, b: float, bw: float, bw_g: float, overlap: float) -> float:
    g0 = max(w, b / bw)
    if b <= 0:
        return g0                     # no DRAM traffic: nothing to contend for
    g1 = max(w, b / bw_g) if bw_g > 0 else float("inf")
    if overlap <= 0 or g1 <= g0:
        return g0
    return min(g1, g0 + overlap * (1.0 - g0 / g1))


def fused_rs(hw: Hardware, gemm: GemmCost, n: int, out_bytes: float, *, mode: str,
             policy: str, last_stage_comm: bool = True,
             stage_ends_s: Sequence[float] | None = None, memory: str = "hbm") -> FusedResult:
    """``mode``: "t3" (tracker + DMA + NMC) or "sw" (collective kernel on CUs).
    ``last_stage_comm=False`` (T3 only): no communication shares DRAM with the last
    stage (in T3 the RS transfers overlap stages 1..n-1; only a fused all-gather's first
    hop overlaps stage n). The default keeps a transfer's traffic there too.
    ``stage_ends_s``: the producer's stage ends when it runs alone, for a producer whose
    compute does not wait for its stores (a trace replayed no earlier than its issue
    times, as the RTL bench does): stage j then computes for what is left of its own
    schedule after stage j-1's stores, ``w_j = stage_ends_s[j-1] - c_{j-1}`` (at least
    its bytes at full bandwidth), instead of ``compute_s / n``.
    ``memory``: "hbm" (default) shares DRAM through the channel-level contention model
    (:mod:`.contention`, HBM2 timing of the RTL controller); "fluid" through the
    timing-free fluid split of :mod:`.dram_share` (the RTL ring's memory before the DRAM
    controller: one request per cycle, no banks, used by rtl_model)."""
    if mode not in ("t3", "sw"):
        raise ValueError(f"mode={mode!r}")
    bw, B, L = hw.gpu.dram_Bps, hw.link.Bps, hw.link.latency_s
    c = out_bytes / n
    w = gemm.compute_s / n
    r_stage = gemm.read_bytes / n
    tile_s = min(hw.gpu.tile_bytes, c) / B       # one tracked tile (chunks may be smaller)
    t3 = mode == "t3"
    cost = hw.t3.nmc_update_cost
    if t3:
        B = min(B, hw.t3.dma_bandwidth_GBps * 1e9)
        d = hw.t3.trigger_latency_s + tile_s
        k_first, k_mid = cost, 1.0 + cost          # DRAM bytes per link byte
        sync = 0.0
    else:
        d = tile_s
        k_first = k_mid = 3.0                       # incoming write + incoming, local reads
        sync = hw.sw.stage_sync_us * 1e-6

    line_Bps = hw.gpu.hbm_bandwidth_GBps * 1e9      # one channel line per cycle = peak
    sv = service(update_cost=cost)                  # the GPU's UPDATE: t3.nmc_update_cost
    population = gemm.cus * LINES_PER_FETCH         # the GEMM's operand lines in flight
    stage1 = None                                   # MCA threshold from stage 1's intensity

    def contended(b: float, k: float, w: float, first: bool) -> tuple[float, float]:
        """(GEMM bandwidth, link rate) while both run: the channel-level contention
        model (contention.share) in lines per cycle of the peak, the GEMM's stage mix
        (operand READs, then STOREs or local UPDATEs) against the communication mix."""
        nonlocal stage1
        if policy not in ("fifo", "mca"):
            raise ValueError(f"policy={policy!r}")
        if memory == "fluid":
            bw_g, bw_c = fluid_share(policy, b / w, k * B, bw, hw.t3)
            return bw_g, min(B, bw_c / k) if k > 0 else B
        reads = r_stage / w / line_Bps
        writes = max(0.0, b - r_stage) / w / line_Bps
        wop = "UPDATE" if t3 else "STORE"
        gemm = {"READ": reads, wop: writes}
        link = k_link(first) * B / line_Bps
        if t3:
            comm = {"UPDATE": link} if first else {"READ": link, "UPDATE": link}
        else:
            comm = {"READ": 2 * link, "STORE": link}
        if stage1 is None:
            stage1 = mca_threshold(reads + writes, hw.t3.mem_queue_depth)
        g, c = cshare("rr" if policy == "fifo" else "mca", gemm, comm, sv, threshold=stage1,
                      limit=hw.t3.mca_starvation_limit,
                      outstanding=population)
        dg = reads + writes
        bw_g = bw if dg <= 0 else min(bw, b / w * (g / dg if dg > 0 else 1.0))
        if dg > 0 and g >= dg * (1 - 1e-12):
            bw_g = bw                               # served in full: no slowdown
        kk = k if k > 0 else 1.0
        return bw_g, min(B, c * line_Bps / kk)

    def k_link(first: bool) -> float:
        return 1.0

    # per stage: DRAM bytes b_j (T3: stage-1 stores leave on the link, later stages are
    # local UPDATEs costing `cost` writes; software: plain local stores), the DRAM bytes
    # per link byte k_j of the transfer it overlaps, the shared bandwidths and time
    stages, rates = [], []
    c_end = [0.0]
    for j in range(1, n + 1):
        b = r_stage + ((0.0 if j == 1 else cost * c) if t3 else c)
        k = k_first if (j == 1 and t3) else k_mid
        if stage_ends_s is not None:
            w = max(stage_ends_s[j - 1] - c_end[-1], b / bw, 1e-30)
        if t3 and j == n and not last_stage_comm:
            bw_g, rate = bw, B                      # nothing to share DRAM with
            g = _stage_time(w, b, bw, bw_g, 0.0)
        else:
            bw_g, rate = contended(b, k, w, j == 1)
            g = _stage_time(w, b, bw, bw_g, c / rate)
        if t3 and j > 1:
            g = max(g, cost * c / (hw.t3.nmc_update_GBps * 1e9))
        if t3 and j == 1:
            g = max(g, c / rate)                    # store back-pressure from the link
        stages.append(g)
        rates.append(rate)
        c_end.append(c_end[-1] + g)
    alone_rate = min(B, bw / k_mid)

    def finish(start: float, nbytes: float) -> float:
        """End of a transfer of ``nbytes`` started at ``start``: it moves at the link
        rate of whichever stage is running, at the alone rate after the GEMM."""
        t, left = start, nbytes
        for j in range(n):
            if t >= c_end[j + 1]:
                continue
            span = c_end[j + 1] - t
            if left <= span * rates[j]:
                return t + left / rates[j]
            left -= span * rates[j]
            t = c_end[j + 1]
        return t + left / alone_rate

    S, F = [0.0], [0.0]
    for x in range(1, n):
        if t3:           # X_x streams while stage x runs (tile-granular triggers)
            if x == 1:
                s, f = 0.0, c_end[1] + tile_s
            else:
                s = max(F[-1], c_end[x - 1])
                f = max(finish(s, c), c_end[x] + d, F[-1] + L + d)
        else:            # X_x starts once stage x is flagged done
            if x == 1:
                s = c_end[1] + sync
                f = finish(s, c)
            else:
                s = max(F[-1], c_end[x] + sync, S[-1] + L)
                f = max(finish(s, c), F[-1] + L + d)
        S.append(s)
        F.append(f)
    gemm_end = c_end[-1]
    if n == 1:
        return FusedResult(gemm_end, gemm_end, tuple(stages), gemm_end, gemm_end)
    rs_end = max(gemm_end + sync, F[-1] + L + d)
    return FusedResult(gemm_end, rs_end, tuple(stages), S[-1], F[-1])


def fused_ag_end(hw: Hardware, rs: FusedResult, n: int, out_bytes: float) -> float:
    """End of an all-gather fused through the tracker (our extension, not in the paper's
    numbers): each tile of the device's reduced chunk fires a STORE DMA as soon as its
    last UPDATE lands, and every hop forwards tiles as they arrive. The first hop may use
    the link once the last RS transfer left it and reduced tiles exist (last stage
    running, incoming X_{n-1} arriving); the n - 1 hops then stream back to back at
    ``r = min(B, BW / 2)`` (each forwarded byte is written on arrival and read to send),
    and the last reduced tile still needs n - 1 hops:
    ``end = max(start + (n-1) C / r + L + d, rs_end + (n-1) (L + d))``."""
    if n == 1:
        return rs.rs_end_s
    B, L = hw.link.Bps, hw.link.latency_s
    c = out_bytes / n
    d = hw.t3.trigger_latency_s + min(hw.gpu.tile_bytes, c) / B
    r = min(B, hw.gpu.dram_Bps / 2, hw.t3.dma_bandwidth_GBps * 1e9)
    last_stage_start = rs.gemm_end_s - rs.stage_s[-1]
    start = max(rs.last_send_end_s, last_stage_start, rs.last_send_start_s + L + d)
    return max(start + (n - 1) * c / r + L + d, rs.rs_end_s + (n - 1) * (L + d))
