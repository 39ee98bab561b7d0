"""`t3 report`: the project's main output, in parts that also run alone.

``t3 report PART`` runs one part and writes ``DIR/PART.json`` and ``DIR/PART.md``;
``t3 report`` runs every part and also writes ``DIR/report.json`` (one key per part) and
``DIR/report.md``. A part is a :class:`Part` in :data:`PARTS`: its own options, and a
``run`` returning (JSON-ready data, Markdown section, ok). Today: ``area`` (docs/area.md);
``throughput`` and ``model`` plug in the same way.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from flow.area import FPGA_MAX_CELLS
from .common import add_config_arg, config_from_args, out_dir, positive_int
from .errors import UsageError

REPORT_SCHEMA = "t3-report/1"

#: where the area part leaves the Verilog of every design it measured (NAME.v)
VERILOG_DIR = Path("build") / "verilog"

#: top-level keys of report.json (docs/report.md)
REPORT_KEYS: dict[str, str] = {
    "schema": f"'{REPORT_SCHEMA}'",
    "config": "the T3Config used (all fields)",
    "area": "area.json: per-block area and timing (docs/area.md)",
    "throughput": "throughput.json: the RTL ring runs (verif.report_parts.THROUGHPUT_KEYS)",
    "model": "model.json: the system model's paper sweep (verif.report_parts.MODEL_KEYS)",
}


_console = None


def progress(line: str) -> None:
    """One progress line on the terminal. It goes to a copy of the stdout descriptor
    taken when the command started: the throughput part sends the simulators' output to
    a log by redirecting descriptors 1 and 2 while the area part keeps reporting."""
    global _console
    if _console is None:
        try:
            _console = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
        except (OSError, ValueError, AttributeError):   # stdout without a descriptor
            _console = sys.stdout                          # (e.g. captured by pytest)
    sys.stdout.flush()
    print(line, file=_console, flush=True)


@dataclass(frozen=True)
class Part:
    name: str
    help: str
    add_args: Callable[[argparse.ArgumentParser], None]
    #: (args, cfg, config_label) -> (data, markdown, ok)
    run: Callable[[argparse.Namespace, Any, str], tuple[dict, str, bool]]
    #: (args) -> None; raises UsageError before any part runs
    check: Callable[[argparse.Namespace], None] = lambda args: None


# ---- area ------------------------------------------------------------------------------

def _area_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--design", action="append", metavar="NAME",
                   help="only this design (repeatable); default: every registered design")
    p.add_argument("--no-fpga", action="store_true",
                   help="skip the ECP5 synthesis and nextpnr place & route")
    p.add_argument("--timeout", type=positive_int, default=600, metavar="SECONDS",
                   help="wall-clock limit per tool run (default: 600)")
    p.add_argument("--fpga-max-cells", type=int, default=None, metavar="N",
                   help="skip the FPGA flow of designs of more than N generic cells unless "
                        "cached (default: %d; 0 = no limit)" % FPGA_MAX_CELLS)
    p.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1, metavar="N",
                   help="designs measured at a time (default: the CPU count)")


def _fpga_max_cells(args: argparse.Namespace) -> int:
    n = getattr(args, "fpga_max_cells", None)
    return FPGA_MAX_CELLS if n is None else n


def _area_check(args: argparse.Namespace) -> None:
    if _fpga_max_cells(args) < 0:
        raise UsageError(f"--fpga-max-cells {args.fpga_max_cells}: must be >= 0 (0 = no limit)")
    from hw.designs import load_all
    known = load_all()
    for n in getattr(args, "design", None) or ():
        if n not in known:
            raise UsageError(f"--design {n!r}: unknown (known: {', '.join(known)})")


def _area_run(args: argparse.Namespace, cfg, label: str) -> tuple[dict, str, bool]:
    from flow.area import collect, to_markdown
    data = collect(cfg, getattr(args, "design", None), fpga=not getattr(args, "no_fpga", False),
                   timeout_s=getattr(args, "timeout", 600),
                   jobs=getattr(args, "jobs", os.cpu_count() or 1), progress=progress,
                   verilog_dir=VERILOG_DIR, fpga_max_cells=_fpga_max_cells(args))
    ok = all(d["status"] == "ok" and not (d["fpga_status"] or "").startswith("error")
             for d in data["designs"].values())
    md = to_markdown(data, config_label=label) + \
        f"\nVerilog of every design measured: `{VERILOG_DIR}/<design>.v`.\n"
    return data, md, ok


# ---- throughput / model ------------------------------------------------------------------

def _throughput_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sim", choices=("verilator", "icarus"), default="verilator",
                   help="simulator for the ring runs (default: verilator)")
    p.add_argument("--devices", type=_ring_devices, default=4,
                   help="devices of the ring runs, 2..8 (default 4)")


def _ring_devices(text: str) -> int:
    from hw.env.ring import MAX_DEVICES
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 2 <= v <= MAX_DEVICES:
        raise argparse.ArgumentTypeError(f"{text!r} must be in [2, {MAX_DEVICES}]")
    return v


def _throughput_run(args: argparse.Namespace, cfg, label: str) -> tuple[dict, str, bool]:
    from verif.report_parts import throughput
    return throughput(cfg, sim=getattr(args, "sim", "verilator"),
                      devices=getattr(args, "devices", 4),
                      workdir=Path("build") / "report_runs", progress=progress)


def _model_run(args: argparse.Namespace, cfg, label: str) -> tuple[dict, str, bool]:
    from verif.report_parts import model
    return model(Path(args.out), progress=progress)


PARTS: dict[str, Part] = {
    "area": Part("area", "per-block area (cells, transistors, µm² estimate) and ECP5 "
                         "LUTs/FFs/RAMs/Fmax", _area_args, _area_run, _area_check),
    "throughput": Part("throughput", "RTL ring cycles (baseline, T3, T3-MCA), utilisation, "
                                     "per-block rates", _throughput_args, _throughput_run),
    "model": Part("model", "system model: sublayer speedups and DRAM traffic vs the paper, "
                           "figures", lambda p: None, _model_run),
}


# ---- command ---------------------------------------------------------------------------

def _common_args(p: argparse.ArgumentParser, *, nested: bool) -> None:
    p.add_argument("--out", metavar="DIR", default="reports",
                   help="output directory (default: reports)")
    add_config_arg(p)
    if nested:   # PART parsers: no defaults, so `t3 report --out X area` keeps X
        for action in p._actions:
            if action.dest in ("out", "config"):
                action.default = argparse.SUPPRESS


def register(sub) -> None:
    p = sub.add_parser("report", help="area, throughput and sublayer reports -> reports/",
                       description="Run every report part (or one: PART) and write "
                                   "DIR/report.md + DIR/report.json (DIR/PART.md + .json).")
    _common_args(p, nested=False)
    parts = p.add_subparsers(dest="part", metavar="PART")
    for part in PARTS.values():
        q = parts.add_parser(part.name, help=part.help)
        _common_args(q, nested=True)
        part.add_args(q)
    p.set_defaults(func=run)


def _write(out: Path, stem: str, data: dict, markdown: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / f"{stem}.md").write_text(markdown)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)          # bad --config: ConfigError -> exit 2, before any work
    global _console
    if _console not in (None, sys.stdout):
        _console.close()
    _console = None                       # (re)bind to this invocation's stdout
    label = f"--config {args.config}" if getattr(args, "config", None) else "paper default"
    selected = [args.part] if args.part else list(PARTS)
    for name in selected:
        PARTS[name].check(args)
    out = out_dir(args.out, "--out")      # a file in the way: exit 2 before any part runs
    report: dict[str, Any] = {"schema": REPORT_SCHEMA, "config": cfg.to_dict()}
    sections, all_ok = [], True
    # The parts are independent: they run at the same time (the area part is minutes of
    # single-threaded tool runs spread over the cores, the ring runs wait on Verilator's
    # build), so the report takes about as long as its longest part.
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(selected)) as pool:
        futures = {}
        for name in selected:
            progress(f"== {name}: started")
            futures[name] = pool.submit(PARTS[name].run, args, cfg, label)
        for name in selected:
            data, markdown, ok = futures[name].result()
            _write(out, name, data, markdown)
            progress(f"== {name}: wrote {out / name}.md and {out / name}.json")
            report[name], all_ok = data, all_ok and ok
            sections.append(markdown)
    if not args.part:
        _write(out, "report", report, "# T3 report\n\n" + "\n".join(sections))
        progress(f"wrote {out / 'report.md'} and {out / 'report.json'}")
    if not all_ok:
        print("t3 report: some designs failed (see the 'error' entries above)", file=sys.stderr)
    return 0 if all_ok else 1
