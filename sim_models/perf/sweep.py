"""The paper sweep (every model x TP x sublayer x configuration), its summaries, and the
parameter sweeps of ``t3 model --sweep``.

Row fields: times in microseconds, bytes per device. ``dram_read_bytes`` and
``dram_write_bytes`` count the GEMM and the reduce-scatter, the part of the sublayer
whose data movement T3 changes (the paper's data-movement scope); the all-gather is
identical in every configuration and is reported separately (``ag_dram_*``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .hardware import Hardware, load_hardware
from .sublayer import CONFIGS, EXTRA_CONFIGS, evaluate
from .workloads import Workloads, load_workloads

__all__ = ["paper_rows", "summarize", "markdown_table", "sublayer_picture",
           "sublayer_picture_markdown", "report", "SUMMARY_SETS", "SUBLAYER_SETS", "PAPER_HEADLINE", "SWEEPS",
           "run_sweep", "geomean"]

#: sublayer sets of the paper's summaries (model names)
SUMMARY_SETS = {
    # the paper's headline set: its sublayer figure covers Mega-GPT-2 and T-NLG at TP 8
    # and 16, OP / FC2 / FC1_bwd / IP_bwd (16 instances)
    "paper": ("Mega-GPT-2", "T-NLG"),
    "500B": ("PALM", "MT-NLG"),                 # the ~500B models, TP 32
    "all": ("Mega-GPT-2", "T-NLG", "GPT-3", "PALM", "MT-NLG"),   # all 28 instances
    "forward": ("Mega-GPT-2", "T-NLG", "GPT-3", "PALM", "MT-NLG"),   # with SUBLAYER_SETS
}
#: sets restricted to some sublayers: the forward ones are what prompt-phase inference runs
SUBLAYER_SETS = {"forward": ("OP", "FC2")}

#: the paper's abstract, in percent
PAPER_HEADLINE = {
    "speedup_geomean_pct": 30.0, "speedup_max_pct": 47.0,
    "dram_reduction_geomean_pct": 22.0, "dram_reduction_max_pct": 36.0,
    "speedup_500B_geomean_pct": 29.0,
}


def geomean(xs) -> float:
    xs = list(xs)
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def paper_rows(hw: Hardware | None = None, wl: Workloads | None = None, *,
               tokens: int | None = None, tp: tuple[int, ...] | None = None,
               extended: bool = False) -> list[dict]:
    """One row per instance and configuration (plus ``EXTRA_CONFIGS`` if ``extended``)."""
    hw = hw or load_hardware()
    wl = wl or load_workloads()
    rows = []
    for sub in wl.instances(tokens=tokens, tp=tp):
        res = evaluate(hw, sub, extended=extended)
        seq = res["sequential"]
        seq_bytes = seq.traffic.gemm_read + seq.traffic.gemm_write + seq.traffic.rs_read \
            + seq.traffic.rs_write
        for cfg in res:
            r = res[cfg]
            t = r.traffic
            rd, wr = t.gemm_read + t.rs_read, t.gemm_write + t.rs_write
            rows.append({
                "model": sub.model, "tp": sub.tp, "sublayer": sub.kind, "config": cfg,
                "tokens": sub.tokens, "hidden": sub.hidden, "k": sub.k,
                "time_us": r.time_s * 1e6,
                "speedup": seq.time_s / r.time_s,
                "gemm_us": r.gemm_s * 1e6, "rs_end_us": r.rs_end_s * 1e6, "ag_us": r.ag_s * 1e6,
                "dram_read_bytes": int(round(rd)), "dram_write_bytes": int(round(wr)),
                "dram_reduction": 1.0 - (rd + wr) / seq_bytes,
                "dram_total_bytes": int(round(t.total)),
                "dram_total_reduction": 1.0 - t.total / seq.traffic.total,
                "gemm_dram_read_bytes": int(round(t.gemm_read)),
                "gemm_dram_write_bytes": int(round(t.gemm_write)),
                "rs_dram_read_bytes": int(round(t.rs_read)),
                "rs_dram_write_bytes": int(round(t.rs_write)),
                "ag_dram_read_bytes": int(round(t.ag_read)),
                "ag_dram_write_bytes": int(round(t.ag_write)),
                "nmc_internal_read_bytes": int(round(t.nmc_internal_read)),
            })
    return rows


def _stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {"n": len(values), "geomean_pct": (geomean(values) - 1) * 100,
            "max_pct": (max(values) - 1) * 100, "min_pct": (min(values) - 1) * 100}


def summarize(rows: list[dict]) -> dict:
    """Per configuration and sublayer set: speedup over sequential ("X% faster" =
    T_seq/T - 1) and DRAM reduction (1 - bytes/bytes_seq), geomean / max / min.
    A geomean of reductions is taken over the ratios bytes_seq/bytes as for speedups
    and reported as 1 - 1/geomean."""
    out: dict = {"sets": {k: list(v) for k, v in SUMMARY_SETS.items()},
                 "sublayer_sets": {k: list(v) for k, v in SUBLAYER_SETS.items()}}
    sets = SUMMARY_SETS
    for cfg in CONFIGS + tuple(c for c in EXTRA_CONFIGS if any(r["config"] == c for r in rows)):
        per = {}
        for sname, models in sets.items():
            subs = SUBLAYER_SETS.get(sname)
            sel = [r for r in rows if r["config"] == cfg and r["model"] in models
                   and (subs is None or r["sublayer"] in subs)]
            sp = _stats([r["speedup"] for r in sel])
            per[sname] = {"speedup": sp}
            for key, field in (("dram_reduction", "dram_reduction"),
                               ("dram_total_reduction", "dram_total_reduction")):
                red = [1.0 / (1.0 - r[field]) for r in sel]
                dm = {"n": len(red)}
                if red:
                    dm.update(geomean_pct=(1 - 1 / geomean(red)) * 100,
                              max_pct=(1 - 1 / max(red)) * 100)
                per[sname][key] = dm
        out[cfg] = per
    m = out["t3_mca"]
    ours = {
        "speedup_geomean_pct": m["paper"]["speedup"].get("geomean_pct"),
        "speedup_max_pct": m["paper"]["speedup"].get("max_pct"),
        "dram_reduction_geomean_pct": m["paper"]["dram_total_reduction"].get("geomean_pct"),
        "dram_reduction_max_pct": m["paper"]["dram_total_reduction"].get("max_pct"),
        "speedup_500B_geomean_pct": m["500B"]["speedup"].get("geomean_pct"),
    }
    out["headline"] = {"config": "t3_mca", "paper": PAPER_HEADLINE, "model": ours,
                       "instance_set": "paper: Mega-GPT-2 + T-NLG, TP 8 and 16, 4 sublayers "
                                       "(16 instances); 500B: PALM + MT-NLG TP 32 (8); DRAM "
                                       "traffic in total, all-gather included"}
    return out


def markdown_table(rows: list[dict] | None = None) -> str:
    """The per-sublayer table of docs/system_model.md."""
    rows = rows or paper_rows()
    by: dict = {}
    for r in rows:
        by.setdefault((r["model"], r["tp"], r["sublayer"]), {})[r["config"]] = r
    out = ["| model | TP | sublayer | K | seq µs | " + " | ".join(CONFIGS[1:])
           + " | DRAM seq MB | DRAM t3_mca MB | DRAM − (with AG) |",
           "|---|---|---|---|---|" + "---|" * len(CONFIGS[1:]) + "---|---|---|"]
    for (m, tp, s), v in by.items():
        q, t = v["sequential"], v["t3_mca"]
        mb = lambda r: r["dram_total_bytes"] / 1e6  # noqa: E731
        out.append(f"| {m} | {tp} | {s} | {q['k']} | {q['time_us']:.0f} | "
                   + " | ".join(f"{v[c]['speedup']:.3f}" for c in CONFIGS[1:])
                   + f" | {mb(q):.1f} | {mb(t):.1f} | {100 * t['dram_total_reduction']:.1f}% |")
    return "\n".join(out)


def sublayer_picture(rows: list[dict], models: tuple[str, ...] = SUMMARY_SETS["paper"]
                     ) -> list[dict]:
    """Plain T3 vs T3-MCA vs ideal per sublayer instance of ``models`` (default: the
    paper set): the speedups over sequential and the share of the ideal overlap's gain
    each reaches (``(x - 1) / (ideal - 1)``; 1 = at the ideal, None where the ideal
    gains nothing)."""
    by: dict = {}
    for r in rows:
        if r["model"] in models:
            by.setdefault((r["model"], r["tp"], r["sublayer"]), {})[r["config"]] = r["speedup"]
    out = []
    for (m, tp, s), v in by.items():
        gain = v["ideal"] - 1.0
        d = {"model": m, "tp": tp, "sublayer": s, "ideal": v["ideal"], "t3": v["t3"],
             "t3_mca": v["t3_mca"]}
        for c in ("t3", "t3_mca"):
            d[f"{c}_of_ideal_gain"] = (v[c] - 1.0) / gain if gain > 1e-9 else None
        out.append(d)
    return out


def sublayer_picture_markdown(rows: list[dict] | None = None) -> str:
    """The per-sublayer picture table of docs/system_model.md."""
    pic = sublayer_picture(rows or paper_rows())
    pct = lambda x: "-" if x is None else f"{100 * x:.0f}%"  # noqa: E731
    out = ["| model | TP | sublayer | ideal | t3 | t3_mca | t3 of ideal gain | "
           "t3_mca of ideal gain |", "|---|---|---|---|---|---|---|---|"]
    for d in pic:
        out.append(f"| {d['model']} | {d['tp']} | {d['sublayer']} | {d['ideal']:.3f} | "
                   f"{d['t3']:.3f} | {d['t3_mca']:.3f} | {pct(d['t3_of_ideal_gain'])} | "
                   f"{pct(d['t3_mca_of_ideal_gain'])} |")
    return "\n".join(out)


def report(hw: Hardware | None = None, wl: Workloads | None = None) -> tuple[dict, str, bool]:
    """For ``t3 report``: (JSON-ready {"rows", "summary"}, a Markdown section, ok), ok
    meaning every headline number is within 3 percentage points of the paper."""
    rows = paper_rows(hw, wl)
    summary = summarize(rows)
    h = summary["headline"]
    lines = ["## System model: T3-MCA vs sequential (paper headline)", "",
             "| metric | paper | model |", "|---|---|---|"]
    ok = True
    for k, paper in h["paper"].items():
        ours = h["model"][k]
        ok &= abs(ours - paper) <= 3.0
        lines.append(f"| {k} | {paper:.1f}% | {ours:.1f}% |")
    lines += ["", markdown_table(rows), ""]
    return {"rows": rows, "summary": summary}, "\n".join(lines), ok


# ---- parameter sweeps -------------------------------------------------------------------

@dataclass(frozen=True)
class Sweep:
    name: str
    label: str
    values: tuple
    doc: str


SWEEPS = {
    "tp": Sweep("tp", "TP degree", (4, 8, 16, 32, 64), "every model at each TP degree"),
    "link-bw": Sweep("link-bw", "link GB/s", (50, 75, 150, 300, 600),
                     "ring link bandwidth per direction"),
    "tokens": Sweep("tokens", "tokens", (1024, 2048, 4096, 8192, 16384, 32768),
                    "tokens per GEMM (sequence x micro-batch)"),
    "compute2x": Sweep("compute2x", "matrix rate x", (1, 2, 4),
                       "per-CU matrix FLOP/cycle scaled (future hardware)"),
}


def run_sweep(name: str, hw: Hardware | None = None, wl: Workloads | None = None, *,
              tokens: int | None = None) -> list[dict]:
    """One summary per sweep value: geomean/max speedup of each config over all
    sublayers (all models), plus the T3-MCA DRAM reduction."""
    hw = hw or load_hardware()
    wl = wl or load_workloads()
    sw = SWEEPS[name]
    out = []
    for v in sw.values:
        h, kw = hw, {"tokens": tokens}
        if name == "tp":
            kw["tp"] = (v,)
        elif name == "link-bw":
            h = hw.replace(link={"bandwidth_GBps": float(v)})
        elif name == "tokens":
            kw["tokens"] = v
        elif name == "compute2x":
            h = hw.replace(gpu={"matrix_flops_per_cu_cycle": hw.gpu.matrix_flops_per_cu_cycle * v})
        rows = paper_rows(h, wl, **kw)
        entry = {"sweep": name, "value": v}
        for cfg in CONFIGS:
            sp = [r["speedup"] for r in rows if r["config"] == cfg]
            entry[f"{cfg}_geomean_pct"] = (geomean(sp) - 1) * 100
            entry[f"{cfg}_max_pct"] = (max(sp) - 1) * 100
        red = [1 / (1 - r["dram_reduction"]) for r in rows if r["config"] == "t3_mca"]
        entry["t3_mca_dram_reduction_geomean_pct"] = (1 - 1 / geomean(red)) * 100
        out.append(entry)
    return out
