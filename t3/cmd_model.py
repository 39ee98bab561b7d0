"""`t3 model`: the system-level performance model (sim_models.perf).

Prints, per model / TP / sublayer, the time of each configuration (us), its speedup over
sequential and the DRAM bytes (GEMM + reduce-scatter), then geomean/max summaries.
``--json`` prints {"rows": [...], "summary": {...}}; ``--plot DIR`` writes PNG figures;
``--sweep`` runs a parameter sweep instead of the paper table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import positive_int
from .errors import UsageError


def register(sub) -> None:
    from sim_models.perf.sweep import SWEEPS
    p = sub.add_parser("model", help="system-level performance model (paper sweep, sweeps, plots)")
    p.add_argument("--config", metavar="FILE",
                   help="hardware TOML (default: sim_models/configs/hardware_paper.toml)")
    p.add_argument("--workloads", metavar="FILE",
                   help="workloads TOML (default: sim_models/configs/workloads_paper.toml)")
    p.add_argument("--tokens", type=positive_int, metavar="T",
                   help="tokens per GEMM (overrides the workloads file; the tokens sweep "
                        "sets its own)")
    p.add_argument("--fused-ag", action="store_true",
                   help="also model T3-MCA with the all-gather fused (config t3_mca_fused_ag; "
                        "our extension, not in the paper's numbers)")
    p.add_argument("--json", action="store_true", help="print JSON {rows, summary}")
    p.add_argument("--plot", metavar="DIR", help="write PNG figures into DIR")
    p.add_argument("--sweep", choices=sorted(SWEEPS), metavar="NAME",
                   help=f"parameter sweep: {', '.join(sorted(SWEEPS))}")
    from sim_models.perf.figures import FIGURES
    p.add_argument("--figure", choices=sorted(FIGURES) + ["all"], metavar="NAME",
                   help=f"write one figure (PNG + CSV) into --plot DIR (default figures/): "
                        f"{', '.join(sorted(FIGURES))}, or all")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim_models.perf.hardware import load_hardware
    from sim_models.perf.sweep import paper_rows, run_sweep, summarize
    from sim_models.perf.workloads import load_workloads
    plot_dir = _out_dir(args.plot) if args.plot else None     # fail before any output
    hw = load_hardware(args.config)
    wl = load_workloads(args.workloads)
    if getattr(args, "figure", None):
        from sim_models.perf.figures import FIGURES, write_figure
        out = plot_dir or _out_dir("figures")
        names = sorted(FIGURES) if args.figure == "all" else [args.figure]
        for name in names:
            print_paths(write_figure(name, out, hw, wl, tokens=args.tokens), args.json)
        return 0
    if args.sweep:
        entries = run_sweep(args.sweep, hw, wl, tokens=args.tokens)
        if args.json:
            print(json.dumps({"sweep": args.sweep, "entries": entries}, indent=1))
        else:
            _print_sweep(entries)
        if plot_dir:
            from sim_models.perf.plots import plot_sweep
            print_paths([plot_sweep(entries, plot_dir / f"sweep_{args.sweep}.png")], args.json)
        return 0
    rows = paper_rows(hw, wl, tokens=args.tokens, extended=args.fused_ag)
    summary = summarize(rows)
    if args.json:
        print(json.dumps({"rows": rows, "summary": summary}, indent=1))
    else:
        _print_table(rows)
        _print_summary(summary)
        _print_picture(rows)
        _print_end_to_end(hw, wl, args.tokens)
    if plot_dir:
        from sim_models.perf.plots import write_all
        print_paths(write_all(rows, plot_dir), args.json)
    return 0


def _out_dir(text: str) -> Path:
    d = Path(text)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--plot {text}: cannot create directory: {e.strerror or e}") from None
    return d


def print_paths(paths, quiet_json: bool) -> None:
    import sys
    for p in paths:
        print(f"wrote {p}", file=sys.stderr if quiet_json else sys.stdout)


def _configs(rows) -> tuple:
    seen = []
    for r in rows:
        if r["config"] not in seen:
            seen.append(r["config"])
    return tuple(seen)


def _print_table(rows) -> None:
    CONFIGS = _configs(rows)
    short = {"sequential": "seq", "sw_overlap": "sw", "sw_overlap_16": "sw16", "ideal": "ideal",
             "nmc_rs": "nmc", "t3": "t3", "t3_mca": "t3mca", "t3_mca_fused_ag": "t3+ag"}
    head = (f"{'model':<11}{'tp':>3} {'sublayer':<8}"
            + "".join(f"{short[c] + ' us':>10}" for c in CONFIGS)
            + "".join(f"{'x ' + short[c]:>8}" for c in CONFIGS[1:])
            + f"{'DRAM seq MB':>13}{'t3mca MB':>10}{'-DRAM':>7}")
    print(head)
    print("-" * len(head))
    by = {}
    for r in rows:
        by.setdefault((r["model"], r["tp"], r["sublayer"]), {})[r["config"]] = r
    for (m, tp, s), rs in by.items():
        seq_mb = (rs["sequential"]["dram_read_bytes"] + rs["sequential"]["dram_write_bytes"]) / 1e6
        t3_mb = (rs["t3_mca"]["dram_read_bytes"] + rs["t3_mca"]["dram_write_bytes"]) / 1e6
        print(f"{m:<11}{tp:>3} {s:<8}"
              + "".join(f"{rs[c]['time_us']:>10.1f}" for c in CONFIGS)
              + "".join(f"{rs[c]['speedup']:>8.3f}" for c in CONFIGS[1:])
              + f"{seq_mb:>13.1f}{t3_mb:>10.1f}{rs['t3_mca']['dram_reduction'] * 100:>6.1f}%")
    print("DRAM: GEMM + reduce-scatter bytes per device (sw_overlap and ideal move about the "
          "sequential bytes, t3 the t3_mca bytes; per configuration in --json)")


def _print_summary(summary) -> None:
    from sim_models.perf.sublayer import CONFIGS, EXTRA_CONFIGS
    CONFIGS = CONFIGS + tuple(c for c in EXTRA_CONFIGS if c in summary)
    print()
    print("Speedup over sequential (% faster = T_seq/T - 1) and DRAM reduction "
          "(GEMM + RS bytes), geomean / max:")
    for sname, models in summary["sets"].items():
        subs = summary["sublayer_sets"].get(sname)
        print(f"  set {sname}: {', '.join(models)}" + (f"; sublayers {', '.join(subs)}" if subs else ""))
        for c in CONFIGS[1:]:
            s = summary[c][sname]
            print(f"    {c:<11} speedup {s['speedup']['geomean_pct']:6.1f}% / "
                  f"{s['speedup']['max_pct']:6.1f}%   DRAM -{s['dram_reduction']['geomean_pct']:5.1f}%"
                  f" / -{s['dram_reduction']['max_pct']:5.1f}%   (n={s['speedup']['n']})")
    h = summary["headline"]
    print()
    print(f"Headline (T3-MCA vs sequential): {'':<28}{'paper':>8}{'model':>8}")
    names = {"speedup_geomean_pct": "speedup geomean, paper set (16)",
             "speedup_max_pct": "speedup max, paper set (16)",
             "dram_reduction_geomean_pct": "DRAM reduction geomean, paper set, with AG",
             "dram_reduction_max_pct": "DRAM reduction max, paper set, with AG",
             "speedup_500B_geomean_pct": "speedup geomean, PALM + MT-NLG"}
    for k, label in names.items():
        print(f"  {label:<58}{h['paper'][k]:>7.1f}%{h['model'][k]:>7.1f}%")


def _print_picture(rows) -> None:
    from sim_models.perf.sweep import sublayer_picture
    pct = lambda x: "     -" if x is None else f"{100 * x:5.0f}%"  # noqa: E731
    print()
    print("Per sublayer, paper set: speedup over sequential and share of the ideal "
          "overlap's gain reached")
    print(f"{'model':<11}{'tp':>3} {'sublayer':<8}{'ideal':>8}{'t3':>8}{'t3_mca':>8}"
          f"{'t3 %ideal':>11}{'mca %ideal':>11}")
    for d in sublayer_picture(rows):
        print(f"{d['model']:<11}{d['tp']:>3} {d['sublayer']:<8}{d['ideal']:>8.3f}"
              f"{d['t3']:>8.3f}{d['t3_mca']:>8.3f}{pct(d['t3_of_ideal_gain']):>11}"
              f"{pct(d['t3_mca_of_ideal_gain']):>11}")


def _print_end_to_end(hw, wl, tokens) -> None:
    from sim_models.perf.end_to_end import projection_rows
    print()
    print("End-to-end projection, one transformer layer per device (training = forward + "
          "backward, inference = prompt phase;\n"
          "shares of the sequential layer time; "
          "docs/system_model.md \"End-to-end projection\")")
    print(f"{'model':<11}{'tp':>3} {'phase':<10}{'seq us':>9}{'TP subl':>9}{'comm':>7}"
          f"{'x t3':>8}{'x t3mca':>9}{'x ideal':>9}{'comm t3mca':>12}")
    for r in projection_rows(hw, wl, tokens=tokens):
        print(f"{r['model']:<11}{r['tp']:>3} {r['phase']:<10}{r['sequential_layer_us']:>9.0f}"
              f"{100 * r['tp_sublayer_share']:>8.1f}%{100 * r['comm_share']:>6.1f}%"
              f"{r['t3_speedup']:>8.3f}{r['t3_mca_speedup']:>9.3f}{r['ideal_speedup']:>9.3f}"
              f"{100 * r['t3_mca_comm_share']:>11.1f}%")


def _print_sweep(entries) -> None:
    from sim_models.perf.sublayer import CONFIGS
    name = entries[0]["sweep"]
    print(f"sweep {name}: geomean (max) speedup over sequential across all sublayers, %")
    print(f"{'value':>8}" + "".join(f"{c:>18}" for c in CONFIGS[1:]) + f"{'t3_mca -DRAM':>14}")
    for e in entries:
        print(f"{e['value']:>8}"
              + "".join(f"{e[c + '_geomean_pct']:>10.1f} ({e[c + '_max_pct']:5.1f})"
                        for c in CONFIGS[1:])
              + f"{e['t3_mca_dram_reduction_geomean_pct']:>13.1f}%")
