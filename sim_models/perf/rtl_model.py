"""The system model in RTL units: predicts the cycles the RTL ring (hw/env/ring.py, measured
by verif/tb_ring.py) takes for a small ring scenario, for calibration (issue 6, item 5).

Same model family as the sublayer model, not a curve fit: the hardware comes from
:func:`~sim_models.perf.hardware.hardware_from_rtl` (memory 1 line per cycle, link
``link_bw`` lines per cycle with ``link_latency`` cycles, NMC one UPDATE per memory slot),
the clock is set to 1 GHz so that 1 ns = 1 cycle, the tracked tile is the WF tile, the
trigger latency is the RTL's (:data:`contract.latency.TRIGGER`: address map + tracker
fire + DMA issue + the READ through the tracker), and the GPU is the
trace generator's producer (:func:`sim_models.trace.producer_trace`: waves of ``cus``
workgroups, each ``wg_cycles`` of compute then one line per cycle). Then:

* ``t3``: :func:`~sim_models.perf.pipeline.fused_rs` (stage pipeline; memory shared
  under the scenario's arbiter policy, ``fifo`` or ``mca``, with the RTL's MCA knobs:
  the RTL arbitrates the producer lane (compute) against link arrivals and DMA reads
  (communication)) followed, with the fused all-gather, by
  :func:`~sim_models.perf.pipeline.fused_ag_end`; bounded below by the two resource
  rooflines every part of the model uses (``max(compute, bytes / bandwidth)``): the link
  (it must carry every line a device sends) and the memory (after stage 1 -- whose stores
  leave on the link -- it must serve every remaining request, one per cycle).
* ``baseline``: the producer alone (local STOREs, roofline of trace time and one line
  per cycle), then ``n - 1`` reduce-scatter and ``n - 1`` all-gather ring steps
  (:func:`~sim_models.perf.collective_time.step_s` with the DMA's traffic: one read out
  and one UPDATE / STORE in per line), a barrier after each step.

Everything in cycles of the T3 clock. See docs/system_model.md, "Calibration against the
RTL", for the mapping and the measured table (``rtl_calibration.json``, written by
``python -m verif.calibrate``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from contract import latency
from contract.gemm import GemmSpec, split_chunks
from contract.sizing import check_config, config_for
from contract.spec import MIN_MEM_DEPTH_LINES, ConfigError, T3Config

from .collective_time import step_s
from .gemm_time import GemmCost
from .hardware import Hardware, hardware_from_rtl, load_hardware
from .pipeline import fused_ag_end, fused_rs

__all__ = ["RtlScenario", "RtlPrediction", "predict", "rtl_hardware", "producer_cycles", "producer_stage_ends",
           "memory_requests", "CALIBRATION_FILE", "load_calibration", "calibration_rows",
           "markdown_table", "MODEL_CLOCK_GHZ", "TOLERANCE", "OUTLIER_TOLERANCE"]

CALIBRATION_FILE = Path(__file__).with_name("rtl_calibration.json")

#: the clock the model runs the RTL ring at: 1 GHz, so that one ns is one cycle
MODEL_CLOCK_GHZ = 1.0
#: agreement the calibration test demands (issue 6: within 10%); a measurement the
#: calibration data marks as a known outlier (with its reason) must stay within
#: OUTLIER_TOLERANCE, so the model cannot drift away from it either
TOLERANCE = 0.10
OUTLIER_TOLERANCE = 0.25

_NS = 1e-9          # seconds per cycle: at MODEL_CLOCK_GHZ one cycle is one nanosecond


@dataclass(frozen=True)
class RtlScenario:
    """A ring scenario as the model needs it: the GEMM's shape (the fields named like
    :class:`~contract.gemm.GemmSpec`'s, sizes in elements), the unit's sizes and the
    link's timing (link latency in cycles, link bandwidth in lines per cycle, the memory
    moving one line per cycle). :class:`verif.ring_scenario.RingScenario` extends it with
    what only the ring testbench needs; :meth:`from_dict` accepts
    ``RingScenario.to_dict()`` and ignores the rest (seed, jitter, backpressure, modes, ...)."""
    devices: int = 4
    m: int = 64
    n: int = 64
    k: int = 32
    dtype: str = "fp16"
    layout: str = "row"
    wg_tile: tuple[int, int] = (16, 16)
    wf_tile: tuple[int, int] = (8, 8)
    cus: int = 4
    wg_cycles: int = 16
    line_bytes: int = 8
    tracker_entries: int = 16
    link_latency: int = 20
    link_bw: float = 0.5
    policy: str = "mca"
    fuse_allgather: bool = True

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RtlScenario":
        known = {f.name for f in fields(cls)}
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known}
        return cls(**kw)

    def gemm(self) -> GemmSpec:
        """The scenario's GEMM: every field the scenario shares with GemmSpec (same name,
        same meaning: sizes, dtype, layout, tiles, CUs, WG cycles, and a RingScenario's
        input ``seed``); GemmSpec's defaults for the others."""
        mine = {f.name for f in fields(self)}
        return GemmSpec(**{f.name: getattr(self, f.name) for f in fields(GemmSpec) if f.name in mine})

    def base_config(self) -> T3Config:
        """The unit before it is fitted to the GEMM (:meth:`config`): the scenario's sizes
        and link, the smallest memory, the model's clock (:data:`MODEL_CLOCK_GHZ`)."""
        return T3Config(dtype=self.dtype, line_bytes=self.line_bytes,
                        tracker_entries=self.tracker_entries, ring_devices=self.devices,
                        link_latency_cycles=self.link_latency,
                        link_lines_per_cycle=self.link_bw, arbiter_policy=self.policy,
                        mem_depth_lines=MIN_MEM_DEPTH_LINES, clock_ghz=MODEL_CLOCK_GHZ)

    def config(self) -> T3Config:
        """:meth:`base_config` fitted to :meth:`gemm` (:func:`contract.sizing.config_for`:
        memory depth and DMA queue grown to what the GEMM needs)."""
        return config_for(self.gemm(), self.base_config())


@dataclass(frozen=True)
class RtlPrediction:
    cycles: float
    pipeline_cycles: float     # the stage pipeline (+ fused AG) alone
    link_bound_cycles: float
    memory_bound_cycles: float
    producer_cycles: float     # the producer's own time (trace span, 1 line/cycle)

    @property
    def bound(self) -> str:
        """Which term sets the prediction."""
        terms = {"pipeline": self.pipeline_cycles, "link": self.link_bound_cycles,
                 "memory": self.memory_bound_cycles}
        return max(terms, key=terms.get)


def rtl_hardware(scn: RtlScenario, base: Hardware | None = None) -> Hardware:
    """The model's hardware for the RTL ring of ``scn`` at 1 GHz (1 ns = 1 cycle)."""
    cfg = scn.config()
    hw = hardware_from_rtl(cfg, base or load_hardware())
    wf_m, wf_n = scn.wf_tile
    return hw.replace(
        gpu={"compute_units": scn.cus, "tile_m": wf_m, "tile_n": wf_n},
        t3={"tracker_latency_ns": latency.ADDRMAP + latency.TRACKER_FIRE,
            "dma_issue_latency_ns": latency.DMA_ISSUE + latency.TRACKER,
            "dma_bandwidth_GBps": cfg.line_bytes,       # 1 line per cycle
            "nmc_update_cost": 1.0},                   # an UPDATE takes one memory slot
        link={"latency_ns": max(scn.link_latency, latency.LINK_MIN)},
    )


def producer_stage_ends(scn: RtlScenario) -> tuple[list[float], int]:
    """(end of each stage in cycles, output lines) of one device's producer alone: the
    GEMM-time equation of gemm_time (waves over CUs, roofline of compute and stores) in
    the trace generator's units (sim_models.trace.producer_trace). Per stage, waves of
    ``cus`` workgroups; a wave starting at T computes ``wg_cycles`` and then offers one
    line per cycle per workgroup; the next wave starts when its longest workgroup is
    done. The producer port (and memory) takes one line per cycle, so with ``s_w`` the
    first issue time of wave w and ``l_w`` its lines, the last line of wave v leaves at
    ``max_{w <= v} (s_w + sum_{w <= u <= v} l_u)``."""
    cfg = scn.config()
    gemm = scn.gemm()
    geo = check_config(cfg, gemm)
    ends: list[float] = []
    t = 0           # trace time: start of the next wave
    done = 0        # cycle the port has taken every line so far
    for ch in split_chunks(gemm, geo):        # every device computes every chunk once
        o0, o1 = ch.outer_start // geo.wg_outer, -(-ch.outer_stop // geo.wg_outer)
        rows = [min(geo.wg_outer, geo.outer_elems - wo * geo.wg_outer) for wo in range(o0, o1)]
        cols = [min(geo.wg_inner_lines, geo.pitch - wi * geo.wg_inner_lines)
                for wi in range(geo.wg_grid[1])]
        wgs = [r * c for r in rows for c in cols]
        for w0 in range(0, len(wgs), scn.cus):
            wave = wgs[w0:w0 + scn.cus]
            done = max(done, t + scn.wg_cycles) + sum(wave)
            t += scn.wg_cycles + max(wave)
        ends.append(float(done))
    return ends, geo.total_lines


def producer_cycles(scn: RtlScenario) -> tuple[float, int]:
    """(cycles, output lines) of one device's producer alone (last stage's end)."""
    ends, lines = producer_stage_ends(scn)
    return ends[-1], lines


def memory_requests(scn: RtlScenario) -> dict[str, int]:
    """Requests one device's memory serves in t3 mode, in lines of a chunk C (even
    chunks): local UPDATEs of stages 2..n, incoming RS UPDATEs, DMA reads of the n - 2
    forwarded partial sums; with the fused AG also the own chunk's and n - 2 forwarded
    chunks' DMA reads and n - 1 incoming STOREs. ``stage1``: what the memory does while
    stage 1 runs (only the incoming stage-1 UPDATEs: its own stores leave on the link)."""
    n = scn.devices
    _, lines = producer_cycles(scn)
    c = lines / n
    rs = (n - 1) * c + (n - 1) * c + (n - 2) * c
    ag = ((n - 1) * c + (n - 1) * c) if scn.fuse_allgather else 0
    return {"total": round(rs + ag), "stage1": round(c), "link_out": round(
        (n - 1) * c * (2 if scn.fuse_allgather else 1))}


def _t3(scn: RtlScenario, hw: Hardware) -> RtlPrediction:
    n = scn.devices
    ends, lines = producer_stage_ends(scn)
    span = ends[-1]
    line = scn.line_bytes
    out = float(lines * line)
    bw = hw.gpu.dram_Bps
    prod = GemmCost(m=scn.m, n=scn.n, k=scn.k, cus=scn.cus, tiles=0, waves=0,
                    read_bytes=0.0, write_bytes=out, compute_s=span * _NS, dram_Bps=bw)
    f = fused_rs(hw, prod, n, out, mode="t3", policy=scn.policy,
                 last_stage_comm=scn.fuse_allgather, stage_ends_s=[e * _NS for e in ends],
                 memory="fluid")
    end = fused_ag_end(hw, f, n, out) if scn.fuse_allgather else f.rs_end_s
    L = hw.link.latency_s / _NS
    tail = L + latency.TRIGGER
    reqs = memory_requests(scn)
    B = scn.link_bw
    c = lines / n
    link = reqs["link_out"] / B + tail
    stage1 = max(c / B, f.stage_s[0] / _NS)   # stage-1 stores leave at the link rate
    memory = stage1 + (reqs["total"] - reqs["stage1"]) + tail
    pipe = end / _NS
    return RtlPrediction(cycles=max(pipe, link, memory), pipeline_cycles=pipe,
                         link_bound_cycles=link, memory_bound_cycles=memory,
                         producer_cycles=span)


def _baseline(scn: RtlScenario, hw: Hardware) -> RtlPrediction:
    n = scn.devices
    gemm, lines = producer_cycles(scn)        # local STOREs, 1 line per cycle
    c = lines * scn.line_bytes / n
    # one ring step: the DMA reads C and sends it; the receiver applies it (UPDATE or
    # STORE): 2C through each device's memory per step; barrier after every step
    step = step_s(hw, c, 2 * c) / _NS + latency.TRIGGER
    steps = 2 * (n - 1)
    total = gemm + steps * step
    return RtlPrediction(cycles=total, pipeline_cycles=total, link_bound_cycles=0.0,
                         memory_bound_cycles=0.0, producer_cycles=gemm)


def predict(scn: RtlScenario | Mapping[str, Any], mode: str = "t3") -> RtlPrediction:
    """Predicted RTL cycles of ``scn`` (an RtlScenario, or a RingScenario or its dict:
    read through their RtlScenario fields) in ``mode`` ("t3": fused RS (+ AG);
    "baseline": unfused GEMM, RS, AG on the same hardware)."""
    if type(scn) is not RtlScenario:
        scn = RtlScenario.from_dict(scn if isinstance(scn, Mapping) else dataclasses.asdict(scn))
    hw = rtl_hardware(scn)
    if mode == "t3":
        return _t3(scn, hw)
    if mode == "baseline":
        return _baseline(scn, hw)
    raise ConfigError(f"mode={mode!r}: must be 't3' or 'baseline'")


# --------------------------------------------------------------------------------------
# The stored measurements
# --------------------------------------------------------------------------------------

def load_calibration(path: str | Path = CALIBRATION_FILE) -> dict[str, Any]:
    """The measurements written by ``python -m verif.calibrate``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: cannot read calibration data: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("scenarios"), list):
        raise ConfigError(f"{path}: scenarios: missing list")
    return data


def calibration_rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per (scenario, mode): measured, predicted, relative error, bound."""
    rows = []
    for e in data["scenarios"]:
        for mode, measured in e["measured"].items():
            p = predict(e["scenario"], mode)
            rows.append({"name": e["name"], "mode": mode, "scenario": e["scenario"],
                         "measured": measured, "predicted": p.cycles,
                         "error": p.cycles / measured - 1.0, "bound": p.bound,
                         "outlier": e.get("outlier", {}).get(mode, "")})
    return rows


def markdown_table(data: Mapping[str, Any]) -> str:
    rows = calibration_rows(data)
    out = ["| scenario | N | dtype | M x N | WG / WF tile | CUs | WG cycles | link lat / bw | AG | mode "
           "| measured | predicted | error | bound |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["scenario"]
        out.append(
            f"| {r['name']} | {s['devices']} | {s['dtype']} | {s['m']} x {s['n']} "
            f"| {s['wg_tile'][0]}x{s['wg_tile'][1]} / {s['wf_tile'][0]}x{s['wf_tile'][1]} "
            f"| {s['cus']} | {s['wg_cycles']} | {s['link_latency']} / {s['link_bw']} "
            f"| {'fused' if s.get('fuse_allgather', True) else 'no'} | {r['mode']} "
            f"| {r['measured']} | {r['predicted']:.0f} | {100 * r['error']:+.1f}% | {r['bound']} "
            f"{'(outlier: ' + r['outlier'] + ')' if r['outlier'] else ''}|")
    for label, sel in (("all", rows), ("outliers excluded", [r for r in rows if not r["outlier"]])):
        errs = [abs(r["error"]) for r in sel]
        if errs:
            out.append("")
            out.append(f"Mean |error| {100 * sum(errs) / len(errs):.1f}%, max "
                       f"{100 * max(errs):.1f}% over {len(errs)} measurements ({label}).")
    return "\n".join(out)
