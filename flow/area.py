"""Per-block area and timing: runs the :mod:`flow.eda` flow on every registered design and
collects the numbers into one JSON-ready dict (schema: :data:`DESIGN_KEYS`,
:data:`TOP_KEYS`, documented in docs/area.md) plus a Markdown rendering.

Results are cached per (design, configuration, sources) under ``build/area/``: the key
hashes the design name, the full :class:`~contract.spec.T3Config`, the hw/ and spec
sources (:func:`flow.verilog.source_digest`), the flow's own code and Liberty file and the
tool versions. Each step's result is a file of its own, so e.g. ``--no-fpga`` followed by
a full run only adds the FPGA steps.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from contract.spec import T3Config

from . import eda, liberty

__all__ = ["COMPOSITES", "SUMMED", "compose", "with_parts", "STEPS", "DESIGN_KEYS", "TOP_KEYS",
           "SCHEMA_ID", "CACHE_ROOT", "NOTES", "UNIT_DESIGN", "GPU_CONTEXT", "measure_design",
           "collect", "to_markdown", "NEXTPNR_TIMEOUT_S", "FPGA_ROUTE_MAX_CELLS", "cache_key"]

REPO = Path(__file__).resolve().parent.parent
CACHE_ROOT = REPO / "build" / "area"
SCHEMA_ID = "t3-area/1"

#: flow steps, in order; ``runtime_s`` has one entry per step
STEPS = ("verilog", "synth", "depth", "abc_cmos", "abc_liberty", "ecp5_synth", "nextpnr")
FPGA_STEPS = ("ecp5_synth", "nextpnr")

#: every key of a design's entry (always present; ``null`` when not measured), with unit
DESIGN_KEYS: dict[str, str] = {
    "status": "'ok', or 'error: <one line>' when the ASIC-style flow failed",
    "cells": "Yosys generic cells after `synth` (SRAM macros excluded)",
    "flip_flops": "single-bit flip-flops among them (includes small memories mapped to FFs)",
    "memory_bits": "bits of every memory in the design (before mapping)",
    "sram_bits": "bits of the memories >= sram_min_depth_words deep, counted as SRAM macros",
    "sram_macros": "number of such memories",
    "transistors": "CMOS transistors of the logic (flip-flops included, SRAM excluded)",
    "nand2_eq": "transistors / 4: NAND2-equivalent gates of the logic",
    "area_um2_est": "µm², logic mapped to the 45 nm area-only Liberty (estimate)",
    "sram_area_um2_est": "µm², sram_bits x bit-cell area / array efficiency (estimate)",
    "total_area_um2_est": "µm², area_um2_est + sram_area_um2_est",
    "ecp5_lut4": "ECP5 LUT4s (LUT4 cells + 2 per CCU2C carry cell)",
    "ecp5_ff": "ECP5 flip-flops (TRELLIS_FF)",
    "ecp5_bram": "ECP5 18 Kib block RAMs (DP16KD)",
    "ecp5_lutram": "ECP5 distributed RAMs (TRELLIS_DPR16X4, 16x4 bits each)",
    "ecp5_dsp": "ECP5 multipliers (MULT18X18D)",
    "fmax_mhz": "MHz, nextpnr-ecp5 Fmax of the block with registered I/O",
    "fmax_kind": "'routed' (nextpnr finished routing and reported timing), 'estimated' "
                 "(nextpnr's timing estimate after placement: routing did not finish within "
                 "NEXTPNR_TIMEOUT_S, or the design has more than FPGA_ROUTE_MAX_CELLS generic "
                 "cells and is only placed) or 'unknown' (fmax_mhz is null: see fmax_note); "
                 "bottom-up: 'routed' only when every part is",
    "fmax_note": "why the Fmax is estimated or unknown (the part without an Fmax, for a "
                 "bottom-up composite), or which part sets a composite's Fmax; null for a "
                 "routed flat design",
    "logic_depth": "levels of logic (Yosys generic gates) on the longest register-to-register "
                   "path, `ltp -noff` (SRAM macros and black boxes end a path); bottom-up: the "
                   "deepest of the glue and the parts; null when unknown (depth_status)",
    "logic_depth_path": "first signal -> last signal (or the register it ends in) of that "
                        "path; bottom-up: prefixed by the piece it is in",
    "depth_status": "'ok', 'error: ...' (e.g. a combinational loop), 'timed out: ...', "
                    "'not run: ...', or 'unknown: ...' (bottom-up: a piece has no depth)",
    "asic_fmax_mhz_est": "MHz, ESTIMATED ASIC clock from logic_depth: 1e6 / ((levels x "
                         "fo4_per_level + register_overhead_fo4) x fo4_ps), constants in "
                         "technology.asic_timing (flow.liberty.ASIC_TIMING); null when "
                         "logic_depth is",
    "fpga_status": "'ok', 'does not fit: ...', 'skipped (--no-fpga)', 'skipped: N generic "
                   "cells > fpga_max_cells ...', 'timed out: ...' (--timeout), 'partial: ...' "
                   "(bottom-up) or 'error: ...'",
    "runtime_s": "seconds per step (verilog, synth, depth, abc_cmos, abc_liberty, "
                 "ecp5_synth, nextpnr) of the run that produced the numbers; null = step not run",
    "cached_steps": "steps whose result came from the cache in this run",
    "note": "what the block is, when its numbers need a caveat (or null)",
    "method": "'flat' (the whole design through the flow) or 'bottom-up' (a composite: "
              "its glue logic measured with the sub-blocks as black boxes, plus the "
              "sub-blocks' own entries; Fmax = the slowest part, unknown when a part "
              "has none)",
    "parts": "bottom-up only: the designs summed (null for flat)",
    "glue": "bottom-up only: the glue's own numbers for the summed keys and its "
            "logic_depth (null for flat)",
}

#: keys of the top-level object
TOP_KEYS: dict[str, str] = {
    "schema": f"'{SCHEMA_ID}'",
    "config": "the T3Config used (all fields)",
    "technology": "Liberty source, cell areas (µm²), SRAM model constants, asic_timing "
                  "(node, fo4_ps, fo4_per_level, register_overhead_fo4, sources)",
    "fpga": "device, package and the target clock of the FPGA runs",
    "designs": "design name -> entry (DESIGN_KEYS)",
    "tracker_storage": "tracker table storage next to the paper's ~19 KB",
    "context": "the T3 unit (or the sum of its blocks) against an A100-class GPU",
    "total_runtime_s": "seconds this collection took (cache hits included)",
}

#: the T3 unit's design name (when it exists, the context section uses it)
UNIT_DESIGN = "t3_unit"

#: designs whose numbers need a caveat: (role, note). Roles: "model" (not T3 hardware:
#: left out of the sum of blocks), "dram" (contains the compute memory, whose storage
#: stands in for DRAM: only the logic is T3 cost), "inside" (a sub-block of another
#: measured design: not summed twice), "skip" (not measured unless named by --design).
NOTES: dict[str, tuple[str, str]] = {
    "t3_compute_memory": ("dram", "storage stands in for the DRAM banks (its SRAM estimate is "
                                  "not T3 cost); the logic is the near-memory ALU, one "
                                  "FloatAdder per lane, and its pipeline"),
    "t3_unit": ("dram", "one device's T3 hardware with its compute memory, whose storage "
                        "(DRAM stand-in) is left out of the context section"),
    "t3_link": ("model", "model of a ring link (latency + bandwidth) for the RTL runs, "
                         "not T3 hardware"),
    "t3_ring": ("skip", "simulation top: ring_devices T3 units joined by link models"),
    **{f"t3_float_adder_{f}": ("inside", "one lane of the near-memory ALU")
       for f in ("fp16", "bf16", "fp32")},
    **{n: ("inside", "part of t3_track_trigger") for n in
       ("t3_addrmap", "t3_tracker", "t3_dma", "t3_csr")},
}


#: composites measured bottom-up: Verilog submodule path under the composite -> the
#: registered design it is (built with the same configuration). Why: the flat flow
#: would synthesise the 256-entry tracker three times (alone, in the track & trigger
#: block, in the unit) and place the unit's 80 k cells in WebAssembly nextpnr, which
#: does not fit `make report`'s 15 minutes on two cores.
COMPOSITES: dict[str, dict[str, str]] = {
    "t3_track_trigger": {"amap": "t3_addrmap", "tracker": "t3_tracker", "dma": "t3_dma",
                         "csr": "t3_csr"},
    "t3_unit": {"mem": "t3_compute_memory", "tt.amap": "t3_addrmap", "tt.tracker": "t3_tracker",
                "tt.dma": "t3_dma", "tt.csr": "t3_csr"},
}

#: seconds nextpnr may run (at most; ``--timeout`` can lower it). A run stopped while
#: routing reports nextpnr's post-placement timing estimate (``fmax_kind`` "estimated").
#: (Before its read mux was pipelined, the register block's routing did not converge in
#: 600 s; it now routes in about 150 s of CPU: docs/area.md "CSR block timing".)
NEXTPNR_TIMEOUT_S = 300

#: default of ``fpga_max_cells``: the FPGA flow of larger designs is left to an explicit
#: run (a 512-entry tracker, ~160 k generic cells, would not fit `make report`'s budget).
FPGA_MAX_CELLS = 120_000

#: above this many generic cells nextpnr only places (``--no-route``, Fmax = its
#: post-placement estimate, ``fmax_kind`` "estimated"): routing the 256-entry tracker (~80 k
#: generic cells, ~31 k LUT4) takes far longer than `make report`'s 15-minute budget on 2
#: cores, its placement about 5.5 CPU minutes (docs/area.md).
FPGA_ROUTE_MAX_CELLS = 40_000


def _place_only(cells: int | None) -> bool:
    """nextpnr only places a design of this many generic cells (:data:`FPGA_ROUTE_MAX_CELLS`)."""
    return cells is not None and cells > FPGA_ROUTE_MAX_CELLS

#: keys a composite sums over its glue and parts
SUMMED = ("cells", "flip_flops", "memory_bits", "sram_bits", "sram_macros", "transistors",
          "nand2_eq", "area_um2_est", "sram_area_um2_est", "total_area_um2_est", "ecp5_lut4",
          "ecp5_ff", "ecp5_bram", "ecp5_lutram", "ecp5_dsp")


def default_designs(registry: Iterable[str]) -> list[str]:
    """The designs measured when none are named: all but the "skip" ones."""
    return [n for n in registry if NOTES.get(n, ("",))[0] != "skip"]


#: what the T3 unit is compared with; figures from the NVIDIA A100 Tensor Core GPU
#: Architecture whitepaper (2020): GA100, 826 mm² in TSMC 7 nm (N7), 54.2 billion
#: transistors; the A100 product has five HBM2 stacks on ten 512-bit memory controllers.
GPU_CONTEXT = {
    "gpu": "NVIDIA A100 (GA100)",
    "die_area_mm2": 826.0,
    "transistors": 54.2e9,
    "process": "TSMC 7 nm (N7)",
    "memory_controllers": 10,
    "source": "NVIDIA A100 Tensor Core GPU Architecture whitepaper, 2020",
}

PAPER_TRACKER = {"entries": 256, "storage_kb": 19}

Progress = Callable[[str], None]

_ELABORATION = threading.Lock()


# --------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------

def _flow_files() -> list[Path]:
    here = Path(__file__).resolve().parent
    return [here / "eda.py", here / "liberty.py", liberty.LIBERTY_PATH]


def cache_key(name: str, cfg: T3Config, *, device: eda.Ecp5Device, freq_mhz: float) -> str:
    """Key of one design's results: everything that can change them."""
    from flow.verilog import source_digest
    blob = json.dumps({"design": name, "config": cfg.to_dict(),
                       "sources": source_digest(_flow_files()), "tools": eda.tool_versions(),
                       "device": device.name, "package": device.package, "freq_mhz": freq_mhz,
                       "sram_min_depth": liberty.SRAM_MIN_DEPTH},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class _StepCache:
    """One design's work directory; ``<step>.result.json`` holds a step's result."""

    def __init__(self, workdir: Path):
        self.dir = workdir
        workdir.mkdir(parents=True, exist_ok=True)

    def get(self, step: str) -> dict | None:
        p = self.dir / f"{step}.result.json"
        if not p.exists():
            return None
        try:
            return json.loads(p.read_text())
        except json.JSONDecodeError:
            return None

    def drop(self, step: str) -> None:
        (self.dir / f"{step}.result.json").unlink(missing_ok=True)

    def put(self, step: str, result: dict) -> None:
        p = self.dir / f"{step}.result.json"
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, sort_keys=True, indent=1))
        tmp.replace(p)


# --------------------------------------------------------------------------------------
# One design
# --------------------------------------------------------------------------------------

def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}"[:300] if not isinstance(e, eda.EdaError) else text[:300]


def measure_design(name: str, factory: Callable[[T3Config], Any], cfg: T3Config, *,
                   fpga: bool = True, cache_root: Path = CACHE_ROOT,
                   device: eda.Ecp5Device = eda.ECP5_85K, freq_mhz: float = 100,
                   timeout_s: float = 600, progress: Progress = print,
                   verilog_dir: Path | None = None,
                   fpga_max_cells: int | None = FPGA_MAX_CELLS) -> dict[str, Any]:
    """Run (or reuse) every step for one design; return its entry (:data:`DESIGN_KEYS`).
    The FPGA steps are skipped (``fpga_status: skipped: ...``) for a design of more than
    ``fpga_max_cells`` generic cells (None or 0: no limit) unless their result is cached.
    With ``verilog_dir``, the design's Verilog is also copied there as ``NAME.v``.
    A failing step is recorded in ``status``/``fpga_status``, never raised. For a
    :data:`COMPOSITES` design this measures the glue only (sub-blocks as black boxes,
    no place & route); :func:`compose` adds the parts."""
    boxes = [f"{name}.{sub}" for sub in COMPOSITES.get(name, {})]
    key = cache_key(name, cfg, device=device, freq_mhz=freq_mhz)
    cache = _StepCache(cache_root / name / key)
    verilog = cache.dir / f"{name}.v"
    results: dict[str, dict] = {}
    cached: list[str] = []

    def step(label: str, fn: Callable[[], dict]) -> dict:
        hit = cache.get(label)
        if hit is not None:
            cached.append(label)
            results[label] = hit
            progress(f"  {name}: {label} (cached{_status_suffix(hit)})")
            return hit
        t0 = time.monotonic()
        try:
            res = fn()
        except eda.DoesNotFit as e:
            res = {"failed": str(e), "fit": False, "seconds": time.monotonic() - t0}
            cache.put(label, res)              # deterministic: worth caching
            results[label] = res
            progress(f"  {name}: {label}: {e}")
            return res
        except Exception as e:                 # a broken block must not stop the report
            res = {"failed": _one_line(e), "seconds": time.monotonic() - t0}
            if isinstance(e, eda.EdaTimeout):
                res["timed_out"] = True        # a tool budget, not a broken design
            results[label] = res
            progress(f"  {name}: {label}: FAILED: {res['failed']}")
            return res
        res.setdefault("seconds", time.monotonic() - t0)
        cache.put(label, res)
        results[label] = res
        progress(f"  {name}: {label} {res['seconds']:.1f} s")
        return res

    def gen_verilog() -> dict:
        from flow.verilog import to_verilog, write_if_changed
        with _ELABORATION:              # Amaranth elaboration is not meant to be threaded
            text = to_verilog(factory(cfg), name)
        write_if_changed(verilog, text)
        return {"bytes": verilog.stat().st_size}

    _drop_stale(cache, name, fpga)
    v = step("verilog", gen_verilog)
    ok = "failed" not in v
    if ok and verilog_dir is not None:
        from flow.verilog import write_if_changed
        write_if_changed(Path(verilog_dir) / f"{name}.v", verilog.read_text())
    if ok:
        ok = "failed" not in step("synth", lambda: eda.generic_synth(
            verilog, name, cache.dir, sram_min_depth=liberty.SRAM_MIN_DEPTH,
            timeout_s=timeout_s, blackboxes=boxes))
    # The FPGA steps need only the Verilog and the memory count: they run beside the
    # two ABC mappings (a thread waiting on its tool), which shortens the longest
    # design's chain, the 256-entry tracker's, by its ABC time.
    fpga_thread = None
    if fpga and "failed" not in v:
        fpga_thread = threading.Thread(target=_fpga_steps, name=f"fpga-{name}", args=(
            name, verilog, cache, results, step, device, freq_mhz, timeout_s, boxes,
            fpga_max_cells))
        fpga_thread.start()
    for label, fn in (
            ("depth", lambda: eda.logic_depth(name, cache.dir, timeout_s=timeout_s)),
            ("abc_cmos", lambda: eda.cmos_transistors(name, cache.dir, timeout_s=timeout_s)),
            ("abc_liberty", lambda: eda.liberty_area(name, cache.dir, liberty.LIBERTY_PATH,
                                                     timeout_s=timeout_s))):
        if ok:
            step(label, fn)
    if fpga_thread is not None:
        fpga_thread.join()
    return _entry(name, results, cached, fpga=fpga)


def _drop_stale(cache: "_StepCache", name: str, fpga: bool) -> None:
    """Forget a producer step's result when the file it left is gone but a consumer
    step still needs it (e.g. build/area was partly cleaned)."""
    chain = (("verilog", f"{name}.v", ["synth"] + (["ecp5_synth"] if fpga else [])),
             ("synth", "generic.il", ["depth", "abc_cmos", "abc_liberty"]),
             ("ecp5_synth", "ecp5.json", ["nextpnr"] if fpga else []))
    for producer, file, users in chain:
        res = cache.get(producer)
        if res is not None and "failed" not in res and not (cache.dir / file).exists() \
                and any(cache.get(u) is None for u in users):
            cache.drop(producer)


def _status_suffix(res: dict) -> str:
    return f": {res['failed']}" if "failed" in res else ""


def _fpga_steps(name, verilog, cache, results, step, device, freq_mhz, timeout_s,
                boxes=(), max_cells: int | None = None) -> None:
    cells = results.get("synth", {}).get("cells")
    if max_cells and cells is not None and cells > max_cells and cache.get("ecp5_synth") is None:
        # not cached: a later run with a larger limit runs it
        results["ecp5_synth"] = {"failed": f"skipped: {cells:,} generic cells > fpga_max_cells "
                                           f"{max_cells:,} (run with --fpga-max-cells 0)",
                                 "skipped": True, "seconds": 0.0}
        return
    mem_bits = results.get("synth", {}).get("memory_bits")
    if mem_bits is None and (cache.dir / "mem.json").exists():
        # the generic synthesis failed or timed out after counting the memories
        counted = eda.parse_stat_json((cache.dir / "mem.json").read_text()).get(name)
        mem_bits = counted.memory_bits if counted else None

    def synth() -> dict:
        if mem_bits is not None and mem_bits > device.bram_bits:
            raise eda.DoesNotFit(f"does not fit: {mem_bits} memory bits > {device.bram_bits} "
                                 f"bits of block RAM on {device.name}")
        return eda.ecp5_synth(verilog, name, cache.dir, timeout_s=timeout_s, blackboxes=boxes)

    s = step("ecp5_synth", synth)
    if "failed" in s or boxes:       # a glue netlist with black boxes cannot be placed
        return

    def pnr() -> dict:
        eda.check_fits(device, s)
        if not (cache.dir / "ecp5.json").exists():
            raise eda.EdaError("nextpnr: ecp5.json missing (re-run with a clean build/area)")
        place_only = _place_only(cells)
        r = eda.nextpnr_ecp5(cache.dir, device=device, freq_mhz=freq_mhz, place_only=place_only,
                             timeout_s=timeout_s if place_only
                             else min(timeout_s, NEXTPNR_TIMEOUT_S))
        r["utilization"] = {k: list(v) for k, v in r["utilization"].items() if v[0]}
        r["place_only"] = place_only
        return r

    step("nextpnr", pnr)


def _entry(name: str, results: dict[str, dict], cached: list[str], *, fpga: bool) -> dict:
    e: dict[str, Any] = {k: None for k in DESIGN_KEYS}
    failed = next((f"error: {results[s]['failed']}" for s in ("verilog", "synth", "abc_cmos",
                                                               "abc_liberty")
                   if s in results and "failed" in results[s]), None)
    e["status"] = failed or "ok"
    g = results.get("synth", {})
    if "failed" not in g:
        for k in ("cells", "flip_flops", "memory_bits", "sram_bits", "sram_macros"):
            e[k] = g.get(k)
    c = results.get("abc_cmos", {})
    if "transistors" in c:
        e["transistors"] = c["transistors"]
        e["nand2_eq"] = round(c["transistors"] / liberty.TRANSISTORS_PER_NAND2)
    lib = results.get("abc_liberty", {})
    if "area_um2_est" in lib:
        e["area_um2_est"] = round(lib["area_um2_est"], 1)
    if e["sram_bits"] is not None:
        e["sram_area_um2_est"] = round(liberty.sram_area_um2(e["sram_bits"]), 1)
    if e["area_um2_est"] is not None and e["sram_area_um2_est"] is not None:
        e["total_area_um2_est"] = round(e["area_um2_est"] + e["sram_area_um2_est"], 1)
    s, p = (results.get("ecp5_synth", {}), results.get("nextpnr", {})) if fpga else ({}, {})
    if not fpga:
        e["fpga_status"] = "skipped (--no-fpga)"
    elif "verilog" in results and "failed" in results["verilog"]:
        e["fpga_status"] = "error: no Verilog"
    else:
        bad = s if "failed" in s else p if "failed" in p else None
        if bad is None:
            e["fpga_status"] = "ok"
        elif bad.get("fit") is False or bad.get("skipped"):
            e["fpga_status"] = bad["failed"]
        elif bad.get("timed_out"):
            e["fpga_status"] = f"timed out: {bad['failed']}"
        else:
            e["fpga_status"] = f"error: {bad['failed']}"
    if "failed" not in s:
        for k in ("ecp5_lut4", "ecp5_ff", "ecp5_bram", "ecp5_lutram", "ecp5_dsp"):
            e[k] = s.get(k)
    _fmax_fields(e, p)
    _depth_fields(e, results.get("depth"))
    e["runtime_s"] = {st: (round(results[st]["seconds"], 2) if st in results else None)
                      for st in STEPS}
    e["cached_steps"] = [st for st in STEPS if st in cached]
    e["note"] = NOTES[name][1] if name in NOTES else None
    e["method"] = "flat"
    return e


def _fmax_fields(e: dict[str, Any], p: dict) -> None:
    """``fmax_mhz``/``fmax_kind``/``fmax_note`` of a flat design from its nextpnr result
    ``p``; ``e['fpga_status']`` is already set. No Fmax is 'unknown', with the reason."""
    if "failed" not in p and p.get("fmax_mhz") is not None:
        e["fmax_mhz"] = round(p["fmax_mhz"], 1)
        if p.get("fmax_kind", "routed") == "routed":
            e["fmax_kind"] = "routed"
            return
        e["fmax_kind"] = "estimated"
        why = (f"only placed: more than {FPGA_ROUTE_MAX_CELLS:,} generic cells"
               if p.get("place_only", _place_only(e["cells"]))
               else f"routing did not finish within {NEXTPNR_TIMEOUT_S} s")
        e["fmax_note"] = f"nextpnr's timing estimate after placement ({why})"
        return
    e["fmax_kind"] = "unknown"
    e["fmax_note"] = (e["fpga_status"] if e["fpga_status"] not in (None, "ok")
                      else "nextpnr reported no clocked path")


def _depth_fields(e: dict[str, Any], d: dict | None) -> None:
    """``logic_depth``, its path, ``depth_status`` and the ASIC estimate from the depth
    step's result ``d`` (None: not run)."""
    if d is None:
        e["depth_status"] = "not run: no generic netlist"
    elif "failed" in d:
        e["depth_status"] = ("timed out: " if d.get("timed_out") else "error: ") + d["failed"]
    else:
        e["depth_status"] = "ok"
        e["logic_depth"] = d["logic_depth"]
        e["logic_depth_path"] = f"{d['path_from']} -> {d['path_to']}" if d["path_from"] else None
        e["asic_fmax_mhz_est"] = round(liberty.asic_fmax_mhz(d["logic_depth"]), 1)


def _composite_fmax(e: dict[str, Any], names: list[str], parts: dict[str, dict]) -> None:
    """A composite's Fmax: unknown (with every reason) when any part has none -- never
    the slowest of the others --, else the slowest part's, 'routed' only when every part
    is routed. Paths through the glue (not placed) are not timed."""
    unknown = [p for p in names if parts[p]["fmax_mhz"] is None]
    if unknown:
        e.update(fmax_mhz=None, fmax_kind="unknown", fmax_note="; ".join(
            f"part {p} has no Fmax ({parts[p]['fmax_note'] or parts[p]['fpga_status']})"
            for p in unknown))
        return
    slowest = min(names, key=lambda p: parts[p]["fmax_mhz"])
    estimated = [p for p in names if parts[p]["fmax_kind"] != "routed"]
    e.update(fmax_mhz=parts[slowest]["fmax_mhz"],
             fmax_kind="estimated" if estimated else "routed",
             fmax_note=f"slowest part {slowest}"
             + (f"; estimated: {', '.join(estimated)}" if estimated else "")
             + "; paths through the glue between the parts are not timed")


def _composite_depth(e: dict[str, Any], glue: dict[str, Any], names: list[str],
                     parts: dict[str, dict]) -> None:
    """A composite's logic depth: the deepest of its glue and parts, unknown when any of
    them is (paths that cross a part boundary are counted in neither piece)."""
    pieces = {"glue": glue, **{p: parts[p] for p in names}}
    missing = [n for n, x in pieces.items() if x["logic_depth"] is None]
    e.update(logic_depth=None, logic_depth_path=None, asic_fmax_mhz_est=None)
    if missing:
        e["depth_status"] = "unknown: " + "; ".join(
            f"{n}: {pieces[n]['depth_status']}" for n in missing)
        return
    deepest = max(pieces, key=lambda n: pieces[n]["logic_depth"])
    d = pieces[deepest]
    e.update(logic_depth=d["logic_depth"], depth_status="ok",
             logic_depth_path=f"{deepest}: {d['logic_depth_path']}",
             asic_fmax_mhz_est=round(liberty.asic_fmax_mhz(d["logic_depth"]), 1))


def compose(name: str, glue: dict[str, Any], parts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The entry of composite ``name``: its glue (``measure_design`` of the composite) plus
    the entries of its parts. ASIC numbers are summed only when every piece has them;
    FPGA counts are summed over the pieces synthesised, and Fmax is the slowest part's,
    unknown when a part has none (paths between parts are not timed: the glue is
    not placed); logic depth is the deepest piece's."""
    names = list(COMPOSITES[name].values())
    pieces = [glue] + [parts[p] for p in names]
    e = dict(glue)
    e.update(method="bottom-up", parts=names,
             glue={k: glue[k] for k in (*SUMMED, "logic_depth")})
    bad = [p for p in names if parts[p]["status"] != "ok"]
    if e["status"] == "ok" and bad:
        e["status"] = f"error: part {bad[0]}: {parts[bad[0]]['status']}"
    for k in SUMMED:
        vals = [x[k] for x in pieces]
        if k.startswith("ecp5_"):
            vals = [v for v in vals if v is not None]
        total = None if not vals or None in vals else sum(vals)
        e[k] = round(total, 1) if isinstance(total, float) else total
    _composite_fmax(e, names, parts)
    _composite_depth(e, glue, names, parts)
    unplaced = [p for p in names if parts[p]["fmax_mhz"] is None]
    if glue["fpga_status"] == "ok" and unplaced:
        e["fpga_status"] = "partial: not placed: " + ", ".join(
            f"{p} ({parts[p]['fpga_status']})" for p in unplaced)
    else:
        e["fpga_status"] = glue["fpga_status"]
    e["cached_steps"] = glue["cached_steps"]
    return e


# --------------------------------------------------------------------------------------
# All designs
# --------------------------------------------------------------------------------------

def tracker_storage_bits(cfg: T3Config) -> int:
    """Bits of the tracker table's state: entries x (valid + counter index + count); the
    backing counter SRAM is :func:`tracker_backing_bits`. The same formula as
    ``hw.tracker.TrackerTable.storage_bits`` (tests/test_area.py checks that they agree),
    computed from the configuration so that no component is built only to read a
    property."""
    return cfg.tracker_entries * (1 + cfg.tracker_counter_index_bits + cfg.count_bits)


def tracker_backing_bits(cfg: T3Config) -> int:
    """Bits of the tracker's backing counter SRAM: counters x count_bits
    (``hw.tracker.TrackerTable.backing_bits``)."""
    return cfg.tracker_counter_slots * cfg.count_bits


def tracker_storage(cfg: T3Config) -> dict[str, Any]:
    """The tracker table's storage (:func:`tracker_storage_bits`) next to the paper's
    ~19 KB for 256 entries."""
    bits = tracker_storage_bits(cfg)
    backing = tracker_backing_bits(cfg)
    return {"design": "t3_tracker", "entries": cfg.tracker_entries, "storage_bits": bits,
            "storage_kib": round(bits / 8192, 2), "backing_counter_bits": backing,
            "backing_counter_kib": round(backing / 8192, 2),
            "paper_entries": PAPER_TRACKER["entries"],
            "paper_storage_kb": PAPER_TRACKER["storage_kb"]}


def unit_context(designs: dict[str, dict]) -> dict[str, Any] | None:
    """The T3 unit (``UNIT_DESIGN``; else the sum of the measured blocks that are T3
    hardware, see :data:`NOTES`) against :data:`GPU_CONTEXT`."""
    if designs.get(UNIT_DESIGN, {}).get("status") == "ok":
        parts, basis = [UNIT_DESIGN], UNIT_DESIGN
    else:
        parts = [n for n, d in designs.items() if d["status"] == "ok"
                 and NOTES.get(n, ("",))[0] not in ("model", "inside", "skip")]
        basis = "sum of blocks: " + ", ".join(parts)
    if not parts:
        return None
    logic_tr = sum(designs[n]["transistors"] or 0 for n in parts)
    sram_bits = sum(designs[n]["sram_bits"] or 0 for n in parts
                    if NOTES.get(n, ("",))[0] != "dram")
    logic_um2 = sum(designs[n]["area_um2_est"] or 0 for n in parts)
    total_um2 = logic_um2 + liberty.sram_area_um2(sram_bits)
    transistors = logic_tr + sram_bits * liberty.SRAM_TRANSISTORS_PER_BIT
    gpu = GPU_CONTEXT
    return {
        "basis": basis,
        "transistors": transistors,
        "sram_bits": sram_bits,
        "area_mm2_est_45nm": round(total_um2 / 1e6, 4),
        "gpu": gpu,
        "fraction_of_gpu_transistors": transistors / gpu["transistors"],
        "fraction_of_gpu_transistors_one_per_memory_controller":
            transistors * gpu["memory_controllers"] / gpu["transistors"],
        "fraction_of_gpu_die_at_45nm": total_um2 / 1e6 / gpu["die_area_mm2"],
    }


def with_parts(names: Iterable[str]) -> list[str]:
    """``names`` with the parts of every composite among them added in front of it."""
    out: list[str] = []
    for n in names:
        for part in COMPOSITES.get(n, {}).values():
            if part not in out:
                out.append(part)
        if n not in out:
            out.append(n)
    return out


def collect(cfg: T3Config, names: Iterable[str] | None = None, *, fpga: bool = True,
            cache_root: Path = CACHE_ROOT, device: eda.Ecp5Device = eda.ECP5_85K,
            freq_mhz: float = 100, timeout_s: float = 600, jobs: int = 2,
            progress: Progress = print, verilog_dir: Path | None = None,
            fpga_max_cells: int | None = FPGA_MAX_CELLS) -> dict[str, Any]:
    """Measure the designs (default: every registered one, in registry order; the parts
    of a composite are added). ``jobs`` designs run at a time (the tools are single
    threaded); composites run after their parts."""
    from hw.designs import load_all
    t0 = time.monotonic()
    registry = load_all()
    names = with_parts(default_designs(registry) if names is None else names)
    total = len(names)
    started = iter(range(1, total + 1))
    lock = threading.Lock()

    def one(n: str) -> dict[str, Any]:
        with lock:
            progress(f"[{next(started)}/{total}] {n}")
        return measure_design(n, registry[n], cfg, fpga=fpga, cache_root=cache_root,
                              device=device, freq_mhz=freq_mhz, timeout_s=timeout_s,
                              progress=progress, verilog_dir=verilog_dir,
                              fpga_max_cells=fpga_max_cells)

    measured: dict[str, dict] = {}
    blocks = [n for n in names if n not in COMPOSITES]
    # the parts of composites are the big blocks: start them first
    blocks.sort(key=lambda n: not any(n in c.values() for c in COMPOSITES.values()))
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for batch in (blocks, [n for n in names if n in COMPOSITES]):
            measured.update(zip(batch, pool.map(one, batch)))
    designs = {n: compose(n, measured[n], measured) if n in COMPOSITES else measured[n]
               for n in names}
    return {
        "schema": SCHEMA_ID,
        "config": cfg.to_dict(),
        "technology": liberty.technology(),
        "fpga": {"device": device.name, "package": device.package, "freq_target_mhz": freq_mhz,
                 "tools": eda.tool_versions()},
        "designs": designs,
        "tracker_storage": tracker_storage(cfg),
        "context": unit_context(designs),
        "total_runtime_s": round(time.monotonic() - t0, 1),
    }


# --------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------

def _fmt(v: Any, nd: int = 0) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def to_markdown(data: dict[str, Any], *, config_label: str = "paper default") -> str:
    cfg, designs = data["config"], data["designs"]
    tech = data["technology"]
    at = tech["asic_timing"]
    out = [
        "## Area and timing per block",
        "",
        f"Configuration: {config_label} ({cfg['tracker_entries']} tracker entries, "
        f"{cfg['dtype']}, {cfg['line_bytes']} B lines, {cfg['regions']} regions, "
        f"{cfg['mem_depth_lines']} memory lines). Logic: Yosys `synth`; transistors: "
        f"`abc -g cmos2`; NAND2-eq = transistors / {tech['transistors_per_nand2']}; µm²: "
        f"ESTIMATE with an area-only Liberty ({tech['liberty_source']}); memories >= "
        f"{tech['sram_min_depth_words']} words are SRAM macros at "
        f"{tech['sram_bitcell_um2']} µm²/bit / {tech['sram_array_efficiency']} array "
        f"efficiency. FPGA: {data['fpga']['device']} ({data['fpga']['package']}), "
        f"nextpnr at {data['fpga']['freq_target_mhz']:g} MHz target, block I/O registered; "
        "Fmax kind: routed (nextpnr routed the design and timed it), estimated (nextpnr's "
        "estimate after placement, also printed `~`) or unknown (no Fmax: the reason is "
        "below; a composite with such a part is unknown too). Levels: levels of logic on "
        "the longest register-to-register path (Yosys `ltp -noff` on the generic gates; "
        f"SRAM macros end a path). ASIC MHz est.: ESTIMATE from the levels alone, "
        f"1e6 / ((levels x {at['fo4_per_level']:g} + {at['register_overhead_fo4']:g}) FO4 x "
        f"{at['fo4_ps']:g} ps), the FO4 delay of {at['node']}; no wire or fan-out delay "
        "(docs/area.md).",
        "",
        "| design | cells | FFs | memory bits (SRAM) | transistors | NAND2-eq | logic µm² est. "
        "| SRAM µm² est. | LUT4 | FF | DP16KD | Fmax MHz | Fmax kind | levels "
        "| ASIC MHz est. |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|",
    ]
    notes = []
    for n, d in designs.items():
        if d["status"] != "ok":
            out.append(f"| {n} | {d['status']} |" + " |" * 13)
            continue
        mem = _fmt(d["memory_bits"]) + (f" ({_fmt(d['sram_bits'])})" if d["sram_bits"] else "")
        fp = d["fpga_status"]
        fpga_cells = [_fmt(d["ecp5_lut4"]), _fmt(d["ecp5_ff"]), _fmt(d["ecp5_bram"])]
        fmax = "unknown" if d["fmax_mhz"] is None else _fmt(d["fmax_mhz"], 1)
        if d["fmax_kind"] == "estimated":
            fmax = f"~{fmax}"
        if d["fmax_note"]:
            notes.append(f"- `{n}`: Fmax {d['fmax_kind']}: {d['fmax_note']}.")
        if d["depth_status"] != "ok":
            notes.append(f"- `{n}`: levels of logic unknown: {d['depth_status']}.")
        if d["method"] == "bottom-up":
            notes.append(f"- `{n}` (bottom-up): glue logic with {', '.join(d['parts'])} as "
                         f"black boxes, plus their rows; Fmax = the slowest part's, unknown "
                         f"when a part has none; levels = the deepest piece's"
                         + (f"; FPGA {fp}" if fp != "ok" else "") + ".")
        out.append(f"| {n} | {_fmt(d['cells'])} | {_fmt(d['flip_flops'])} | {mem} | "
                   f"{_fmt(d['transistors'])} | {_fmt(d['nand2_eq'])} | "
                   f"{_fmt(d['area_um2_est'], 0)} | {_fmt(d['sram_area_um2_est'], 0)} | "
                   + " | ".join(fpga_cells) + f" | {fmax} | {d['fmax_kind']} | "
                   f"{_fmt(d['logic_depth'])} | {_fmt(d['asic_fmax_mhz_est'], 0)} |")
        if d["note"]:
            notes.append(f"- `{n}`: {d['note']}.")
    if notes:
        out += ["", *notes]
    ts = data.get("tracker_storage")
    if ts:
        tr = designs.get(ts["design"], {})
        ffs = f"; synthesised flip-flops of the whole tracker: {_fmt(tr.get('flip_flops'))}" \
            if tr.get("flip_flops") is not None else ""
        out += ["", "### Tracker storage", "",
                f"{ts['entries']} entries x {ts['storage_bits'] // ts['entries']} bits = "
                f"{_fmt(ts['storage_bits'])} bits = {ts['storage_kib']} KiB of table state"
                f"{ffs}. The paper: {ts['paper_entries']} entries, about "
                f"{ts['paper_storage_kb']} KB in total."]
    ctx = data.get("context")
    if ctx:
        g = ctx["gpu"]
        out += ["", "### In context", "",
                f"T3 unit ({ctx['basis']}): {_fmt(ctx['transistors'])} transistors (logic + "
                f"6T SRAM bits), {ctx['area_mm2_est_45nm']} mm² estimated at 45 nm. "
                f"{g['gpu']} ({g['source']}): {g['transistors'] / 1e9:.1f} billion transistors "
                f"on {g['die_area_mm2']:g} mm² in {g['process']}. One T3 unit is "
                f"{ctx['fraction_of_gpu_transistors']:.2e} of the GPU's transistors; one per "
                f"memory controller ({g['memory_controllers']}) is "
                f"{ctx['fraction_of_gpu_transistors_one_per_memory_controller']:.2e}. Even at "
                f"45 nm one unit is {ctx['fraction_of_gpu_die_at_45nm']:.2%} of the 7 nm die."]
    out += ["", "### Flow run times (s)", "",
            "| design | " + " | ".join(STEPS) + " |",
            "|---|" + "--:|" * len(STEPS)]
    for n, d in designs.items():
        rt = d["runtime_s"] or {}
        cells = []
        for st in STEPS:
            v = rt.get(st)
            cells.append("–" if v is None else f"{v:.1f}" + (" (c)" if st in d["cached_steps"] else ""))
        out.append(f"| {n} | " + " | ".join(cells) + " |")
    out += ["", "(c): reused from build/area/ (the time shown is the run that produced it). "
            f"Collection took {data['total_runtime_s']} s.", ""]
    return "\n".join(out)
