"""A ring scenario end to end, from the Python side: build the workload (sim_models),
compute the golden result, build the ring RTL, run the cocotb ring testbench
(verif/tb_ring.py) under Icarus or Verilator, and collect its results.

Used by the pytest entry points (verif/test_ring.py), by `t3 sim` and by the benchmarks.
The testbench and this module exchange files in ``workdir``: ``trace/`` (the traces and
programming, docs/trace_format.md), ``golden.npz`` (every device's expected memory),
``expect.json`` (expected request counts) and ``result_<mode>.json`` /
``readback_<mode>.npz`` written by the testbench.

Background GEMM reads (issue #5, ``gemm_read_rate`` > 0): every device's read generator
(hw/env/readgen.py, in the ring top) issues READs of its output buffer at ``gemm_read_rate``
READs per cycle (as ``num/den`` with den <= 511, the ring's credit width) for as long as
the device's GEMM stores take: ``count = ceil(rate x max(last issue time + 1, producer
requests))`` READs per device (:func:`gemm_read_counts`; finite also at rate 1, unlike
``requests x rate / (1 - rate)``). READs change no memory: the golden model is the same.

Memory and closed-loop GEMM (issue #15): ``memory="dram"`` builds the units with the DRAM
controller (hw/dram.py) and (unless background reads are asked for) makes the
closed-loop GEMM (hw/env/gemm_producer.py) the producer: each device's stores are released wave by wave (the waves of
sim_models.trace.producer_trace), each wave after ``k_steps`` compute steps of
``ceil(wg_cycles / k_steps)`` cycles, each step waiting for its operand READs. A wave of
``c`` compute cycles and ``l`` store lines issues ``ceil(gemm_intensity x (c + l))`` READs
(:func:`closed_loop_waves`): ``gemm_intensity`` is the GEMM's DRAM read lines per cycle
of its own run time at full speed, as a fraction of the memory's peak (1 line/cycle).
The READs walk the whole memory, at most ``gemm_outstanding`` in flight per device.
With MCA, the threshold is measured over the first stage (:meth:`RingScenario.mca_window_log2`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
from fractions import Fraction
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from contract.gemm import split_chunks
from contract.sizing import fire_queue_needed, tracker_entries_min, tracker_entries_needed
from contract.spec import DEFAULT_CONFIG, FORMATS, MCA_WINDOW_LOG2_MAX, MEMORIES, ConfigError, \
    T3Config
from sim_models.golden import run_ring
from sim_models.perf.rtl_model import RtlScenario
from sim_models.trace import device_waves, save_traces, wave_lines
from sim_models.workload import make_workload

__all__ = ["RingScenario", "prepare", "run_scenario", "MODES", "available_modes",
           "ScenarioFailure", "GoldenMismatch", "check_golden_against_fold", "output_to",
           "load_results", "gemm_read_counts"]

MODES = ("t3", "baseline")


def ring_regions(devices: int) -> int:
    """Regions of a ring build: one per chunk (``devices``), rounded up to a power of two,
    at least 4."""
    return max(4, 1 << (devices - 1).bit_length())


@dataclass(frozen=True)
class RingScenario(RtlScenario):
    """One ring run: the fields of :class:`sim_models.perf.rtl_model.RtlScenario` (the
    GEMM's shape in elements; link latency in cycles; link bandwidth in lines per cycle,
    the memory moving 1 line per cycle), its :meth:`gemm` and, fitted the same way, its
    :meth:`config`, plus what only the testbench needs: ``seed``: the GEMM inputs' and
    every random choice's seed; ``jitter``: max random extra cycles added to producer
    issue times; ``backpressure``: probability the testbench stalls a stream it sinks
    (host read responses); ``gemm_read_rate``: background GEMM operand READs per cycle
    per device in the compute stream (0 = off, else in [1/511, 1]; see the module doc);
    ``stall``: probability per cycle, in [0, 1), that each link's delivery into the next
    unit and each unit's memory request handshake is held closed, during the whole run
    (seeded random stalls in the ring top, hw/env/ring.py; a run-time input, so it selects
    no build); fixed hardware sizes (below)."""
    seed: int = 0
    jitter: int = 0
    backpressure: float = 0.0
    modes: tuple[str, ...] = MODES
    #: hardware sizing (None: the smallest that fits); fixing them lets scenarios of
    #: different sizes and link settings share one build (see hw_key)
    mem_depth_lines: int | None = None
    link_fifo: int | None = None
    dma_queue_depth: int | None = None
    gemm_read_rate: float = 0.0
    memory: str = "ideal"
    gemm_intensity: float = 0.0
    k_steps: int = 4
    gemm_outstanding: int = 32
    stall: float = 0.0

    def __post_init__(self) -> None:
        from hw.env.ring import GEMM_OUTSTANDING
        if self.memory not in MEMORIES:
            raise ConfigError(f"memory={self.memory!r}: must be one of {', '.join(MEMORIES)}")
        x = self.gemm_intensity
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0.0 <= x <= 1.0:
            raise ConfigError(f"gemm_intensity={x!r}: must be a number in [0, 1] (DRAM read "
                              "lines per cycle of the GEMM, fraction of peak)")
        if x and not self.closed_loop:
            raise ConfigError(f"gemm_intensity={x!r}: the closed-loop GEMM runs with "
                              "memory='dram' and no background reads (gemm_read_rate=0) only")
        if isinstance(self.k_steps, bool) or not isinstance(self.k_steps, int) \
                or not 1 <= self.k_steps <= 0xFFFF:
            raise ConfigError(f"k_steps={self.k_steps!r}: must be an integer in [1, 65535]")
        if isinstance(self.gemm_outstanding, bool) or not isinstance(self.gemm_outstanding, int) \
                or not 1 <= self.gemm_outstanding <= GEMM_OUTSTANDING:
            raise ConfigError(f"gemm_outstanding={self.gemm_outstanding!r}: must be an integer "
                              f"in [1, {GEMM_OUTSTANDING}] (READs in flight per device)")
        r = self.gemm_read_rate
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0.0 <= r <= 1.0:
            raise ConfigError(f"gemm_read_rate={r!r}: must be a number in [0, 1] (READs per cycle)")
        if 0 < r < 1 / gemm_read_max_den():
            raise ConfigError(f"gemm_read_rate={r!r}: must be 0 or >= 1/{gemm_read_max_den()} "
                              f"(the read generator's rate resolution)")
        for m in self.modes:
            if m not in MODES:
                raise ConfigError(f"modes: {m!r}: must be one of {', '.join(MODES)}")
        st = self.stall
        if isinstance(st, bool) or not isinstance(st, (int, float)) or not 0.0 <= st < 1.0:
            raise ConfigError(f"stall={st!r}: must be a number in [0, 1) (probability per "
                              "cycle that a link or memory handshake is held)")
        if not 0.0 <= self.backpressure < 1.0:
            raise ConfigError(f"backpressure={self.backpressure}: must be in [0, 1)")
        if not isinstance(self.jitter, int) or self.jitter < 0:
            raise ConfigError(f"jitter={self.jitter!r}: must be a non-negative integer")

    def gemm_read_ratio(self) -> tuple[int, int]:
        """``gemm_read_rate`` as the generator's (num, den), den <= 511; (0, 1) when off."""
        f = Fraction(self.gemm_read_rate).limit_denominator(gemm_read_max_den())
        return f.numerator, f.denominator

    @property
    def closed_loop(self) -> bool:
        """The closed-loop GEMM is the producer: with the DRAM memory, unless background
        READs are asked for (``gemm_read_rate`` > 0: the open-loop trace and the read
        generator, as with the ideal memory)."""
        return self.memory == "dram" and not self.gemm_read_rate

    def step_cycles(self) -> int:
        """Compute cycles of one of a wave's ``k_steps`` steps."""
        return -(-self.wg_cycles // self.k_steps)

    def mca_window_log2(self) -> int:
        """The MCA measurement window (ARB_AUTO.window_log2): with MCA and the closed-loop
        GEMM, the largest power of two within device 0's first stage at full speed (its
        waves' compute + store cycles); else 0 (the fixed threshold)."""
        if self.policy != "mca" or not self.closed_loop:
            return 0
        gemm = self.gemm()
        geo = gemm.geometry(self.line_bytes // FORMATS[self.dtype].bytes)
        chunks = split_chunks(gemm, geo)
        stages = [ch.index for ch, _ in device_waves(gemm, geo, chunks, 0)]
        in_first = sum(1 for c in stages if c == stages[0])
        first = sum(self.k_steps * self.step_cycles() + n
                    for n in wave_lines(gemm, geo, chunks, 0)[:in_first])
        return max(1, min(MCA_WINDOW_LOG2_MAX, first.bit_length() - 1))

    def base_config(self) -> T3Config:
        """The unit as the ring is built: RtlScenario's, with :func:`ring_regions` regions,
        the default clock (the RTL has none: the model's 1 GHz is the model's unit), the
        scenario's memory and its MCA window."""
        return super().base_config().replace(regions=ring_regions(self.devices),
                                             clock_ghz=DEFAULT_CONFIG.clock_ghz,
                                             memory=self.memory,
                                             mca_window_log2=self.mca_window_log2())

    def config(self) -> T3Config:
        """RtlScenario's (the base fitted to the GEMM), with the fixed ``mem_depth_lines``
        and ``dma_queue_depth`` when given (ConfigError if smaller than the GEMM needs)."""
        cfg = super().config()
        if self.mem_depth_lines is not None:
            if self.mem_depth_lines < cfg.mem_depth_lines:
                raise ConfigError(f"mem_depth_lines={self.mem_depth_lines}: the output needs "
                                  f"{cfg.mem_depth_lines} lines")
            cfg = cfg.replace(mem_depth_lines=self.mem_depth_lines)
        if self.dma_queue_depth is not None:
            gemm = self.gemm()
            need = fire_queue_needed(gemm, gemm.geometry(cfg.lanes))
            if self.dma_queue_depth < need:
                raise ConfigError(f"dma_queue_depth={self.dma_queue_depth}: the fused ring of "
                                  f"this GEMM needs >= {need} (its WF tiles / devices; "
                                  "docs/programming.md \"Sizing\")")
            cfg = cfg.replace(dma_queue_depth=self.dma_queue_depth)
        return cfg

    def tracker_sizing(self) -> dict[str, int]:
        """``{"min": ..., "recommended": ...}`` tracker entries for this GEMM's fused ring
        (contract.sizing.tracker_entries_min / tracker_entries_needed)."""
        gemm, cfg = self.gemm(), self.config()
        chunks = split_chunks(gemm, gemm.geometry(cfg.lanes))
        return {"min": tracker_entries_min(cfg, gemm, chunks),
                "recommended": tracker_entries_needed(cfg, gemm, chunks)}

    def hw_key(self) -> dict[str, Any]:
        """The parameters that select a ring build (everything else is run time)."""
        c = self.config()
        return {"top": "t3_ring", **{k: v for k, v in c.to_dict().items()
                                     if k not in ("link_latency_cycles", "link_lines_per_cycle",
                                                  "arbiter_policy", "mca_window_log2",
                                                  "clock_ghz")},
                "link_depth": link_depth(c, self.link_fifo)}

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["wg_tile"], d["wf_tile"], d["modes"] = list(self.wg_tile), list(self.wf_tile), list(self.modes)
        return d


def link_depth(cfg: T3Config, fixed: int | None = None) -> int:
    """Link FIFO depth: ``fixed`` if given (a smaller FIFO than bandwidth x latency only
    backpressures), else enough to sustain the link's bandwidth over its latency."""
    from hw.env.link import LinkModel
    if fixed is not None:
        return fixed
    return max(16, LinkModel.depth_for(cfg.link_latency_cycles, cfg.link_lines_per_cycle))


def gemm_read_max_den() -> int:
    """The largest ``den`` of the ring's read generators (their credit width)."""
    from hw.env.ring import CREDIT_BITS
    return (1 << CREDIT_BITS) - 1


def gemm_read_counts(rate: float, traces) -> list[int]:
    """Background READs per device: ``rate`` per cycle over the time the device's GEMM
    stores take (the later of its last issue time + 1 and one request per cycle)."""
    if rate == 0:
        return [0] * len(traces)
    return [math.ceil(rate * max(int(t.time[-1]) + 1 if len(t) else 0, len(t))) for t in traces]


def closed_loop_waves(scn: RingScenario, wl) -> list[list[tuple[int, int]]]:
    """Per device, its waves as ``(store lines, READs per step)`` (module doc)."""
    if not scn.closed_loop:
        return [[] for _ in range(scn.devices)]
    geo = wl.gemm.geometry(wl.cfg.lanes)
    compute = scn.k_steps * scn.step_cycles()
    out = []
    for d in range(scn.devices):
        waves = []
        for lines in wave_lines(wl.gemm, geo, wl.chunks, d):
            reads = math.ceil(scn.gemm_intensity * (compute + lines))
            waves.append((lines, -(-reads // scn.k_steps)))
        out.append(waves)
    return out


def check_golden_against_fold(wl, golden) -> None:
    """Check the golden ring model's memories (``golden``: a sim_models.golden.RingResult of
    the workload ``wl``) against the independent numpy fold (sim_models.fold): with the
    fused all-gather every device's output window (lines ``[out_base, limit)``, pad lanes
    included) equals the fold's all-reduced output, without it each chunk's owner holds the
    fold's reduced chunk; every line outside the output window is zero. This is the
    expectation of both modes (the baseline mode is compared with the same memories). One
    vectorised pass per chunk and device. Raises :class:`GoldenMismatch` naming the first
    difference (device, line, lane, got, want) and the number of differing lanes."""
    from sim_models.fold import fold_allreduce
    g, geo = wl.gemm, wl.geometry
    ref = geo.to_lines(fold_allreduce(g.dtype, wl.partials, [
        (c.row_start, c.row_stop, c.col_start, c.col_stop) for c in wl.chunks]))
    lo, hi = g.out_base, geo.limit
    for d, mem in enumerate(golden.memories):
        want = np.zeros_like(mem)
        held = np.zeros(mem.shape[0], bool)        # the lines whose value is checked
        held[:lo] = held[hi:] = True
        for c in wl.chunks:
            if wl.fuse_allgather or c.owner == d:
                want[c.base:c.limit] = ref[c.base - lo:c.limit - lo]
                held[c.base:c.limit] = True
        bad = np.argwhere((mem != want) & held[:, None])
        if len(bad):
            line, lane = (int(x) for x in bad[0])
            where = "outside the output window" if not lo <= line < hi else "in the output"
            raise GoldenMismatch(
                f"golden model vs numpy fold ({'fused' if wl.fuse_allgather else 'no'} "
                f"all-gather): device {d}: {len(bad)} lanes differ; first at line {line} lane "
                f"{lane} ({where}): golden {int(mem[line, lane]):#x}, fold "
                f"{int(want[line, lane]):#x}")


def prepare(scn: RingScenario, workdir: str | Path) -> dict[str, Any]:
    """Write traces, programming, golden memories and expected counts into ``workdir``;
    first check the golden model against the independent fold
    (:func:`check_golden_against_fold`: GoldenMismatch, nothing written but the traces)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = scn.config()
    wl = make_workload(cfg, scn.gemm(), fuse_allgather=scn.fuse_allgather)
    save_traces(workdir / "trace", wl)
    golden = run_ring(cfg, wl.programs, wl.traces, seed=scn.seed, gemm=wl.gemm)
    check_golden_against_fold(wl, golden)
    np.savez(workdir / "golden.npz", **{f"mem{d}": m for d, m in enumerate(golden.memories)},
             **{f"partial{d}": p for d, p in enumerate(wl.partials)})
    lines = [(c.base, c.limit) for c in wl.chunks]
    expect = {
        "scenario": scn.to_dict(),
        "cfg": cfg.to_dict(),
        "out_lines": [min(b for b, _ in lines), max(lim for _, lim in lines)],
        "chunks": [{"row_start": c.row_start, "row_stop": c.row_stop, "col_start": c.col_start,
                    "col_stop": c.col_stop, "owner": c.owner, "base": c.base, "limit": c.limit,
                    "order": list(o)} for c, o in zip(wl.chunks, golden.order)],
        "t3": [{
            "mem_reqs": int(c["producer_local"] + c["link_in_update"] + c["link_in_store"]
                            + c["dma_reads"]),
            "fires": int(c["completions"]), "dma_tiles": int(c["fires"]),
            "dma_reads": int(c["dma_reads"]),
            "link_in": int(c["link_in_update"] + c["link_in_store"]),
            "producer": int(c["producer_local"] + c["producer_remote"]),
        } for c in golden.counts],
        "link_depth": link_depth(cfg, scn.link_fifo),
        "gemm_reads": dict(zip(("num", "den"), scn.gemm_read_ratio()),
                           counts=gemm_read_counts(scn.gemm_read_rate, wl.traces)),
    }
    waves = closed_loop_waves(scn, wl)
    expect["closed_loop"] = {
        "enable": scn.closed_loop, "k_steps": scn.k_steps, "step_cycles": scn.step_cycles(),
        "outstanding": scn.gemm_outstanding, "waves": waves,
        "reads": [scn.k_steps * sum(r for _, r in w) for w in waves],
    }
    if scn.closed_loop:
        expect["gemm_reads"]["counts"] = expect["closed_loop"]["reads"]
    (workdir / "expect.json").write_text(json.dumps(expect, indent=1))
    return expect


class ScenarioFailure(AssertionError):
    """The ring testbench failed; the message is its first failure (e.g. the mismatch)."""


class GoldenMismatch(ScenarioFailure):
    """The golden model's expected memories disagree with the independent numpy fold
    (:func:`check_golden_against_fold`): a model bug, found in :func:`prepare` before
    anything is built or run."""


def available_modes() -> tuple[str, ...]:
    """The modes verif/tb_ring.py implements (a ``ring_<mode>`` cocotb test), in MODES
    order. Read from the source, so it needs no simulator."""
    import ast
    tree = ast.parse(Path(__file__).with_name("tb_ring.py").read_text())
    names = {n.name for n in tree.body if isinstance(n, (ast.AsyncFunctionDef, ast.FunctionDef))}
    return tuple(m for m in MODES if f"ring_{m}" in names)


def _test_results(results_xml: Path) -> tuple[dict[str, float], list[str]]:
    """(wall seconds per cocotb test, failure messages) from a cocotb results file."""
    import xml.etree.ElementTree as ET
    walls, failures = {}, []
    for tc in ET.parse(results_xml).getroot().iter("testcase"):
        walls[tc.get("name", "?")] = float(tc.get("time", "nan"))
        for f in list(tc.iter("failure")) + list(tc.iter("error")):
            msg = (f.get("message") or f.text or "failed").split("\n")[0]
            failures.append(f"{tc.get('name')}: {msg}")
    return walls, failures


def _newest_results(sim: str, build_key: str, since: float) -> Path | None:
    """The results file a run of ``build_key`` wrote after ``since`` (perf_counter)."""
    import time
    from verif.runner import BUILD
    t0 = time.time() - (time.perf_counter() - since)
    found = [p for p in (BUILD / "sim" / sim).glob(f"{build_key}*/run-*/results.xml")
             if p.stat().st_mtime >= t0 - 1]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


@contextlib.contextmanager
def output_to(log: str | Path | None):
    """Send this process's stdout/stderr file descriptors (and so the simulator's build
    and run output) to ``log`` (appended) while the block runs; no-op for None."""
    if log is None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(log, "ab") as f:
            os.dup2(f.fileno(), 1)
            os.dup2(f.fileno(), 2)
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def run_scenario(scn: RingScenario, *, sim: str, workdir: str | Path, waves: bool = False,
                 prepared: bool = False, timings: dict[str, Any] | None = None,
                 log: str | Path | None = None) -> dict[str, Any]:
    """Prepare (unless done), build and run the ring testbench; return per-mode results.
    Raises :class:`ScenarioFailure` (an AssertionError) when the RTL disagrees with the
    golden model. ``timings``, when given, receives wall seconds: ``prepare_s``,
    ``verilog_s`` (generation, cached), ``cocotb_s`` (build + simulator runs) and
    ``tests`` (per cocotb test, from its results file). ``log``: a file that receives
    the simulator's output instead of the terminal (see :func:`output_to`)."""
    import re
    import time
    from hw.env.ring import T3Ring
    from verif.runner import params_key, run_cocotb, verilog_for
    workdir = Path(workdir).resolve()
    tm = timings if timings is not None else {}
    t0 = time.perf_counter()
    if not prepared:
        prepare(scn, workdir)
    t1 = time.perf_counter()
    cfg = scn.config()
    key = scn.hw_key()
    v = verilog_for("t3_ring", key, lambda: T3Ring(cfg=cfg, link_depth=key["link_depth"]))
    t2 = time.perf_counter()
    tests = [f"ring_{m}" for m in scn.modes]
    for m in scn.modes:
        (workdir / f"result_{m}.json").unlink(missing_ok=True)
        (workdir / f"readback_{m}.npz").unlink(missing_ok=True)
    try:
        # one build per hardware key, shared by every workdir (the run dirs stay apart)
        with output_to(log):
            results = run_cocotb(sim=sim, top="t3_ring", verilog=v, test_module="verif.tb_ring",
                                 params={"workdir": str(workdir), "hw": key}, testcase=tests,
                                 seed=scn.seed, waves=waves, build_key=params_key("t3_ring", key))
    except (AssertionError, SystemExit) as e:
        # run_cocotb names the results file; under pytest cocotb's runner exits instead
        found = re.search(r"results in (\S+results\.xml)", str(e))
        xml = Path(found.group(1)) if found else _newest_results(sim, params_key("t3_ring", key), t2)
        failures = _test_results(xml)[1] if xml and xml.exists() else []
        raise ScenarioFailure("; ".join(failures) or f"{sim}: the ring testbench failed ({e!r})") \
            from None
    finally:
        tm.update(prepare_s=t1 - t0, verilog_s=t2 - t1, cocotb_s=time.perf_counter() - t2)
    tm["tests"] = _test_results(results)[0]
    return load_results(workdir, scn.modes)


def load_results(workdir: str | Path, modes) -> dict[str, Any]:
    """``{mode: result}`` for the modes of ``modes`` whose ``result_<mode>.json`` exists in
    ``workdir``: after a failed run, the modes that passed (a mode writes its result only
    when it passed; run_scenario deletes stale ones first)."""
    workdir = Path(workdir)
    return {m: json.loads((workdir / f"result_{m}.json").read_text()) for m in modes
            if (workdir / f"result_{m}.json").exists()}
