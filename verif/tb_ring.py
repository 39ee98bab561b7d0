"""cocotb testbench of the N-device T3 ring (hw/env/ring.py).

``ring_t3``: program every device through its CSR bus from the sim_models programming,
play each device's producer trace (issue times respected, optional random jitter, the
DUT's backpressure obeyed), wait until every device has applied every expected request
(reduce-scatter and fused all-gather), then read every device's memory back through the
host port and compare it bit for bit with the golden model.

``ring_baseline``: the unfused baseline on the same hardware: all stores local, then the
ring reduce-scatter and all-gather steps kicked through the CSRs with a barrier after
each step. The steps, their order and the programs come from the model
(sim_models.baseline: ``ring_steps``, ``baseline_programs``); this bench plays them.

Both modes write the ARB register (arbiter policy, MCA queue threshold and starvation
limit of the scenario's configuration) on every device and read it back (the run fails
when it differs; the read-back is in the result, ``arbiter``). The policy is run-time
only: scenarios that differ only in policy share one build (RingScenario.hw_key leaves
it out), whose ARB reset value is the policy it happened to be generated with.

Background GEMM reads (scenario ``gemm_read_rate`` > 0, both modes): every device's read
generator is armed (:meth:`RingTB.arm_gemm_reads`: rate, the output buffer as window,
the per-device count of ``expect.json``) right before its producer trace starts; the
reads count in the memory-request targets, and before reading memory back the testbench
waits until every device's ``gemm_reads_done`` equals its ``gemm_reads_issued`` equals
the count (:meth:`RingTB.wait_gemm_reads`).

Random stalls (scenario ``stall`` > 0, both modes, the whole test: programming, run and
readback): the ring top's stall gates (hw/env/ring.py: every link's delivery into the next
unit, every unit's memory request handshake) get ``stall_prob`` and ``stall_seed`` (the
scenario's seed) before the reset; no Python runs per cycle for them. The stats report
per device the packets of its outgoing link and the memory requests the gates held
(``link_stall_cycles``, ``mem_stall_cycles``); the timeouts grow by 1 / (1 - stall)^2.

Parameters (verif.runner.tb_params): ``workdir`` prepared by verif.ring_scenario.prepare.
Results go to ``workdir/result_<mode>.json`` (cycles, utilisation, the ARB read-back and
the wall seconds of each phase, ``wall_s``) and ``workdir/readback_<mode>.npz``.

Drivers: the producer ports, host ports (request source, on-demand response sink) and
CSR buses use the stream drivers of verif/streams.py. Speed: Python wakes up only where
the stimulus needs it. The cycle count comes from the simulation time (no per-cycle
counter coroutine); all drivers run in the clock domain's one coroutine, which wakes
only at the edges some driver needs (a producer trace's issue-time gaps are one timer);
the drain wait is crossed with timers too (:meth:`wait_applied`). Each shortcut lands on
exactly the clock edge a per-cycle loop would have reached.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cocotb
import numpy as np

from contract import regmap
from contract.program import DeviceProgram
from contract.spec import COUNTER_BITS, Op, memory_request_fields, memory_response_fields, \
    producer_request_fields
from sim_models.baseline import baseline_programs, ring_steps
from hw.env.ring import GEMM_COUNT_BITS, GEMM_COUNTERS, UNIT_MEMORY_COUNTERS
from hw.env.stall import STALL_SEED_BITS, stall_prob_code
from sim_models.trace import load_traces

from . import coverage
from .csr_driver import CsrMaster
from .pacing import jittered_times, pause_burst, random_pauses
from .runner import tb_params
from .streams import TB, Struct, pack_line, unpack_line


#: clock period (ns) of the testbench clock
PERIOD_NS = 10
#: cycles the host-port helpers (zeroing, readback) wait without progress before failing
READBACK_STALL_CYCLES = 20_000


class RingTB(TB):
    def __init__(self, dut):
        super().__init__(dut, period_ns=PERIOD_NS)
        #: wall seconds per phase of the current mode (``pack``: trace words, accumulated)
        self.wall: dict[str, float] = {"pack": 0.0}
        #: the first cycle of the counters' span: the test's first cycle (its reset
        #: follows) until :meth:`mark_run_start` moves it to the run's start
        self.cycle0 = self.cycle
        #: the DUT's counter outputs at the run's start (:meth:`mark_run_start`)
        self.counter_base: dict[str, int] = {}
        p = tb_params()
        self.workdir = Path(p["workdir"])
        self.cfg, self.gemm, self.programs, self.traces = load_traces(self.workdir / "trace")
        self.expect = json.loads((self.workdir / "expect.json").read_text())
        self.scn = self.expect["scenario"]
        self.n = self.cfg.ring_devices
        g = np.load(self.workdir / "golden.npz")
        self.golden = [g[f"mem{d}"] for d in range(self.n)]
        self.preq = Struct(producer_request_fields(self.cfg))
        self.mreq = Struct(memory_request_fields(self.cfg))
        self.mresp = Struct(memory_response_fields(self.cfg))
        devices = range(self.n)
        self.csr = [CsrMaster(self.clock, dut, self.cfg, req=f"csr_req__{d}", resp=f"csr_resp__{d}")
                    for d in devices]
        self.producer = [self.source(f"producer__{d}", name=f"device {d} producer")
                         for d in devices]
        self.host = [self.source(f"host__{d}", name=f"device {d} host") for d in devices]
        self.host_resp = [self.sink(f"host_resp__{d}", on_demand=True,
                                    name=f"device {d} host response") for d in devices]
        for d in devices:
            # off until armed (the port keeps a previous test's value across the reset)
            getattr(dut, f"gemm_read_count__{d}").value = 0
        for name in ("num", "den", "base", "lines"):
            getattr(dut, f"gemm_read_{name}").value = 0
        for name in ("enable", "k_steps", "step_cycles", "outstanding"):
            getattr(dut, f"gemm_{name}").value = 0
        #: the closed-loop GEMM's settings and waves (expect.json), armed by arm_gemm_reads
        self.closed_loop = self.expect["closed_loop"]
        self.waves = [self.source(f"waves__{d}", name=f"device {d} waves") for d in devices]
        self.wave = Struct([("lines", GEMM_COUNT_BITS), ("reads", GEMM_COUNT_BITS)])
        #: producer-port READs per device (background or closed loop; 0 = off)
        self.gemm_read_counts = [int(c) for c in self.expect["gemm_reads"]["counts"]]
        #: random stalls on every link and memory handshake (scenario ``stall``), for the
        #: whole test: set before its reset, when the stall generators load the seed
        self.stall = float(self.scn.get("stall", 0.0))
        dut.stall_prob.value = stall_prob_code(self.stall)
        dut.stall_seed.value = int(self.scn["seed"]) & ((1 << STALL_SEED_BITS) - 1)
        num, den = self.cfg.link_credit_ratio
        dut.link_latency.value = self.cfg.link_latency_cycles
        dut.link_num.value = num
        dut.link_den.value = den

    @property
    def edges_skipped(self) -> int:
        """Edges crossed by a timer instead of a wake-up (speed diagnostics)."""
        return self.clock.edges_skipped

    # ---- stimulus ------------------------------------------------------------------
    async def play_traces(self, *, timeout: int | None = None) -> list[int]:
        """Issue every device's producer requests no earlier than their issue times
        (relative to now) plus a random, order-preserving jitter (verif.pacing,
        ``jittered_times``, seeded per device), obeying the DUT's backpressure.
        ``timeout``: AssertionError when a request waits longer than that many cycles for
        ready (a stalled ring) instead of waiting for ever. Returns each device's last
        accept cycle."""
        jitter = int(self.scn["jitter"])
        bits = self.cfg.elem_bits
        w0 = time.perf_counter()
        words = []
        for tr in self.traces:
            words.append([self.preq.pack(op=int(tr.op[i]), addr=int(tr.addr[i]), wf_id=int(tr.wf_id[i]),
                                         data=pack_line(tr.data[i], bits)) for i in range(len(tr))])
        self.wall["pack"] += time.perf_counter() - w0
        start = self.cycle
        for d, tr in enumerate(self.traces):
            if self.closed_loop["enable"]:
                # the closed-loop GEMM decides when each wave's stores go
                self.producer[d].send_nowait(words[d])
                continue
            issue = jittered_times(tr.time, jitter, self.rng(f"jitter{d}"))
            self.producer[d].send_nowait(words[d], at=[start + t for t in issue])
        for src in self.producer:
            await src.wait_idle(ready_timeout=timeout, context=self.stall_context)
        return [start if src.last_accept is None else src.last_accept for src in self.producer]

    def stall_context(self) -> str:
        return f"ring stalled; {self.snapshot()}; sizing: docs/programming.md"

    def snapshot(self) -> str:
        """Per device: memory-queue level and packets on the outgoing link (for stall
        messages)."""
        return ", ".join(f"dev {d} queue {int(getattr(self.dut, f'queue_level__{d}').value)} "
                         f"link {int(getattr(self.dut, f'link_in_flight__{d}').value)}"
                         for d in range(self.n))

    def arm_gemm_reads(self) -> list[int]:
        """Start every device's GEMM reads: the background generator (rate and count of
        expect.json, window = the output buffer) or the closed-loop GEMM (its settings,
        every device's wave descriptors queued, window = the whole memory); returns the
        per-device READ counts (all 0 when off)."""
        g, cl = self.expect["gemm_reads"], self.closed_loop
        lo, hi = self.expect["out_lines"]
        dut = self.dut
        if cl["enable"]:
            lo, hi = 0, self.cfg.mem_depth_lines
            dut.gemm_enable.value = 1
            for name in ("k_steps", "step_cycles", "outstanding"):
                getattr(dut, f"gemm_{name}").value = int(cl[name])
            for d, waves in enumerate(cl["waves"]):
                self.waves[d].send_nowait([self.wave.pack(lines=n, reads=r) for n, r in waves])
        else:
            dut.gemm_read_num.value = int(g["num"])
            dut.gemm_read_den.value = int(g["den"])
            for d, c in enumerate(self.gemm_read_counts):
                getattr(dut, f"gemm_read_count__{d}").value = c
        dut.gemm_read_base.value = lo
        dut.gemm_read_lines.value = hi - lo
        return list(self.gemm_read_counts)

    def gemm_reads(self) -> list[tuple[int, int]]:
        """(issued, done) background READs per device."""
        return [(int(getattr(self.dut, f"gemm_reads_issued__{d}").value),
                 int(getattr(self.dut, f"gemm_reads_done__{d}").value)) for d in range(self.n)]

    async def wait_gemm_reads(self, *, timeout: int) -> None:
        """Wait until every device's background READs are all issued and answered."""
        want = [(c, c) for c in self.gemm_read_counts]
        for _ in range(timeout):
            if self.gemm_reads() == want:
                return
            await self.clock.edge
        raise AssertionError(f"background GEMM reads (issued, done) per device {self.gemm_reads()}, "
                             f"expected {want} after {timeout} cycles")

    # ---- completion ----------------------------------------------------------------
    async def wait_applied(self, targets: list[int], *, timeout: int) -> int:
        """Wait until device d's memory has accepted targets[d] requests (all d), its
        queue is empty and no packet is on any link; return the cycle.

        The first edge at which this holds is found without polling every cycle: a
        memory accepts at most one request per cycle, so a device ``b`` requests short
        of its target cannot be done before ``b`` more edges."""
        dut = self.dut
        handles = [(getattr(dut, f"mem_reqs__{d}"), getattr(dut, f"queue_level__{d}"),
                    getattr(dut, f"link_in_flight__{d}"), targets[d]) for d in range(self.n)]
        start = self.cycle
        while True:
            behind = max(t - int(mem.value) for mem, _, _, t in handles)
            if behind <= 0 and all(int(q.value) == 0 and int(f.value) == 0
                                   for _, q, f, _ in handles):
                return self.cycle
            waited = self.cycle - start
            if waited > timeout:
                got = [int(mem.value) for mem, _, _, _ in handles]
                raise AssertionError(f"ring did not finish in {timeout} cycles: memory requests "
                                     f"{got}, expected {targets}")
            # never step past the first edge at which the timeout would be noticed
            await self.clock.edges(max(1, min(behind, timeout + 1 - waited)))

    async def wait_idle_units(self, *, timeout: int) -> None:
        """Wait until every unit's STATUS.busy is 0 (the DMA engine may still be
        completing fires that move nothing after the memory went quiet), polling every
        device's register bus; AssertionError after ``timeout`` cycles."""
        start = self.cycle
        while True:
            busy = [(await c.read_fields("STATUS"))["busy"] for c in self.csr]
            if not any(busy):
                return
            assert self.cycle - start <= timeout, f"units still busy after {timeout} cycles: {busy}"
            await self.clock.edges(16)

    def mem_reqs(self) -> list[int]:
        return [int(getattr(self.dut, f"mem_reqs__{d}").value) for d in range(self.n)]

    # ---- host ports ----------------------------------------------------------------
    async def read_memories(self, lo: int, hi: int) -> list[np.ndarray]:
        """READ lines [lo, hi) of every device through its host port: READ requests back to
        back, the responses taken with backpressure ``backpressure`` (a seeded coin per
        cycle and device). With backpressure, the responses are first held back for a
        burst (:meth:`stall_burst` cycles) so the READs pile up behind the memory's read
        credits and fill its request queue: the comparison then also shows that a full
        queue loses and reorders nothing."""
        bp = float(self.scn["backpressure"])
        n = hi - lo
        words = [self.mreq.pack(op=int(Op.READ), addr=a, mask=0, data=0) for a in range(lo, hi)]
        firsts = []
        for d in range(self.n):
            sink = self.host_resp[d]
            sink.set_pause_generator(
                pause_burst(self.stall_burst(), random_pauses(self.rng(f"readback{d}"), bp))
                if bp else None)
            firsts.append(len(sink.items))
            sink.expect(n)
            self.host[d].send_nowait(words)
        out = []
        ud = np.dtype(self.cfg.fmt.uint_dtype)
        for d, first in enumerate(firsts):
            items = (await self.host_resp[d].wait_for(first + n, stall_cycles=READBACK_STALL_CYCLES))[first:]
            out.append(np.stack([unpack_line(self.mresp.get(w, "data"), self.cfg.elem_bits,
                                             self.cfg.lanes, ud) for w in items]))
        return out

    def stall_burst(self) -> int:
        """Cycles the readback holds every response back at first. One READ per cycle
        enters; the memory takes as many as it has response credits for (fp adder
        stages + 3, hw/nmc.py: at most 16 here), the queue holds mem_queue_depth more:
        after queue depth + 16 cycles the queue is full, and it stays full for the rest
        of the burst whenever more lines than that are read."""
        return 2 * self.cfg.mem_queue_depth + 16

    async def clear_memories(self) -> None:
        """STORE zeros over every device's output lines through its host port (memory keeps
        its contents across resets; each test starts from zero-initialised buffers)."""
        lo, hi = self.expect["out_lines"]
        full = (1 << self.cfg.lanes) - 1
        words = [self.mreq.pack(op=int(Op.STORE), addr=a, mask=full, data=0) for a in range(lo, hi)]
        for src in self.host:
            src.send_nowait(words)
        for src in self.host:
            await src.wait_idle(ready_timeout=READBACK_STALL_CYCLES)

    # ---- programming ---------------------------------------------------------------
    async def program_all(self, programs: list[DeviceProgram]) -> None:
        """Program every device (regions and CTRL, then ARB with the configuration's
        arbiter settings, read back: verif.csr_driver), all buses at once; the ARB
        read-back of every device goes to :attr:`arbiter`."""
        async def one(d):
            await self.csr[d].program(programs[d])
            return await self.csr[d].program_arbiter()
        #: per device, the ARB fields read back after programming
        self.arbiter = await _gather([one(d) for d in range(self.n)])

    async def start(self, programs: list[DeviceProgram]) -> None:
        """Reset, zero the output buffers, program every device; wait until idle."""
        await self.reset()
        await self.clear_memories()
        await self.program_all(programs)
        await self.wait_applied(self.mem_reqs(), timeout=10_000)

    # ---- results -------------------------------------------------------------------
    async def check_memories(self, mode: str) -> dict:
        """Read every device's WHOLE memory back and compare it with the golden model's
        (a stray write outside the output buffer fails too); the output buffer's lines go
        to ``readback_<mode>.npz``."""
        lo, hi = self.expect["out_lines"]
        depth = self.cfg.mem_depth_lines
        got = await self.read_memories(0, depth)
        np.savez(self.workdir / f"readback_{mode}.npz",
                 **{f"mem{d}": g[lo:hi] for d, g in enumerate(got)})
        bad = {}
        for d in range(self.n):
            want = self.golden[d][:depth]
            diff = np.argwhere(got[d] != want)
            if len(diff):
                line, lane = diff[0]
                where = "inside" if lo <= line < hi else "OUTSIDE"
                bad[d] = (f"device {d}: {len(diff)} elements differ; first at line {line} ({where} "
                          f"the output buffer [{lo}, {hi})) lane {lane}: got "
                          f"{got[d][line, lane]:#x}, want {want[line, lane]:#x}")
        assert not bad, f"{mode}: memories differ from the golden model: " + "; ".join(bad.values())
        return {"lines_checked": depth * self.n}

    def check_counters(self, mode: str, stats: list[dict]) -> None:
        """Every counter the golden model predicts, per device (t3 mode): tracker fires,
        DMA tiles and lines, link packets in, producer requests (+ the GEMM's READs),
        memory requests during the run (+ the GEMM's READs); and no error flag."""
        for d, (st, e) in enumerate(zip(stats, self.expect["t3"])):
            # the DMA engine completes every fired tile (FireOp.NONE ones too, moving
            # nothing): its tile count is the tracker's fires, its lines the golden READs
            want = {"irq": 0, "fires": e["fires"], "dma_tiles": e["fires"],
                    "dma_lines": e["dma_reads"], "ingress_reqs": e["link_in"],
                    "producer_reqs": e["producer"] + self.gemm_read_counts[d],
                    "mem_reqs": e["mem_reqs"] + self.gemm_read_counts[d]}
            got = {k: st[k] for k in want}
            assert got == want, f"{mode}: device {d}: counters {got}, golden model {want}"

    #: the ring's per-device counter outputs (wrapping COUNTER_BITS counters from reset)
    RUN_COUNTERS = ("mem_reqs", "mem_busy_cycles", "queue_full_cycles", "link_busy_cycles",
                    "link_stall_cycles", "mem_stall_cycles", *UNIT_MEMORY_COUNTERS,
                    *(f"gemm_{c}" for c in GEMM_COUNTERS))

    def _run_counter(self, name: str, d: int) -> int:
        """Counter output ``name`` of device ``d`` since :meth:`mark_run_start`."""
        key = f"{name}__{d}"
        return (int(getattr(self.dut, key).value) - self.counter_base.get(key, 0)) \
            % (1 << COUNTER_BITS)

    def mark_run_start(self) -> int:
        """The run starts now: the counter outputs :meth:`stats` reports (and
        ``sim_cycles``, their span) count from this cycle on, so programming and buffer
        zeroing before it are not in the utilisation. Returns the cycle."""
        self.cycle0 = self.cycle
        self.counter_base = {f"{name}__{d}": int(getattr(self.dut, f"{name}__{d}").value)
                             for name in self.RUN_COUNTERS for d in range(self.n)}
        return self.cycle

    async def stats(self) -> list[dict]:
        out = []
        for d in range(self.n):
            # link_stall_cycles: packets of link d (into device d + 1) held by its stall gate
            st = {name: self._run_counter(name, d) for name in self.RUN_COUNTERS}
            for c in ("tracked_reqs", "fires", "stall_cycles", "dma_tiles", "dma_lines",
                      "producer_reqs", "ingress_reqs", "remote_sent", "starved_grants", "kicks",
                      "tracker_hits", "tracker_misses", "tracker_fills", "tracker_spills"):
                st[c] = await self.csr[d].read(regmap.reg(self.cfg, c.upper()).addr)
            # the tracker's high-water mark (TRACKER_PEAK holds only this field)
            st["tracker_peak"] = await self.csr[d].read(regmap.reg(self.cfg, "TRACKER_PEAK").addr)
            st["sim_cycles"] = self.cycle - self.cycle0     # the counters' span (from the run's start)
            st["irq"] = int(self.dut.irq.value) >> d & 1
            st["gemm_reads"] = int(getattr(self.dut, f"gemm_reads_done__{d}").value)
            st["gemm_read_latency_max"] = int(getattr(self.dut, f"gemm_read_latency_max__{d}").value)
            arb = await self.csr[d].read_fields("ARB_STATUS")
            st["mca_threshold_used"], st["mca_measured"] = arb["threshold_used"], arb["measured"]
            st["mca_window_reqs"] = await self.csr[d].read(regmap.reg(self.cfg, "ARB_WINDOW").addr)
            out.append(st)
        return out

    def cover_run(self, stats: list[dict]) -> None:
        """Record the functional coverage points this run hit (verif/coverage.py), from
        the DUT's event counters read at the end, after the readback (no per-cycle
        monitor here: the ring bench crosses idle stretches with timers)."""
        if any(st["fires"] for st in stats):
            coverage.cover("tracker.fire")
        if any(st["stall_cycles"] for st in stats):
            coverage.cover("tracker.full_stall")
        if any(st["starved_grants"] for st in stats):
            coverage.cover("arbiter.mca_starvation_grant")
        # read now, not from ``stats``: the readback's stall burst fills the queue
        if any(int(getattr(self.dut, f"queue_full_cycles__{d}").value) for d in range(self.n)):
            coverage.cover("memory.queue_full")

    def write_result(self, mode: str, result: dict) -> None:
        result = {**result, "arbiter": self.arbiter}
        (self.workdir / f"result_{mode}.json").write_text(json.dumps(result, indent=1))


async def _gather(coros):
    tasks = [cocotb.start_soon(c) for c in coros]
    return [await t for t in tasks]


def _timeout(tb: RingTB) -> int:
    longest = max(int(t.time[-1]) if len(t) else 0 for t in tb.traces)
    total = sum(len(t) for t in tb.traces)
    bw = tb.cfg.link_lines_per_cycle
    base = (4 * longest + int(8 * total / bw) + 50 * tb.cfg.link_latency_cycles + 10_000
            + 2 * sum(tb.gemm_read_counts))
    # random stalls: a link gate and a memory gate in series on a packet's path
    return int(base / (1 - tb.stall) ** 2)


@cocotb.test()
@coverage.saving("ring")
async def ring_t3(dut):
    """Fused RS + AG through tracker, DMA and NMC; compare every memory bit for bit."""
    tb = RingTB(dut)
    w0, c0 = time.perf_counter(), tb.cycle
    await tb.reset()
    await tb.program_all(tb.programs)
    w1 = time.perf_counter()
    base = tb.mem_reqs()
    reads = tb.arm_gemm_reads()
    start = tb.mark_run_start()
    await tb.play_traces(timeout=_timeout(tb))
    targets = [b + e["mem_reqs"] + r for b, e, r in zip(base, tb.expect["t3"], reads)]
    end = await tb.wait_applied(targets, timeout=_timeout(tb))
    await tb.wait_gemm_reads(timeout=_timeout(tb))
    await tb.wait_idle_units(timeout=_timeout(tb))
    w2 = time.perf_counter()
    cycles = end - start
    stats = await tb.stats()
    tb.check_counters("t3", stats)
    w3 = time.perf_counter()
    check = await tb.check_memories("t3")
    tb.cover_run(stats)
    w4 = time.perf_counter()
    tb.wall.update(program=w1 - w0, run=w2 - w1 - tb.wall["pack"], stats=w3 - w2,
                   readback=w4 - w3)
    tb.log.info("t3: %d cycles (%d edges crossed by timers); wall s: %s", cycles,
                tb.edges_skipped, ", ".join(f"{k} {v:.2f}" for k, v in tb.wall.items()))
    tb.write_result("t3", {"cycles": cycles, "devices": stats, **check, "wall_s": tb.wall,
                           "sim_cycles_total": tb.cycle - c0,
                           "edges_skipped": tb.edges_skipped})


@cocotb.test()
@coverage.saving("ring")
async def ring_baseline(dut):
    """Unfused baseline on the same hardware: GEMM stores all local, then the model's ring
    steps (sim_models.baseline.ring_steps: N-1 reduce-scatter steps as DMA UPDATEs, N-1
    all-gather steps as DMA STOREs), each kicked through DMA_KICK on every device with a
    barrier after it; same final memories as the fused run."""
    tb = RingTB(dut)
    assert tb.scn["fuse_allgather"], "the baseline runs RS + AG: use fuse_allgather=True"
    progs = baseline_programs(tb.programs)
    await tb.start(progs)
    chunks = tb.expect["chunks"]
    chunk_bases = [c["base"] for c in chunks]
    chunk_lines = [c["limit"] - c["base"] for c in chunks]
    timeout = _timeout(tb)
    targets = tb.mem_reqs()
    reads = tb.arm_gemm_reads()
    start = tb.mark_run_start()
    await tb.play_traces(timeout=timeout)
    targets = [t + len(tb.traces[d]) + reads[d] for d, t in enumerate(targets)]
    t_gemm = await tb.wait_applied(targets, timeout=timeout)
    await tb.wait_gemm_reads(timeout=timeout)
    step_ends = []
    for step in ring_steps(tb.n, allgather=True):
        regions = step.kick_regions(progs, chunk_bases)
        await _gather([tb.csr[d].write_fields("DMA_KICK", kick=1, kick_phase=step.phase,
                                              kick_region=regions[d]) for d in range(tb.n)])
        targets = [t + r for t, r in zip(targets, step.memory_requests(chunk_lines))]
        step_ends.append(await tb.wait_applied(targets, timeout=timeout) - start)
    cycles = tb.cycle - start
    stats = await tb.stats()
    for d, st in enumerate(stats):
        assert st["irq"] == 0, f"device {d}: error flag raised: {st}"
    check = await tb.check_memories("baseline")
    tb.cover_run(stats)
    tb.log.info("baseline: %d cycles (GEMM %d, steps %s)", cycles, t_gemm - start, step_ends)
    tb.write_result("baseline", {"cycles": cycles, "gemm_cycles": t_gemm - start,
                                 "step_end_cycles": step_ends, "devices": stats, **check})
