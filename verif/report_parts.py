"""The `throughput` and `model` parts of `t3 report` (the `area` part is flow/area.py).

* throughput: a representative 4-device ring run on the RTL under Verilator (the
  suite's 4-device fp16 profile: 8-byte lines, 16-entry tracker, so its build is shared
  with the tests), with the paper's link scaled to the RTL clock; the unfused baseline,
  T3 with the plain arbiter and T3 with MCA; per-device utilisation; plus the per-block
  rates the hardware guarantees (from contract.latency, which the components'
  latency properties return and the tests assert).
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
    "scenario": "the ring run: devices, m, n, k, dtype, line_bytes, tracker_entries, "
                "link_latency (cycles), link_bw (lines/cycle), simulator",
    "cycles": "ring cycles per schedule: baseline, t3_plain, t3_mca",
    "speedup": "baseline cycles / cycles, for t3_plain and t3_mca",
    "devices_t3_mca": "per device under T3-MCA: memory_busy_fraction, link_busy_fraction, "
                      "tracker_fires, tracker_peak_occupancy (entries), tracker_stall_cycles, "
                      "dma_lines, starved_grants, requests_per_cycle (address_map_producer, "
                      "address_map_link, tracker, dma_lines, memory)",
    "devices_baseline": "the same for the unfused baseline",
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


def _scenario(policy: str, modes: tuple[str, ...], sizes: tuple[int, int]):
    from verif.ring_scenario import RingScenario
    m, n = sizes
    return RingScenario(devices=4, dtype="fp16", m=m, n=n, k=32, wg_tile=(8, 8), wf_tile=(4, 4),
                        line_bytes=8, cus=2, wg_cycles=8, tracker_entries=16, policy=policy,
                        modes=modes, seed=5, mem_depth_lines=256, link_fifo=128, **PAPER_LINK)


def _device_rows(res: dict) -> list[dict[str, Any]]:
    """Per device: utilisation, tracker activity and each block's requests per cycle
    (hardware counters / the mode's cycles)."""
    cyc = res["cycles"]
    return [{"device": d, "memory_busy_fraction": st["mem_busy_cycles"] / cyc,
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


def throughput(cfg: T3Config, *, sim: str = "verilator", workdir: Path,
               progress: Callable[[str], None] = print) -> tuple[dict, str, bool]:
    from verif.ring_scenario import run_scenario
    sizes = (32, 32)
    runs = {}
    for name, policy, modes in (("baseline_and_t3_mca", "mca", ("t3", "baseline")),
                                ("t3_plain", "fifo", ("t3",))):
        progress(f"   ring run {name} ({sim})")
        # the simulator's build and run output goes to a log, not between the progress lines
        res = run_scenario(_scenario(policy, modes, sizes), sim=sim, workdir=workdir / name,
                           log=workdir / f"{name}.log")
        runs[name] = res
    base = runs["baseline_and_t3_mca"]["baseline"]["cycles"]
    mca = runs["baseline_and_t3_mca"]["t3"]["cycles"]
    plain = runs["t3_plain"]["t3"]["cycles"]
    rates = block_rates(cfg)
    data = {
        "scenario": {"devices": 4, "m": sizes[0], "n": sizes[1], "k": 32, "dtype": "fp16",
                     "line_bytes": 8, "tracker_entries": 16, **PAPER_LINK, "simulator": sim},
        "cycles": {"baseline": base, "t3_plain": plain, "t3_mca": mca},
        "speedup": {"t3_plain": base / plain, "t3_mca": base / mca},
        "devices_t3_mca": _device_rows(runs["baseline_and_t3_mca"]["t3"]),
        "devices_baseline": _device_rows(runs["baseline_and_t3_mca"]["baseline"]),
        "block_rates": rates,
        "verified_bit_exact": True,
    }
    md = ["## Throughput (RTL)", "",
          f"Representative ring run on the RTL under {sim}: 4 devices, {sizes[0]}x{sizes[1]} "
          "fp16 output, 8-byte lines, 16-entry tracker, link 700 cycles / 0.15 lines per "
          "cycle (the paper's 500 ns and 150 GB/s vs 1 TB/s at the RTL clock). Every "
          "memory was read back and matched the golden model bit for bit.", "",
          "| schedule | cycles | speedup vs baseline |", "|---|--:|--:|",
          f"| unfused baseline (GEMM, then RS and AG DMA steps) | {base} | 1.00 |",
          f"| T3, plain arbiter | {plain} | {base / plain:.2f} |",
          f"| T3-MCA | {mca} | {base / mca:.2f} |", "",
          "| device (T3-MCA) | memory busy | link busy | tracker fires | peak tracker "
          "entries | stall cycles | requests/cycle: producer, link in, tracker, DMA lines, "
          "memory |",
          "|--:|--:|--:|--:|--:|--:|--|"]
    for r in data["devices_t3_mca"]:
        rpc = ", ".join(f"{v:.3f}" for v in r["requests_per_cycle"].values())
        md.append(f"| {r['device']} | {r['memory_busy_fraction']:.1%} | "
                  f"{r['link_busy_fraction']:.1%} | {r['tracker_fires']} | "
                  f"{r['tracker_peak_occupancy']} | {r['tracker_stall_cycles']} | {rpc} |")
    md += ["", f"Tracker: {rates['tracker_requests_per_cycle']:.0f} tracked request per cycle "
               f"sustained; trigger latency {rates['trigger_latency_cycles']} cycles (last "
               "update accepted -> first DMA READ).", "",
           "| NMC dtype | lanes | requests/cycle | dependent same-line UPDATEs/cycle | latency |",
           "|---|--:|--:|--:|--:|"]
    for dt, r in rates["nmc"].items():
        md.append(f"| {dt} | {r['lanes']} | {r['requests_per_cycle']:.0f} | "
                  f"{r['dependent_same_line_updates_per_cycle']:.2f} | {r['latency_cycles']} |")
    md.append("")
    return data, "\n".join(md), mca < base


def model(out: Path, progress: Callable[[str], None] = print) -> tuple[dict, str, bool]:
    from sim_models.perf import plots, sweep
    data, md, ok = sweep.report()
    figs = plots.write_all(data["rows"], out)
    data["figures"] = [str(Path(f).name) for f in figs]
    md += "\n" + "\n".join(f"![{Path(f).stem}]({Path(f).name})" for f in figs) + "\n"
    progress(f"   {len(data['rows'])} sublayer rows, {len(figs)} figures")
    return data, md, ok
