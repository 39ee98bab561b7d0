"""One function per figure (``t3 model --figure NAME``, ``make figures``): each runs its
own model evaluation and writes ``NAME.png`` and ``NAME.csv`` (the plotted numbers).

* ``speedup`` -- per-sublayer speedup over sequential, every configuration;
* ``data_movement`` -- DRAM bytes by component (GEMM rd/wr, RS rd/wr, AG rd/wr),
  sequential vs T3-MCA, normalised to sequential GEMM + RS;
* ``cu_sharing`` -- software overlap with 8 or 16 of the 80 CUs given to the collective
  against T3-MCA: sublayer speedup and the GEMM's own slowdown;
* ``contention`` -- the fast contention model against its cycle-level ground truth
  (stored table, no simulation);
* ``end_to_end`` -- per model, TP and phase (training, prompt-phase inference): the
  sequential layer time by part (TP GEMMs, their all-reduce, other GEMMs, attention,
  elementwise) and the end-to-end speedup of T3, T3-MCA and ideal overlap
  (:mod:`.end_to_end`);
* ``sweep_tp``, ``sweep_link_bw``, ``sweep_tokens``, ``sweep_compute2x`` -- geomean
  speedup per configuration along one parameter.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

from .hardware import Hardware
from .workloads import Workloads

__all__ = ["FIGURES", "write_figure"]


def _csv(path: Path, rows: list[dict]) -> Path:
    keys: list[str] = []
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    return path


def _save(fig, plt, out: Path, stem: str, rows: list[dict]) -> list[Path]:
    """Write ``fig`` as ``out/stem.png`` (tight layout, 120 dpi), close it, and write the
    plotted numbers as ``out/stem.csv``: the two files of a figure."""
    fig.tight_layout()
    png = out / f"{stem}.png"
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return [png, _csv(out / f"{stem}.csv", rows)]


def _speedup(out: Path, hw, wl, tokens):
    from .plots import plot_speedup
    from .sweep import paper_rows
    rows = paper_rows(hw, wl, tokens=tokens)
    return [plot_speedup(rows, out / "speedup.png"), _csv(out / "speedup.csv", rows)]


def _data_movement(out: Path, hw, wl, tokens):
    from .plots import plot_data_movement
    from .sweep import paper_rows
    rows = paper_rows(hw, wl, tokens=tokens)
    keep = [r for r in rows if r["config"] in ("sequential", "nmc_rs", "t3_mca")]
    return [plot_data_movement(rows, out / "data_movement.png"),
            _csv(out / "data_movement.csv", keep)]


def _cu_sharing(out: Path, hw, wl, tokens):
    from .plots import _plt
    from .sweep import paper_rows
    rows = paper_rows(hw, wl, tokens=tokens)
    by = {(r["model"], r["tp"], r["sublayer"], r["config"]): r for r in rows}
    keys = []
    for r in rows:
        k = (r["model"], r["tp"], r["sublayer"])
        if k not in keys:
            keys.append(k)
    data = []
    for k in keys:
        seq = by[k + ("sequential",)]
        d = {"model": k[0], "tp": k[1], "sublayer": k[2]}
        for c in ("sw_overlap", "sw_overlap_16", "t3_mca"):
            d[f"{c}_speedup"] = by[k + (c,)]["speedup"]
            d[f"{c}_gemm_slowdown"] = by[k + (c,)]["gemm_us"] / seq["gemm_us"]
        data.append(d)
    plt = _plt()
    fig, axs = plt.subplots(2, 1, figsize=(max(8, 0.55 * len(keys)), 6.5), sharex=True)
    cols = {"sw_overlap": ("8 CUs to the collective", "#f4a261"),
            "sw_overlap_16": ("16 CUs to the collective", "#e9c46a"),
            "t3_mca": ("T3-MCA (no CU)", "#e76f51")}
    w = 0.27
    for i, (c, (lab, col)) in enumerate(cols.items()):
        xs = [j + (i - 1) * w for j in range(len(keys))]
        axs[0].bar(xs, [d[f"{c}_speedup"] for d in data], w, color=col, label=lab)
        axs[1].bar(xs, [d[f"{c}_gemm_slowdown"] for d in data], w, color=col, label=lab)
    axs[0].axhline(1.0, color="k", lw=0.8)
    axs[0].set_ylabel("speedup over sequential")
    axs[0].set_title("CU sharing: software overlap on 8 / 16 of 80 CUs vs T3-MCA")
    axs[0].legend(fontsize=8, ncol=3)
    axs[1].axhline(1.0, color="k", lw=0.8)
    axs[1].set_ylabel("GEMM time / GEMM alone")
    axs[1].set_xticks(range(len(keys)), [f"{k[0]}\nTP{k[1]} {k[2]}" for k in keys],
                      rotation=90, fontsize=7)
    return _save(fig, plt, out, "cu_sharing", data)


def _contention(out: Path, hw, wl, tokens):
    from .contention import agreement_rows
    from .plots import _plt
    rows = agreement_rows()
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 5))
    for pol, mk in (("rr", "o"), ("mca", "s")):
        for what, col in (("gemm", "#264653"), ("comm", "#e76f51")):
            sel = [r for r in rows if r["policy"] == pol]
            ax.scatter([r[f"{what}_measured"] for r in sel], [r[f"{what}_model"] for r in sel],
                       marker=mk, color=col, label=f"{pol} {what}", alpha=0.8)
    hi = max(max(r["gemm_measured"], r["comm_measured"]) for r in rows) * 1.05
    ax.plot([0, hi], [0, hi], "k-", lw=0.8)
    ax.plot([0, hi], [0, 1.1 * hi], "k:", lw=0.6)
    ax.plot([0, hi], [0, 0.9 * hi], "k:", lw=0.6)
    ax.set_xlabel("cycles, ground truth (DRAM cycle model + harness)")
    ax.set_ylabel("cycles, fast contention model")
    ax.set_title("Contention model vs ground truth (dotted: ±10%)")
    ax.legend(fontsize=8)
    return _save(fig, plt, out, "contention", rows)


def _end_to_end(out: Path, hw, wl, tokens):
    from .end_to_end import projection_rows
    from .plots import _COLORS, _plt
    rows = projection_rows(hw, wl, tokens=tokens)
    plt = _plt()
    fig, axs = plt.subplots(2, 1, figsize=(max(8, 0.7 * len(rows)), 7), sharex=True)
    xs = range(len(rows))
    parts = (("TP-sublayer GEMMs", lambda r: r["tp_sublayers_us"] - r["comm_share"]
              * r["sequential_layer_us"], "#2a9d8f"),
             ("TP all-reduce (RS + AG)", lambda r: r["comm_share"] * r["sequential_layer_us"],
              "#e76f51"),
             ("other GEMMs", lambda r: r["other_gemm_us"], "#264653"),
             ("attention core", lambda r: r["attention_us"], "#8d99ae"),
             ("elementwise", lambda r: r["elementwise_us"], "#e9c46a"))
    bottom = [0.0] * len(rows)
    for lab, f, col in parts:
        h = [f(r) / r["sequential_layer_us"] for r in rows]
        axs[0].bar(xs, h, 0.7, bottom=bottom, color=col, label=lab)
        bottom = [b + x for b, x in zip(bottom, h)]
    axs[0].set_ylabel("share of the sequential layer time")
    axs[0].set_title("End-to-end projection: one layer per device (training = fwd + bwd; "
                     "inference = prompt phase)", fontsize=10)
    axs[0].legend(fontsize=7, ncol=5, loc="lower center", bbox_to_anchor=(0.5, 1.08))
    w = 0.27
    for i, c in enumerate(("t3", "t3_mca", "ideal")):
        axs[1].bar([x + (i - 1) * w for x in xs], [r[f"{c}_speedup"] for r in rows], w,
                   color=_COLORS[c], label=c)
    axs[1].axhline(1.0, color="k", lw=0.8)
    lo = min(min(r[f"{c}_speedup"] for c in ("t3", "t3_mca", "ideal")) for r in rows)
    axs[1].set_ylim(min(0.95, lo - 0.02), None)
    axs[1].set_ylabel("end-to-end speedup over sequential")
    axs[1].legend(fontsize=8, ncol=3)
    axs[1].set_xticks(list(xs), [f"{r['model']}\nTP{r['tp']} {r['phase']}" for r in rows],
                      rotation=90, fontsize=7)
    return _save(fig, plt, out, "end_to_end", rows)


def _sweep(name: str):
    def make(out: Path, hw, wl, tokens):
        from .plots import plot_sweep
        from .sweep import run_sweep
        entries = run_sweep(name, hw, wl, tokens=tokens)
        stem = "sweep_" + name.replace("-", "_")
        return [plot_sweep(entries, out / f"{stem}.png"), _csv(out / f"{stem}.csv", entries)]
    return make


FIGURES: dict[str, Callable] = {
    "speedup": _speedup,
    "data_movement": _data_movement,
    "cu_sharing": _cu_sharing,
    "contention": _contention,
    "end_to_end": _end_to_end,
    "sweep_tp": _sweep("tp"),
    "sweep_link_bw": _sweep("link-bw"),
    "sweep_tokens": _sweep("tokens"),
    "sweep_compute2x": _sweep("compute2x"),
}


def write_figure(name: str, out_dir: Path, hw: Hardware | None = None,
                 wl: Workloads | None = None, *, tokens: int | None = None) -> list[Path]:
    """Write figure ``name`` (PNG + CSV) into ``out_dir``; returns the paths."""
    from .hardware import load_hardware
    from .workloads import load_workloads
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return FIGURES[name](out, hw or load_hardware(), wl or load_workloads(), tokens)
