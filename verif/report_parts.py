"""The `throughput` and `model` parts of `t3 report` (the `area` part is flow/area.py).

* throughput: 4-device ring runs on the RTL (fp16, 8-byte lines, 16-entry tracker),
  with the paper's link scaled to the RTL clock, the DRAM memory and the closed-loop
  GEMM, at a low and a high GEMM memory intensity taken from the system model's
  sublayers: the unfused baseline, T3 with the plain arbiter and T3-MCA; per-device
  utilisation and memory figures; plus the per-block rates the hardware guarantees
  (from contract.latency, which the components' latency properties return and the tests
  assert).
* model: the system model's paper sweep (sim_models.perf.sweep.report) with figures.

Every number in the Markdown comes from the run that wrote it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from contract import latency
from contract.spec import FORMATS, T3Config

#: top-level keys of throughput.json (and of report.json's "throughput"), with units
THROUGHPUT_KEYS: dict[str, str] = {
    "scenario": "the ring runs: devices, m, n, k, dtype, line_bytes, tracker_entries, "
                "link_latency (cycles), link_bw (lines/cycle), memory, wg_cycles, k_steps, "
                "gemm_outstanding, simulator",
    "intensities": "the two GEMM memory intensities run (DRAM read lines per cycle of the "
                   "GEMM at full speed, fraction of peak) and where they come from",
    "cycles": "per intensity (low, high): ring cycles of baseline, t3_plain, t3_mca",
    "speedup": "per intensity: baseline cycles / cycles, for t3_plain and t3_mca",
    "plain_vs_mca": "per intensity: t3_plain / t3_mca cycles - 1 (how much slower plain T3 "
                    "is), and each policy's GEMM stall cycles (mean per device)",
    "devices_t3_mca": "per device under T3-MCA at high intensity: memory_busy_fraction, "
                      "link_busy_fraction, tracker_fires, tracker_peak_occupancy (entries), "
                      "tracker_stall_cycles, dma_lines, starved_grants, requests_per_cycle "
                      "(address_map_producer, address_map_link, tracker, dma_lines, memory), "
                      "memory (row_hit_ratio, mean_occupancy, gemm_read_latency_mean/max, "
                      "gemm_stall_cycles, mca_threshold, mca_measured)",
    "devices_baseline": "the same for the unfused baseline at high intensity",
    "block_rates": "guaranteed rates from contract.latency, which the components' latency "
                   "properties return (asserted by tests): "
                   "tracker_requests_per_cycle, trigger_latency_cycles, nmc per dtype (lanes, "
                   "requests_per_cycle, dependent_same_line_updates_per_cycle, "
                   "elements_updated_per_cycle, latency_cycles)",
    "verified_bit_exact": "true: every memory matched the golden model (else the run fails)",
}

#: top-level keys of model.json (and of report.json's "model")
MODEL_KEYS: dict[str, str] = {
    "rows": "one object per (model, sublayer, configuration) of the paper sweep "
            "(sim_models.perf.sweep; docs/system_model.md)",
    "summary": "headline: paper vs model geomean/max speedup and DRAM traffic, per config",
    "figures": "PNG file names written beside the Markdown",
}

#: the paper's link at the RTL clock: 500 ns at 1.4 GHz; 150 GB/s vs 1 TB/s memory
PAPER_LINK = {"link_latency": 700, "link_bw": 0.15}


#: the report's ring (4 devices of the suite's fp16 profile with the DRAM memory and the
#: closed-loop GEMM). A wave computes ``wg_cycles`` and stores 4 WGs x 64 lines: 256 lines
#: per 5120 + 256 cycles = 0.048 lines/cycle of output at full speed, the FC sublayers'
#: GEMM write rate (0.04-0.06 of peak at TP 8 in the system model), below the paper's
#: link (0.15 lines/cycle), so the remote stores do not make the GEMM link-bound.
RING_GEMM = {"m": 64, "n": 64, "k": 32, "wg_tile": (16, 16), "wf_tile": (8, 8), "cus": 4,
             "wg_cycles": 5120, "k_steps": 4, "gemm_outstanding": 32}


def representative_intensities() -> dict[str, Any]:
    """The GEMM memory intensities of the paper's sublayers, from the system model
    (sim_models.perf.sweep.paper_rows, sequential configuration, TP 8): DRAM read bytes of
    the GEMM / GEMM time / the memory's peak. ``low``: the least read-intensive sublayer
    (OP, the least of its instances); ``high``: the FC sublayers (the most of theirs)."""
    from sim_models.perf import sweep
    from sim_models.perf.hardware import load_hardware
    peak = load_hardware().gpu.hbm_bandwidth_GBps * 1e9
    rows = [r for r in sweep.paper_rows() if r["config"] == "sequential" and r["tp"] == 8]
    per = {(r["model"], r["sublayer"]): r["gemm_dram_read_bytes"] / (r["gemm_us"] * 1e-6) / peak
           for r in rows}
    lo = min((k for k in per if k[1] == "OP"), key=per.get)
    hi = max((k for k in per if k[1].startswith("FC")), key=per.get)
    return {"low": round(per[lo], 3), "high": round(per[hi], 3),
            "source": f"system model, TP 8, GEMM DRAM reads / GEMM time / peak: low = {lo[0]} "
                      f"{lo[1]}, high = {hi[0]} {hi[1]}"}


def _scenario(policy: str, modes: tuple[str, ...], intensity: float, devices: int = 4,
              ring: dict | None = None):
    from verif.ring_scenario import RingScenario
    kw = dict(devices=devices, dtype="fp16", line_bytes=8, tracker_entries=16, **RING_GEMM,
              **PAPER_LINK)
    kw.update(ring or {})
    kw.update(policy=policy, modes=modes, seed=5, memory="dram", gemm_intensity=intensity)
    return RingScenario(**kw)


def _device_rows(res: dict) -> list[dict[str, Any]]:
    """Per device: utilisation, tracker activity, each block's requests per cycle
    (hardware counters / the mode's cycles) and the memory figures (:func:`memory_metrics`)."""
    cyc = res["cycles"]
    return [{"device": d, "memory": memory_metrics(st, cyc),
             "memory_busy_fraction": st["mem_busy_cycles"] / cyc,
             "link_busy_fraction": st["link_busy_cycles"] / cyc, "tracker_fires": st["fires"],
             "tracker_stall_cycles": st["stall_cycles"], "dma_lines": st["dma_lines"],
             "starved_grants": st.get("starved_grants", 0),
             "tracker_peak_occupancy": st.get("tracker_peak"),
             "requests_per_cycle": {
                 "address_map_producer": st["producer_reqs"] / cyc,
                 "address_map_link": st["ingress_reqs"] / cyc,
                 "tracker": st["tracked_reqs"] / cyc,
                 "dma_lines": st["dma_lines"] / cyc,
                 "memory": st["mem_reqs"] / cyc}}
            for d, st in enumerate(res["devices"])]


def block_rates(cfg: T3Config) -> dict[str, Any]:
    """Per-block guaranteed rates: the latencies of :mod:`contract.latency`, which the
    blocks' properties return and their tests measure (tests/test_report_parts.py checks
    that these numbers are the components' properties)."""
    out = {"tracker_requests_per_cycle": 1.0, "trigger_latency_cycles": latency.TRIGGER,
           "nmc": {}}
    for dt in FORMATS:
        c = cfg.replace(dtype=dt, mem_depth_lines=64)
        # hw.nmc.ComputeMemory.same_line_update_bubble: the ALU's stages - 1
        bubble = latency.nmc_alu(c) - 1
        out["nmc"][dt] = {"lanes": c.lanes, "requests_per_cycle": 1.0,
                          "dependent_same_line_updates_per_cycle": 1.0 / (1 + bubble),
                          "elements_updated_per_cycle": c.lanes,
                          "latency_cycles": latency.compute_memory(c)}
    return out


def memory_metrics(stats: dict[str, int], cycles: int) -> dict[str, Any]:
    """One device's memory and closed-loop GEMM figures (issue #15) from its counters:
    row-hit ratio (1 - activates / column commands), mean queue occupancy over the run,
    GEMM READ latency (mean, max; cycles), GEMM stall cycles (compute waiting for its
    READs), the MCA threshold in use and whether it was measured."""
    served = stats.get("mem_reqs", 0)
    reads = stats.get("gemm_reads", 0)
    return {
        "row_hit_ratio": (1 - stats.get("activates", 0) / served) if served else None,
        "mean_occupancy": stats.get("occupancy_sum", 0) / stats["sim_cycles"]
        if stats.get("sim_cycles") else None,
        "gemm_read_latency_mean": stats.get("gemm_read_latency_sum", 0) / reads if reads else None,
        "gemm_read_latency_max": stats.get("gemm_read_latency_max"),
        "gemm_stall_cycles": stats.get("gemm_stall_cycles"),
        "mca_threshold": stats.get("mca_threshold_used"),
        "mca_measured": bool(stats.get("mca_measured", 0)),
    }


def _stall_mean(res: dict) -> float:
    devs = res["devices"]
    return sum(d["gemm_stall_cycles"] for d in devs) / len(devs)


def throughput(cfg: T3Config, *, sim: str = "verilator", workdir: Path, devices: int = 4,
               ring: dict | None = None,
               progress: Callable[[str], None] = print) -> tuple[dict, str, bool]:
    """Baseline, T3 with the plain arbiter and T3-MCA on the RTL ring with the DRAM memory
    and the closed-loop GEMM, at the low and the high GEMM intensity of the paper's
    sublayers (:func:`representative_intensities`). ``ring``: RingScenario fields that
    replace the report's (:data:`RING_GEMM`, fp16, 8-byte lines, 16 tracker entries, the
    paper's link; the tests run a smaller ring)."""
    from verif.ring_scenario import run_scenario
    levels = representative_intensities()
    runs: dict[str, dict] = {}
    for level in ("low", "high"):
        for name, policy, modes in (("mca", "mca", ("t3", "baseline")), ("plain", "fifo", ("t3",))):
            tag = f"{level}_{name}"
            progress(f"   ring run {tag} (intensity {levels[level]}, {sim})")
            # the simulator's build and run output goes to a log, not between the progress lines
            runs[tag] = run_scenario(_scenario(policy, modes, levels[level], devices, ring), sim=sim,
                                     workdir=workdir / tag, log=workdir / f"{tag}.log")
    cycles, speedup, pvm = {}, {}, {}
    for level in ("low", "high"):
        mca, plain = runs[f"{level}_mca"], runs[f"{level}_plain"]
        c = {"baseline": mca["baseline"]["cycles"], "t3_plain": plain["t3"]["cycles"],
             "t3_mca": mca["t3"]["cycles"]}
        cycles[level] = c
        speedup[level] = {k: c["baseline"] / c[k] for k in ("t3_plain", "t3_mca")}
        pvm[level] = {"plain_slower_by": c["t3_plain"] / c["t3_mca"] - 1,
                      "gemm_stall_cycles_plain": _stall_mean(plain["t3"]),
                      "gemm_stall_cycles_mca": _stall_mean(mca["t3"])}
    rates = block_rates(cfg)
    high = runs["high_mca"]
    scn = _scenario("mca", ("t3",), levels["high"], devices, ring)
    data = {
        "scenario": {"devices": devices, "m": scn.m, "n": scn.n, "k": scn.k, "dtype": scn.dtype,
                     "line_bytes": scn.line_bytes, "tracker_entries": scn.tracker_entries,
                     "link_latency": scn.link_latency, "link_bw": scn.link_bw,
                     "memory": "dram", "wg_cycles": scn.wg_cycles,
                     "k_steps": scn.k_steps, "gemm_outstanding": scn.gemm_outstanding,
                     "simulator": sim},
        "intensities": levels,
        "cycles": cycles,
        "speedup": speedup,
        "plain_vs_mca": pvm,
        "devices_t3_mca": _device_rows(high["t3"]),
        "devices_baseline": _device_rows(high["baseline"]),
        "block_rates": rates,
        "verified_bit_exact": True,
    }
    md = ["## Throughput (RTL)", "",
          f"Ring runs on the RTL under {sim}: {devices} devices, {scn.m}x{scn.n}x{scn.k} "
          f"{scn.dtype}, {scn.line_bytes}-byte lines, {scn.tracker_entries}-entry tracker, "
          f"link {scn.link_latency} cycles / {scn.link_bw} lines per cycle (the paper's "
          "500 ns and 150 GB/s vs 1 TB/s at the RTL clock), the DRAM memory (HBM2 "
          "timing, docs/memory.md) and the closed-loop GEMM "
          f"({scn.wg_cycles} compute cycles per wave in {scn.k_steps} steps, "
          f"{scn.gemm_outstanding} READs in flight per device). GEMM intensity = DRAM read "
          f"lines per cycle at full speed, fraction of peak ({levels['source']}). Every "
          "memory was read back and matched the golden model bit for bit.", "",
          "| intensity | unfused baseline | T3, plain arbiter | T3-MCA | plain slower by | "
          "GEMM stall cycles plain / MCA (mean per device) |",
          "|---|--:|--:|--:|--:|--|"]
    for level in ("low", "high"):
        c, p = cycles[level], pvm[level]
        md.append(f"| {level} ({levels[level]}) | {c['baseline']} | {c['t3_plain']} | "
                  f"{c['t3_mca']} | {p['plain_slower_by']:.1%} | "
                  f"{p['gemm_stall_cycles_plain']:.0f} / {p['gemm_stall_cycles_mca']:.0f} |")
    md += ["", "| device (T3-MCA, high) | memory busy | link busy | tracker fires | peak "
               "tracker entries | row hits | mean queue | GEMM READ latency mean / max | "
               "MCA threshold |",
           "|--:|--:|--:|--:|--:|--:|--:|--|--|"]
    for r in data["devices_t3_mca"]:
        mm = r["memory"]
        md.append(f"| {r['device']} | {r['memory_busy_fraction']:.1%} | "
                  f"{r['link_busy_fraction']:.1%} | {r['tracker_fires']} | "
                  f"{r['tracker_peak_occupancy']} | {mm['row_hit_ratio']:.1%} | "
                  f"{mm['mean_occupancy']:.2f} | {mm['gemm_read_latency_mean']:.1f} / "
                  f"{mm['gemm_read_latency_max']} | {mm['mca_threshold']}"
                  f"{' (measured)' if mm['mca_measured'] else ''} |")
    md += ["", f"Tracker: {rates['tracker_requests_per_cycle']:.0f} tracked request per cycle "
               f"sustained; trigger latency {rates['trigger_latency_cycles']} cycles (last "
               "update accepted -> first DMA READ).", "",
           "| NMC dtype | lanes | requests/cycle | dependent same-line UPDATEs/cycle | latency |",
           "|---|--:|--:|--:|--:|"]
    for dt, r in rates["nmc"].items():
        md.append(f"| {dt} | {r['lanes']} | {r['requests_per_cycle']:.0f} | "
                  f"{r['dependent_same_line_updates_per_cycle']:.2f} | {r['latency_cycles']} |")
    md.append("")
    ok = all(cycles[lv]["t3_mca"] < cycles[lv]["baseline"] for lv in cycles)
    return data, "\n".join(md), ok


def model(out: Path, progress: Callable[[str], None] = print) -> tuple[dict, str, bool]:
    from sim_models.perf import plots, sweep
    data, md, ok = sweep.report()
    figs = plots.write_all(data["rows"], out)
    data["figures"] = [str(Path(f).name) for f in figs]
    md += "\n" + "\n".join(f"![{Path(f).stem}]({Path(f).name})" for f in figs) + "\n"
    progress(f"   {len(data['rows'])} sublayer rows, {len(figs)} figures")
    return data, md, ok
