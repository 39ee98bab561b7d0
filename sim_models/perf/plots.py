"""PNG figures like the paper's: speedup per sublayer over sequential, and the DRAM
data-movement breakdown (GEMM / RS / AG, reads and writes) normalised to sequential.
Matplotlib with the Agg backend (no display)."""

from __future__ import annotations

from pathlib import Path

from .sublayer import CONFIGS

__all__ = ["plot_speedup", "plot_data_movement", "plot_sweep", "write_all"]

_COLORS = {"sequential": "#9e9e9e", "sw_overlap": "#f4a261", "sw_overlap_16": "#e9c46a",
           "ideal": "#264653", "nmc_rs": "#8d99ae", "t3": "#2a9d8f", "t3_mca": "#e76f51",
           "t3_mca_fused_ag": "#6d597a"}


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _groups(rows):
    keys = []
    for r in rows:
        k = (r["model"], r["tp"], r["sublayer"])
        if k not in keys:
            keys.append(k)
    return keys


def _label(k) -> str:
    return f"{k[0]}\nTP{k[1]} {k[2]}"


def plot_speedup(rows, path: Path) -> Path:
    plt = _plt()
    keys = _groups(rows)
    by = {(r["model"], r["tp"], r["sublayer"], r["config"]): r for r in rows}
    cfgs = [c for c in CONFIGS if c != "sequential"]
    width = 0.8 / len(cfgs)
    fig, ax = plt.subplots(figsize=(max(8, 0.55 * len(keys)), 4.2))
    for i, c in enumerate(cfgs):
        xs = [j + (i - (len(cfgs) - 1) / 2) * width for j in range(len(keys))]
        ax.bar(xs, [by[k + (c,)]["speedup"] for k in keys], width, label=c, color=_COLORS[c])
    ax.axhline(1.0, color="k", lw=0.8)
    lo = min(r["speedup"] for r in rows)
    ax.set_ylim(min(0.9, lo - 0.05), None)
    ax.set_xticks(range(len(keys)), [_label(k) for k in keys], rotation=90, fontsize=7)
    ax.set_ylabel("speedup over sequential")
    ax.set_title("Sublayer speedup (GEMM + all-reduce), per device")
    ax.legend(ncol=len(cfgs), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_data_movement(rows, path: Path, configs=("sequential", "t3_mca")) -> Path:
    plt = _plt()
    keys = _groups(rows)
    by = {(r["model"], r["tp"], r["sublayer"], r["config"]): r for r in rows}
    parts = [("gemm_dram_read_bytes", "GEMM rd"), ("gemm_dram_write_bytes", "GEMM wr"),
             ("rs_dram_read_bytes", "RS rd"), ("rs_dram_write_bytes", "RS wr"),
             ("ag_dram_read_bytes", "AG rd"), ("ag_dram_write_bytes", "AG wr")]
    colors = ["#457b9d", "#a8dadc", "#e63946", "#f1a7a9", "#6d597a", "#b5a6c9"]
    width = 0.8 / len(configs)
    fig, ax = plt.subplots(figsize=(max(8, 0.55 * len(keys)), 4.2))
    for i, c in enumerate(configs):
        xs = [j + (i - (len(configs) - 1) / 2) * width for j in range(len(keys))]
        bottom = [0.0] * len(keys)
        for (field, name), col in zip(parts, colors):
            vals = []
            for k in keys:
                seq = by[k + ("sequential",)]
                norm = seq["dram_read_bytes"] + seq["dram_write_bytes"]
                vals.append(by[k + (c,)][field] / norm)
            ax.bar(xs, vals, width, bottom=bottom, color=col, edgecolor="k", lw=0.3,
                   label=name if i == 0 else None, hatch=None if i == 0 else "//")
            bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xticks(range(len(keys)), [_label(k) for k in keys], rotation=90, fontsize=7)
    ax.set_ylabel("DRAM bytes / sequential GEMM+RS bytes")
    ax.set_title(f"Data movement: {' (plain) vs '.join(configs)} (hatched)")
    ax.legend(ncol=6, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_sweep(entries, path: Path) -> Path:
    plt = _plt()
    xs = [e["value"] for e in entries]
    fig, ax = plt.subplots(figsize=(6, 4))
    for c in CONFIGS[1:]:
        ax.plot(xs, [e[f"{c}_geomean_pct"] for e in entries], "o-", label=c, color=_COLORS[c])
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_title(f"sweep {entries[0]['sweep']}: all 28 instances")
    ax.set_xscale("log", base=2)
    ax.set_xlabel(entries[0]["sweep"])
    ax.set_ylabel("geomean speedup over sequential (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_all(rows, out_dir: Path, sweeps: dict | None = None) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [plot_speedup(rows, out_dir / "speedup.png"),
             plot_data_movement(rows, out_dir / "data_movement.png")]
    for name, entries in (sweeps or {}).items():
        paths.append(plot_sweep(entries, out_dir / f"sweep_{name}.png"))
    return paths
