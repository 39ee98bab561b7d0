"""Time and DRAM traffic of one sublayer (GEMM + all-reduce) under each configuration.

* ``sequential``: GEMM alone, then the ring RS kernel, then the ring AG kernel.
* ``sw_overlap``: fine-grained software overlap: the GEMM runs on ``cus - comm_cus``
  CUs, a concurrent collective kernel reduces and sends each chunk once it is flagged;
  both share DRAM first-come first-served (pipeline mode "sw", policy "fifo"); AG after.
* ``ideal``: GEMM and RS perfectly overlapped, the upper bound:
  ``max(T_gemm, T_rs_link_bound) + T_ag``.
* ``sw_overlap_16``: the same with 16 CUs given to the collective (the paper's CU-sharing
  study: 8 or 16 of the 80 CUs).
* ``nmc_rs``: the paper's "ideal RS with NMC": GEMM, then a ring RS whose reductions are
  near-memory UPDATEs (DMA read out, UPDATE in: 2C of DRAM per step, no CU work, no
  fusion), then the AG.
* ``t3``: tracker + DMA + NMC (pipeline mode "t3"), plain FIFO memory arbitration.
* ``t3_mca``: the same with compute-first memory-controller arbitration.
The AG is unfused in every configuration (as in the paper). ``extended=True`` adds
``t3_mca_fused_ag`` (our extension): T3-MCA with the all-gather fused through the
tracker and DMA as well (pipeline.fused_ag_end); same DRAM bytes as t3_mca.
"""

from __future__ import annotations

from dataclasses import dataclass

from .collective_time import ring_ag_s, ring_link_bound_s, ring_rs_s, step_s
from .gemm_time import gemm_cost
from .hardware import Hardware
from .pipeline import fused_ag_end, fused_rs
from .traffic import Traffic, baseline_traffic, nmc_traffic, t3_traffic
from .workloads import Sublayer

__all__ = ["CONFIGS", "EXTRA_CONFIGS", "ConfigResult", "evaluate"]

CONFIGS = ("sequential", "sw_overlap", "sw_overlap_16", "ideal", "nmc_rs", "t3", "t3_mca")
EXTRA_CONFIGS = ("t3_mca_fused_ag",)


@dataclass(frozen=True)
class ConfigResult:
    config: str
    time_s: float
    gemm_s: float      # GEMM (fused: end of its last stage)
    rs_end_s: float    # reduce-scatter complete (from the start)
    ag_s: float        # all-gather duration
    traffic: Traffic


def evaluate(hw: Hardware, sub: Sublayer, *, extended: bool = False) -> dict[str, ConfigResult]:
    gpu = hw.gpu
    n = sub.tp
    S = float(sub.output_bytes(gpu.elem_bytes))
    g = gemm_cost(gpu, sub.tokens, sub.hidden, sub.k)
    rs = ring_rs_s(hw, S, n)
    ag = ring_ag_s(hw, S, n)
    base = baseline_traffic(g.read_bytes, S, n)
    out = {}
    out["sequential"] = ConfigResult("sequential", g.time_s + rs + ag, g.time_s,
                                     g.time_s + rs, ag, base)
    g_sw = gemm_cost(gpu, sub.tokens, sub.hidden, sub.k, cus=gpu.compute_units - hw.sw.comm_cus)
    f = fused_rs(hw, g_sw, n, S, mode="sw", policy="fifo")
    out["sw_overlap"] = ConfigResult("sw_overlap", f.rs_end_s + ag, f.gemm_end_s, f.rs_end_s,
                                     ag, baseline_traffic(g_sw.read_bytes, S, n))
    g16 = gemm_cost(gpu, sub.tokens, sub.hidden, sub.k, cus=max(1, gpu.compute_units - 16))
    f = fused_rs(hw, g16, n, S, mode="sw", policy="fifo")
    out["sw_overlap_16"] = ConfigResult("sw_overlap_16", f.rs_end_s + ag, f.gemm_end_s,
                                        f.rs_end_s, ag, baseline_traffic(g16.read_bytes, S, n))
    c = S / n
    rs_nmc = (n - 1) * step_s(hw, c, 2 * c)
    out["nmc_rs"] = ConfigResult("nmc_rs", g.time_s + rs_nmc + ag, g.time_s, g.time_s + rs_nmc,
                                 ag, nmc_traffic(g.read_bytes, S, n))
    rs_lb = ring_link_bound_s(hw, S, n)
    out["ideal"] = ConfigResult("ideal", max(g.time_s, rs_lb) + ag, g.time_s,
                                max(g.time_s, rs_lb), ag, base)
    # T3's output stores bypass the L2 (uncached remote/NMC path): the inputs' reuse
    # distances shrink by the output tiles (gemm_time.input_traffic)
    g3 = gemm_cost(gpu, sub.tokens, sub.hidden, sub.k, output_in_l2=False)
    t3t = t3_traffic(g3.read_bytes, S, n)
    fused = {}
    for name, policy in (("t3", "fifo"), ("t3_mca", "mca")):
        f = fused[name] = fused_rs(hw, g3, n, S, mode="t3", policy=policy)
        out[name] = ConfigResult(name, f.rs_end_s + ag, f.gemm_end_s, f.rs_end_s, ag, t3t)
    if extended:
        f = fused["t3_mca"]
        end = fused_ag_end(hw, f, n, S)
        out["t3_mca_fused_ag"] = ConfigResult("t3_mca_fused_ag", end, f.gemm_end_s,
                                              f.rs_end_s, end - f.rs_end_s, t3t)
    return out
