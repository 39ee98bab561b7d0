"""DramController (hw/dram.py) under the Amaranth simulator, in lockstep with its cycle
model (sim_models/dram.py) and with the in-order memory model.

Every cycle the testbench steps :class:`sim_models.dram.DramControllerModel` with the same
inputs and compares: input accepted, the column command (the issued request's position
in the age order), the row command (ACT/PRE, bank) and the READ response handshake. After
each trace it compares per request the accept, column-issue and completion cycles with
:func:`sim_models.dram.simulate`, the event counters with the model's stats, the READ
data and (by a final read-back) the memory contents, bit-exact, with
:class:`sim_models.nmc_model.ComputeMemoryModel` run in acceptance order.

Several traces share one simulation (the controller is reset between them, the storage
keeps its contents and so does the golden memory): building a simulation costs more than
running a trace. T3_SEED=<n> repeats a run; the seed is printed.
"""

from __future__ import annotations

import gc
import os
import random
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pytest
from amaranth.hdl import ResetInserter, Signal
from amaranth.sim import Simulator

from contract.dram import DramTiming
from contract.dram_bounds import starvation_bound
from contract.spec import ConfigError, Op, T3Config, memory_request_fields
from hw.dram import DramController
from sim_models.dram import (DramControllerModel, DramRequest, peak_random_row_rate,
                             random_requests, rotating_random_rows, simulate)
from sim_models.nmc_model import ComputeMemoryModel, random_trace
from verif.streams import Struct, pack_line, unpack_line

#: the unit's default timing (HBM2) on a small memory: 4096 lines of 4 fp16 lanes
CFG = T3Config(dtype="fp16", line_bytes=8, mem_depth_lines=4096, mem_queue_depth=16)
HBM2 = DramTiming()
#: small timing: every constraint of a few cycles, READ data due exactly when
#: ComputeMemory returns it (t_cl + 1 == fp_adder_stages + 2: the return bypass)
FAST = DramTiming(bank_groups=2, banks_per_group=2, row_lines=4, mapping="bg-bank-col-row",
                  t_rcd=3, t_rcd_wr=2, t_cl=3, t_cwl=2, t_rp=3, t_ras=5, t_ccd_s=1, t_ccd_l=2,
                  t_wr=2, t_rtp=2, t_wtr_s=1, t_wtr_l=2, t_rtw=3, t_rrd_s=1, t_rrd_l=2, t_faw=6,
                  t_rmw=2, age_cap=8)

#: (name, cfg, timing, rows used by the random traces)
SETUPS = [
    ("hbm2_q16", CFG, HBM2, 8),
    ("fast_q4", T3Config(dtype="fp16", line_bytes=8, mem_depth_lines=256, mem_queue_depth=4,
                         mca_queue_threshold=4), FAST, 8),
    ("hbm2_q8_cap12", T3Config(dtype="fp16", line_bytes=8, mem_depth_lines=4096,
                               mem_queue_depth=8),
     DramTiming(mapping="col-bg-bank-row", age_cap=12), 8),
]
TRACES_PER_SETUP = 7


def new_seed() -> int:
    seed = int(os.environ.get("T3_SEED") or random.randrange(1 << 30))
    print(f"seed={seed} (T3_SEED={seed} reproduces)")
    return seed


#: situations the random traces must reach (counted over all traces of a setup)
COVERAGE = ("urgent", "forced_pre", "slot_full", "hit_behind_miss", "same_line",
            "spared_by_urgent")


class LockstepModel(DramControllerModel):
    """The model, remembering each cycle's column command position and row command, and
    counting the situations of :data:`COVERAGE`."""

    def __init__(self, *args, coverage: dict, **kw):
        super().__init__(*args, **kw)
        self.coverage = coverage

    def step(self, c, offered, index, resp_ready):
        self.col_position = self.row_cmd = None
        w = self.waiting
        if w and c - w[0].accept >= self.t.age_cap:
            self.coverage["urgent"] += 1
        if any(e.op == Op.READ and e.seq - self.head >= self.slots for e in w):
            self.coverage["slot_full"] += 1
        return super().step(c, offered, index, resp_ready)

    def _issue_column(self, e, c):
        self.col_position = self.waiting.index(e)
        u = self.waiting[0]
        if self.col_position and c - u.accept >= self.t.age_cap and self._hits(u):
            self.coverage["spared_by_urgent"] += 1   # issued while an urgent hit waits
        older = self.waiting[:self.col_position]
        if any(o.where.bank == e.where.bank and o.where.row != e.where.row for o in older):
            self.coverage["hit_behind_miss"] += 1
        if any(o.where == e.where for o in self.waiting[self.col_position + 1:]):
            self.coverage["same_line"] += 1
        super()._issue_column(e, c)

    def _issue_row(self, kind, e, c):
        self.row_cmd = (kind == "act", e.where.bank)
        if kind == "pre" and any(self._hits(o) for o in self.waiting
                                 if o.where.bank == e.where.bank):
            self.coverage["forced_pre"] += 1
        super()._issue_row(kind, e, c)


@dataclass
class Trace:
    """One trace: requests (the model's view) with their masks and data, and the
    response sink's ready per cycle (True beyond the list)."""
    reqs: list[DramRequest]
    masks: list[int]
    datas: list[np.ndarray]
    ready: list[bool] = field(default_factory=list)
    # filled by the run
    accept: list = field(default_factory=list)
    issue: list = field(default_factory=list)
    done: list = field(default_factory=list)
    read_data: list = field(default_factory=list)
    counters: dict = field(default_factory=dict)
    cycles: int = 0

    def resp_ready(self, c: int) -> bool:
        return self.ready[c] if c < len(self.ready) else True

    def golden_requests(self):
        return [(int(r.op), r.addr, m, d) for r, m, d in zip(self.reqs, self.masks, self.datas)]


def make_trace(cfg: T3Config, reqs: list[DramRequest], rng: random.Random, *,
               stall: float = 0.0, horizon: int = 0) -> Trace:
    """Masks and data (random small fp16 values, some raw patterns) for ``reqs``; the sink
    refuses responses with probability ``stall`` over ``horizon`` cycles."""
    data = random_trace(cfg, rng, len(reqs))
    full = (1 << cfg.lanes) - 1
    masks = [0 if r.op == Op.READ else rng.choice([full, full, rng.randrange(1 << cfg.lanes)])
             for r in reqs]
    ready = [rng.random() >= stall for _ in range(horizon)]
    return Trace(reqs, masks, [d[3] for d in data], ready)


def readback(cfg: T3Config, addrs) -> Trace:
    zero = np.zeros(cfg.lanes, dtype=cfg.fmt.uint_dtype)
    addrs = sorted(set(addrs))
    return Trace([DramRequest(Op.READ, a) for a in addrs], [0] * len(addrs), [zero] * len(addrs))


class Mismatch(AssertionError):
    pass


def run_traces(cfg: T3Config, timing: DramTiming, traces: list[Trace], *,
               max_cycles: int = 100_000, coverage: dict | None = None) -> DramController:
    """Run ``traces`` one after another through one DramController (reset in between),
    each in lockstep with a fresh model; raise :class:`Mismatch` at the first cycle that
    differs. Fills each trace's accept/issue/done cycles, READ data and counters."""
    dut = DramController(cfg=cfg, timing=timing)
    rst = Signal()
    sim = Simulator(ResetInserter(rst)(dut))
    sim.add_clock(1e-6)
    codec = Struct(memory_request_fields(cfg))
    eb, lanes = cfg.elem_bits, cfg.lanes
    failure: list[BaseException] = []
    coverage = {k: 0 for k in COVERAGE} if coverage is None else coverage

    async def bench(ctx):
        try:
            for n, tr in enumerate(traces):
                ctx.set(rst, 1)
                await ctx.tick()
                ctx.set(rst, 0)
                await _run_one(ctx, dut, timing, cfg, tr, codec, eb, lanes, max_cycles, n,
                               coverage)
                while ctx.get(dut.busy):            # let ComputeMemory finish its writes
                    await ctx.tick()
        except BaseException as e:                   # reported after the simulation
            failure.append(e)

    sim.add_testbench(bench)
    sim.run()
    if failure:
        raise failure[0]
    return dut


async def _run_one(ctx, dut, timing, cfg, tr: Trace, codec, eb, lanes, max_cycles, n,
                   coverage):
    model = LockstepModel(timing, queue_depth=cfg.mem_queue_depth, coverage=coverage)
    words = [codec.pack(op=int(r.op), addr=r.addr, mask=m, data=pack_line(d, eb))
             for r, m, d in zip(tr.reqs, tr.masks, tr.datas)]
    total = len(tr.reqs)
    tr.accept, tr.issue, tr.done = [None] * total, [None] * total, [None] * total
    waiting: list[int] = []                      # request indices in age order (RTL view)
    reads: deque[int] = deque()                  # READs in acceptance order
    nxt = finished = c = 0
    while finished < total:
        if c >= max_cycles:
            raise Mismatch(f"trace {n}: {total - finished} requests unfinished after {c} cycles")
        offered = nxt < total and tr.reqs[nxt].offer <= c
        ctx.set(dut.req.valid, offered)
        if offered:
            ctx.set(dut.req.payload.as_value(), words[nxt])
        rr = tr.resp_ready(c)
        ctx.set(dut.resp.ready, rr)
        rtl = {
            "accept": bool(offered and ctx.get(dut.req.ready)),
            "col": (ctx.get(dut.issue.position), int(ctx.get(dut.issue.op)))
            if ctx.get(dut.issue.valid) else None,
            "row": (bool(ctx.get(dut.row_cmd.act)), ctx.get(dut.row_cmd.bank))
            if ctx.get(dut.row_cmd.valid) else None,
            "resp": bool(ctx.get(dut.resp.valid) and rr),
            "occupancy": ctx.get(dut.occupancy),
        }
        occupancy = len(model.waiting)
        acc, col, ans = model.step(c, tr.reqs[nxt] if offered else None, nxt, rr)
        want = {"accept": acc,
                "col": (model.col_position, int(col.op)) if col is not None else None,
                "row": model.row_cmd, "resp": ans is not None, "occupancy": occupancy}
        if rtl != want:
            raise Mismatch(f"trace {n}, cycle {c}: RTL {rtl} != model {want}")
        if rtl["resp"]:
            i = reads.popleft()
            tr.done[i] = c
            tr.read_data.append(unpack_line(ctx.get(dut.resp.payload.data), eb, lanes))
            finished += 1
        if rtl["col"] is not None:
            i = waiting.pop(rtl["col"][0])
            tr.issue[i] = c
            if tr.reqs[i].op != Op.READ:
                tr.done[i] = c
                finished += 1
        if acc:
            tr.accept[nxt] = c
            waiting.append(nxt)
            if tr.reqs[nxt].op == Op.READ:
                reads.append(nxt)
            nxt += 1
        await ctx.tick()
        c += 1
    ctx.set(dut.req.valid, 0)
    tr.cycles = c
    tr.counters = {name: ctx.get(getattr(dut, name)) for name in DramController.COUNTERS}
    tr.counters["error"] = ctx.get(dut.error)
    tr.counters["mem_error"] = ctx.get(dut.mem_error)


def check_trace(cfg, timing, tr: Trace, gold: ComputeMemoryModel, what: str) -> None:
    """Per request against simulate(); counters against its stats; data against gold."""
    results, stats = simulate(timing, tr.reqs, queue_depth=cfg.mem_queue_depth,
                              resp_ready=tr.resp_ready)
    got = list(zip(tr.accept, tr.issue, tr.done))
    want = [(r.accept, r.issue, r.done) for r in results]
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"{what}: request {i} {tr.reqs[i]}: RTL (accept, issue, done) {g} " \
                       f"!= model {w}"
    assert tr.cycles == stats.cycles
    for name in DramController.COUNTERS:
        assert tr.counters[name] == getattr(stats, name), f"{what}: counter {name}"
    assert tr.counters["error"] == 0, f"{what}: ComputeMemory refused an issued request"
    assert tr.counters["mem_error"] == 0
    expect = gold.run(tr.golden_requests())
    assert len(expect) == len(tr.read_data)
    for k, (g, w) in enumerate(zip(tr.read_data, expect)):
        assert np.array_equal(g, w), f"{what}: READ #{k}: {g} != {w}"


# ---- the tests -----------------------------------------------------------------------

@pytest.mark.parametrize("name, cfg, timing, rows", SETUPS, ids=[s[0] for s in SETUPS])
def test_random_traces_are_cycle_exact_and_bit_exact(name, cfg, timing, rows):
    """TRACES_PER_SETUP random traces per setup (21 in all): READ/STORE/UPDATE mixes with
    row hits, misses and same-line reuse, random offer gaps, random response
    backpressure; then a read-back of every line written."""
    seed = new_seed()
    rng = random.Random(seed)
    traces = []
    for k in range(TRACES_PER_SETUP):
        n = rng.randint(60, 120)
        if k == 0:      # READs only, the sink stalled at first: the return buffer fills
            reqs = random_requests(timing, rng, n, rows=rows, ops=(Op.READ,), gap_prob=0.0)
        else:
            reqs = random_requests(timing, rng, n, rows=rows,
                                   gap_prob=rng.choice([0.0, 0.3, 0.6]))
        reqs = [r for r in reqs if r.addr < cfg.mem_depth_lines]
        tr = make_trace(cfg, reqs, rng, stall=rng.choice([0.0, 0.3, 0.7]), horizon=20 * n)
        if k == 0:
            tr.ready[:150] = [False] * 150
        traces.append(tr)
    written = {r.addr for tr in traces for r in tr.reqs if r.op != Op.READ}
    traces.append(readback(cfg, written))
    coverage = {k: 0 for k in COVERAGE}
    run_traces(cfg, timing, traces, coverage=coverage)
    print(f"{name}: {sum(len(t.reqs) for t in traces)} requests, {sum(t.cycles for t in traces)} "
          f"cycles, coverage {coverage}")
    gold = ComputeMemoryModel(cfg)
    urgent = 0
    bound = starvation_bound(timing, cfg.mem_queue_depth)
    for k, tr in enumerate(traces):
        check_trace(cfg, timing, tr, gold, f"{name} seed {seed} trace {k}")
        urgent += tr.counters["urgent_cycles"]
        if all(tr.ready):       # the bound holds with the sink always ready
            assert max(i - a for a, i in zip(tr.accept, tr.issue)) <= bound
    # the read-back saw what the golden memory holds
    assert all(np.array_equal(d, gold.line(r.addr))
               for d, r in zip(traces[-1].read_data, traces[-1].reqs))
    assert urgent == coverage["urgent"]
    missed = [k for k, v in coverage.items() if not v]
    assert not missed, f"the traces never reached {missed}"


def test_streaming_reads_reach_one_line_per_cycle():
    n = 1024
    tr = readback(CFG, range(n))
    run_traces(CFG, HBM2, [tr])
    gold = ComputeMemoryModel(CFG)
    check_trace(CFG, HBM2, tr, gold, "stream")
    rate = n / tr.cycles
    print(f"streaming READs: {n} lines in {tr.cycles} cycles = {rate:.3f} lines/cycle")
    assert rate >= 0.95


def test_rotating_random_rows_reach_the_timing_bound():
    seed = new_seed()
    n = 800
    reqs = rotating_random_rows(HBM2, n, Op.READ, seed, rows=8)
    tr = make_trace(CFG, reqs, random.Random(seed))
    run_traces(CFG, HBM2, [tr])
    check_trace(CFG, HBM2, tr, ComputeMemoryModel(CFG), "random rows")
    bound = peak_random_row_rate(HBM2, CFG.mem_queue_depth)
    rate = n / tr.cycles
    print(f"rotating random rows: {n} READs in {tr.cycles} cycles = {rate:.3f} lines/cycle "
          f"(bound {bound:.3f}); ACTs {tr.counters['activates']}")
    assert rate == pytest.approx(bound, rel=0.05)
    assert tr.counters["activates"] == n


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")   # built for a property
def test_properties_and_sizes():
    dut = DramController(cfg=CFG, timing=HBM2)
    assert dut.queue_depth == 16 and dut.return_slots == 32
    assert dut.latency == 1 + HBM2.t_cl + 1
    assert dut.miss_latency == dut.latency + HBM2.t_rcd
    assert dut.starvation_bound == starvation_bound(HBM2, 16)
    assert dut.max_reads_outstanding == 16 + 32
    assert dut.return_buffer_bits == 32 * CFG.line_bits


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")   # half-built objects
@pytest.mark.parametrize("changes, message", [
    ({"t_cl": 2}, r"timing.read_latency=3 \(t_cl \+ 1\): must be >= 4, ComputeMemory's READ "
                  r"latency \(fp_adder_stages \+ 2\)"),
    ({"t_rmw": 1}, r"timing.t_rmw=1: must be >= cfg.fp_adder_stages=2"),
])
def test_bad_timing_for_the_memory_is_a_clear_error(changes, message):
    with pytest.raises(ConfigError, match="DramController: " + message):
        DramController(cfg=CFG, timing=DramTiming(**changes))
    gc.collect()        # the half-built object's warning, under this test's filter


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_bad_arguments_are_clear_errors():
    with pytest.raises(ConfigError, match="DramController: cfg="):
        DramController(cfg=None, timing=HBM2)
    with pytest.raises(ConfigError, match="DramController: timing="):
        DramController(cfg=CFG, timing={"t_cl": 9})
    gc.collect()
