"""cocotb testbench of the N-device T3 ring (hw/env/ring.py).

``ring_t3``: program every device through its CSR bus from the sim_models programming,
play each device's producer trace (issue times respected, optional random jitter, the
DUT's backpressure obeyed), wait until every device has applied every expected request
(reduce-scatter and fused all-gather), then read every device's memory back through the
host port and compare it bit for bit with the golden model.

``ring_baseline``: the unfused baseline on the same hardware: all stores local, then the
ring reduce-scatter and all-gather as N-1 + N-1 DMA steps kicked through the CSRs with a
barrier after each step, exactly as sim_models.baseline orders the additions.

Background GEMM reads (scenario ``gemm_read_rate`` > 0, both modes): every device's read
generator is armed (:meth:`RingTB.arm_gemm_reads`: rate, the output buffer as window,
the per-device count of ``expect.json``) right before its producer trace starts; the
reads count in the memory-request targets, and before reading memory back the testbench
waits until every device's ``gemm_reads_done`` equals its ``gemm_reads_issued`` equals
the count (:meth:`RingTB.wait_gemm_reads`).

Parameters (verif.runner.tb_params): ``workdir`` prepared by verif.ring_scenario.prepare.
Results go to ``workdir/result_<mode>.json`` (cycles, utilisation and the wall seconds of
each phase, ``wall_s``) and ``workdir/readback_<mode>.npz``.

Speed: Python wakes up only where the stimulus needs it. The cycle count comes from the
simulation time (no per-cycle counter coroutine); idle stretches (issue-time gaps, the
drain wait) are crossed with one timer instead of one wake-up per cycle; the traces of
all devices play in one coroutine, and their readback runs in one coroutine. Each shortcut lands on exactly the clock edge the
per-cycle loop would have reached (see :meth:`RingTB.edges` and :meth:`wait_applied`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.simtime import convert, get_sim_time
from cocotb.triggers import ClockCycles, RisingEdge, Timer

from contract import regmap
from contract.program import DeviceProgram, Region
from contract.spec import FireOp, Op, ProducerAction, memory_request_fields, \
    memory_response_fields, producer_request_fields
from sim_models.trace import load_traces

from . import coverage
from .csr_driver import CsrDriver
from .runner import tb_params
from .streams import TB, Struct, pack_line, unpack_line


#: clock period (ns) of the testbench clock
PERIOD_NS = 10
#: cycles the host-port helpers (zeroing, readback) wait without progress before failing
READBACK_STALL_CYCLES = 20_000


class RingTB(TB):
    def __init__(self, dut):
        super().__init__(dut, period_ns=PERIOD_NS)
        self._period = convert(PERIOD_NS, "ns", to="step")
        self._edge = RisingEdge(self.clk)
        #: wall seconds per phase of the current mode (``pack``: trace words, accumulated)
        self.wall: dict[str, float] = {"pack": 0.0}
        #: edges crossed by a timer instead of per-cycle wake-ups (speed diagnostics)
        self.edges_skipped = 0
        p = tb_params()
        self.workdir = Path(p["workdir"])
        self.cfg, self.gemm, self.programs, self.traces = load_traces(self.workdir / "trace")
        self.expect = json.loads((self.workdir / "expect.json").read_text())
        self.scn = self.expect["scenario"]
        self.n = self.cfg.ring_devices
        g = np.load(self.workdir / "golden.npz")
        self.golden = [g[f"mem{d}"] for d in range(self.n)]
        self.csr = [CsrDriver(dut, self.clk, self.cfg, req=f"csr_req__{i}", resp=f"csr_resp__{i}")
                    for i in range(self.n)]
        self.preq = Struct(producer_request_fields(self.cfg))
        self.mreq = Struct(memory_request_fields(self.cfg))
        self.mresp = Struct(memory_response_fields(self.cfg))
        for i in range(self.n):
            getattr(dut, f"producer__{i}__valid").value = 0
            getattr(dut, f"host__{i}__valid").value = 0
            getattr(dut, f"host_resp__{i}__ready").value = 0
            # off until armed (the port keeps a previous test's value across the reset)
            getattr(dut, f"gemm_read_count__{i}").value = 0
        for name in ("num", "den", "base", "lines"):
            getattr(dut, f"gemm_read_{name}").value = 0
        #: background READs per device (0 = off), armed by arm_gemm_reads
        self.gemm_read_counts = [int(c) for c in self.expect["gemm_reads"]["counts"]]
        num, den = self.cfg.link_credit_ratio
        dut.link_latency.value = self.cfg.link_latency_cycles
        dut.link_num.value = num
        dut.link_den.value = den

    @property
    def cycle(self) -> int:
        """Clock cycles since time 0 (the clock starts then, rising edges at multiples of
        the period). Read right after a rising edge, it counts that edge; only
        differences of it are used."""
        return get_sim_time("step") // self._period

    async def edges(self, n: int) -> None:
        """Wait ``n`` >= 1 rising edges, exactly as ``ClockCycles(clk, n)``, but with one
        timer instead of ``n`` Python wake-ups: a timer to a quarter period past edge
        ``n - 1``, then edge ``n``. Off a clock edge it falls back to ClockCycles."""
        if n > 2 and get_sim_time("step") % self._period == 0:
            await Timer((n - 1) * self._period + self._period // 4, unit="step")
            await self._edge
            self.edges_skipped += n - 1
        else:
            await ClockCycles(self.clk, n)

    # ---- stimulus ------------------------------------------------------------------
    async def play_trace(self, d: int, ops: np.ndarray | None = None) -> int:
        """Issue device d's producer requests no earlier than their issue times (relative
        to now) plus a random, order-preserving jitter. Returns the last accept cycle."""
        return (await self.play_traces([d], None if ops is None else [ops]))[0]

    async def play_traces(self, devices: list[int],
                          ops: list[np.ndarray | None] | None = None, *,
                          timeout: int | None = None) -> list[int]:
        """:meth:`play_trace` for every device of ``devices`` at once, in one coroutine
        that wakes only at the edges some device needs (a request's due cycle, or the
        edge after presenting a request). Per device exactly as a per-device loop: the
        same jitter draws, the same valid/payload values in the same cycles. ``ops``
        optionally replaces each device's trace ops. ``timeout``: AssertionError when a
        request waits longer than that many cycles for ready (a stalled ring) instead of
        waiting for ever. Returns each last accept cycle."""
        jitter = int(self.scn["jitter"])
        bits = self.cfg.elem_bits
        w0 = time.perf_counter()
        ports = []
        for j, d in enumerate(devices):
            tr = self.traces[d]
            op = tr.op if ops is None or ops[j] is None else ops[j]
            ports.append({
                "valid": getattr(self.dut, f"producer__{d}__valid"),
                "ready": getattr(self.dut, f"producer__{d}__ready"),
                "payload": getattr(self.dut, f"producer__{d}__payload"),
                "rng": self.rng(f"jitter{d}"), "times": tr.time, "i": 0, "shift": 0,
                "words": [self.preq.pack(op=int(op[i]), addr=int(tr.addr[i]),
                                         wf_id=int(tr.wf_id[i]), data=pack_line(tr.data[i], bits))
                          for i in range(len(tr))],
                "wake": 0, "presenting": False, "last": None, "since": 0, "device": d})
        self.wall["pack"] += time.perf_counter() - w0
        t0 = self.cycle

        def present(p: dict) -> None:
            p["payload"].value = p["words"][p["i"]]
            p["valid"].value = 1
            p["wake"], p["presenting"], p["since"] = self.cycle + 1, True, self.cycle

        def prepare(p: dict) -> None:        # request p["i"], now
            if jitter and p["rng"].random() < 0.1:
                p["shift"] += p["rng"].randint(1, jitter)
            due = t0 + int(p["times"][p["i"]]) + p["shift"]
            if self.cycle < due:
                p["valid"].value = 0
                p["wake"], p["presenting"] = due, False
            else:
                present(p)

        for p in ports:
            if p["words"]:
                prepare(p)
            else:
                p["valid"].value = 0
                p["last"] = t0
        live = [p for p in ports if p["words"]]
        while live:
            await self.edges(min(p["wake"] for p in live) - self.cycle)
            now = self.cycle
            for p in live:
                if p["wake"] != now:
                    continue
                if not p["presenting"]:
                    present(p)                   # its due cycle
                elif not int(p["ready"].value):
                    p["wake"] = now + 1          # backpressure: hold the request
                    if timeout is not None and now - p["since"] > timeout:
                        raise AssertionError(
                            f"device {p['device']}: producer request {p['i']} of "
                            f"{len(p['words'])} not accepted for {timeout} cycles (ring stalled; "
                            f"{self.snapshot()}; sizing: docs/programming.md)")
                else:
                    p["i"] += 1
                    if p["i"] < len(p["words"]):
                        prepare(p)
                    else:
                        p["valid"].value = 0
                        p["last"] = now
            live = [p for p in live if p["last"] is None]
        return [p["last"] for p in ports]

    def snapshot(self) -> str:
        """Per device: memory-queue level and packets on the outgoing link (for stall
        messages)."""
        return ", ".join(f"dev {d} queue {int(getattr(self.dut, f'queue_level__{d}').value)} "
                         f"link {int(getattr(self.dut, f'link_in_flight__{d}').value)}"
                         for d in range(self.n))

    def arm_gemm_reads(self) -> list[int]:
        """Start every device's background GEMM reads (rate and count of expect.json,
        window = the output buffer); returns the per-device counts (all 0 when off)."""
        g = self.expect["gemm_reads"]
        lo, hi = self.expect["out_lines"]
        dut = self.dut
        dut.gemm_read_num.value = int(g["num"])
        dut.gemm_read_den.value = int(g["den"])
        dut.gemm_read_base.value = lo
        dut.gemm_read_lines.value = hi - lo
        for d, c in enumerate(self.gemm_read_counts):
            getattr(dut, f"gemm_read_count__{d}").value = c
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
            await self._edge
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
            await self.edges(max(1, min(behind, timeout + 1 - waited)))

    def mem_reqs(self) -> list[int]:
        return [int(getattr(self.dut, f"mem_reqs__{d}").value) for d in range(self.n)]

    # ---- readback ------------------------------------------------------------------
    async def read_memories(self, devices: list[int], lo: int, hi: int) -> list[np.ndarray]:
        """READ lines [lo, hi) of every device in ``devices`` at once through their host
        ports, one coroutine for all: per device and cycle, a new READ request as soon as
        the previous one was accepted, and the response stream's ready low with
        probability ``backpressure`` (seeded per device). With backpressure, the
        responses are first held back for a burst (:meth:`stall_burst` cycles) so the
        READs pile up behind the memory's read credits and fill its request queue: the
        comparison then also shows that a full queue loses and reorders nothing."""
        dut = self.dut
        bp = float(self.scn["backpressure"])
        hold = self.stall_burst() if bp else 0
        n = hi - lo
        words = [self.mreq.pack(op=int(Op.READ), addr=a, mask=0, data=0) for a in range(lo, hi)]
        ports = []
        for d in devices:
            rv, rr, rp = (getattr(dut, f"host__{d}__{s}") for s in ("valid", "ready", "payload"))
            sv, sr, sp = (getattr(dut, f"host_resp__{d}__{s}") for s in ("valid", "ready", "payload"))
            ports.append({"rv": rv, "rr": rr, "rp": rp, "sv": sv, "sr": sr, "sp": sp,
                          "rng": self.rng(f"readback{d}"), "sent": 0, "r": 0, "out": []})
        live = list(ports)
        cycle = last_progress = 0
        while live:
            if cycle - last_progress > READBACK_STALL_CYCLES:
                raise AssertionError("readback stalled: (READs accepted, responses) per device "
                                     f"{[(p['sent'], len(p['out'])) for p in ports]} of {n} "
                                     f"after {READBACK_STALL_CYCLES} cycles without progress")
            for p in live:
                if len(p["out"]) < n:
                    p["r"] = 0 if cycle < hold or (bp and p["rng"].random() < bp) else 1
                    p["sr"].value = p["r"]
                if p["sent"] < n:
                    p["rp"].value = words[p["sent"]]
                    p["rv"].value = 1
            await self._edge
            cycle += 1
            for p in live:
                if p["sent"] < n and int(p["rr"].value):
                    p["sent"] += 1
                    last_progress = cycle
                    if p["sent"] == n:
                        p["rv"].value = 0
                if p["r"] and len(p["out"]) < n and int(p["sv"].value):
                    p["out"].append(self.mresp.get(p["sp"].value.to_unsigned(), "data"))
                    last_progress = cycle
                    if len(p["out"]) == n:
                        p["sr"].value = 0
            live = [p for p in live if len(p["out"]) < n or p["sent"] < n]
        ud = np.dtype(self.cfg.fmt.uint_dtype)
        return [np.stack([unpack_line(w, self.cfg.elem_bits, self.cfg.lanes, ud) for w in p["out"]])
                for p in ports]

    def stall_burst(self) -> int:
        """Cycles the readback holds every response back at first. One READ per cycle
        enters; the memory takes as many as it has response credits for (fp adder
        stages + 3, hw/nmc.py: at most 16 here), the queue holds mem_queue_depth more:
        after queue depth + 16 cycles the queue is full, and it stays full for the rest
        of the burst whenever more lines than that are read."""
        return 2 * self.cfg.mem_queue_depth + 16

    async def clear_memory(self, d: int) -> None:
        """STORE zeros over device d's output lines through the host port (memory keeps
        its contents across resets; each test starts from zero-initialised buffers)."""
        lo, hi = self.expect["out_lines"]
        rv, rr, rp = (getattr(self.dut, f"host__{d}__{s}") for s in ("valid", "ready", "payload"))
        edge = RisingEdge(self.clk)
        full = (1 << self.cfg.lanes) - 1
        for a in range(lo, hi):
            rp.value = self.mreq.pack(op=int(Op.STORE), addr=a, mask=full, data=0)
            rv.value = 1
            await edge
            for _ in range(READBACK_STALL_CYCLES):
                if int(rr.value):
                    break
                await edge
            else:
                raise AssertionError(f"device {d}: host STORE to line {a} not accepted for "
                                     f"{READBACK_STALL_CYCLES} cycles")
        rv.value = 0

    async def start(self, programs: list[DeviceProgram]) -> None:
        """Reset, zero the output buffers, program every device; wait until idle."""
        await self.reset()
        await _gather([self.clear_memory(d) for d in range(self.n)])
        await program_all(self, programs)
        await self.wait_applied(self.mem_reqs(), timeout=10_000)

    async def check_memories(self, mode: str) -> dict:
        lo, hi = self.expect["out_lines"]
        got = await self.read_memories(list(range(self.n)), lo, hi)
        np.savez(self.workdir / f"readback_{mode}.npz", **{f"mem{d}": g for d, g in enumerate(got)})
        bad = {}
        for d in range(self.n):
            want = self.golden[d][lo:hi]
            diff = np.argwhere(got[d] != want)
            if len(diff):
                line, lane = diff[0]
                bad[d] = (f"device {d}: {len(diff)} elements differ; first at line {lo + line} lane "
                          f"{lane}: got {got[d][line, lane]:#x}, want {want[line, lane]:#x}")
        assert not bad, f"{mode}: memories differ from the golden model: " + "; ".join(bad.values())
        return {"lines_checked": (hi - lo) * self.n}

    async def stats(self) -> list[dict]:
        out = []
        for d in range(self.n):
            st = {name: int(getattr(self.dut, f"{name}__{d}").value)
                  for name in ("mem_reqs", "mem_busy_cycles", "queue_full_cycles", "link_busy_cycles")}
            for c in ("tracked_reqs", "fires", "stall_cycles", "dma_tiles", "dma_lines",
                      "producer_reqs", "ingress_reqs", "remote_sent", "starved_grants", "kicks"):
                st[c] = await self.csr[d].read(regmap.reg(self.cfg, c.upper()).addr)
            # the tracker's high-water mark (TRACKER_PEAK holds only this field)
            st["tracker_peak"] = await self.csr[d].read(regmap.reg(self.cfg, "TRACKER_PEAK").addr)
            st["irq"] = int(self.dut.irq.value) >> d & 1
            st["gemm_reads"] = int(getattr(self.dut, f"gemm_reads_done__{d}").value)
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
        (self.workdir / f"result_{mode}.json").write_text(json.dumps(result, indent=1))


async def _gather(coros):
    tasks = [cocotb.start_soon(c) for c in coros]
    return [await t for t in tasks]


def _timeout(tb: RingTB) -> int:
    longest = max(int(t.time[-1]) if len(t) else 0 for t in tb.traces)
    total = sum(len(t) for t in tb.traces)
    bw = tb.cfg.link_lines_per_cycle
    return (4 * longest + int(8 * total / bw) + 50 * tb.cfg.link_latency_cycles + 10_000
            + 2 * sum(tb.gemm_read_counts))


@cocotb.test()
@coverage.saving("ring")
async def ring_t3(dut):
    """Fused RS + AG through tracker, DMA and NMC; compare every memory bit for bit."""
    tb = RingTB(dut)
    w0, c0 = time.perf_counter(), tb.cycle
    await tb.reset()
    await _gather([tb.csr[d].program(tb.programs[d]) for d in range(tb.n)])
    w1 = time.perf_counter()
    base = tb.mem_reqs()
    reads = tb.arm_gemm_reads()
    start = tb.cycle
    await tb.play_traces(list(range(tb.n)), timeout=_timeout(tb))
    targets = [b + e["mem_reqs"] + r for b, e, r in zip(base, tb.expect["t3"], reads)]
    end = await tb.wait_applied(targets, timeout=_timeout(tb))
    await tb.wait_gemm_reads(timeout=_timeout(tb))
    w2 = time.perf_counter()
    cycles = end - start
    stats = await tb.stats()
    for d, st in enumerate(stats):
        assert st["irq"] == 0, f"device {d}: error flag raised: {st}"
        assert st["fires"] == tb.expect["t3"][d]["fires"], f"device {d}: fires {st['fires']}"
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


def baseline_programs(tb: RingTB) -> list[DeviceProgram]:
    """The same regions with no tracking: every producer store is local; DMA kicks of a
    region move it as UPDATEs (phase 0) or STOREs (phase 1) to the next device."""
    out = []
    for p in tb.programs:
        regs = tuple(Region(**{**r.__dict__, "producer": ProducerAction.LOCAL,
                               "update_contribs": 0, "store_contribs": 0,
                               "update_fire": FireOp.UPDATE, "store_fire": FireOp.STORE})
                     for r in p.regions)
        out.append(DeviceProgram(device=p.device, next_device=p.next_device, regions=regs))
    return out


async def program_all(tb: RingTB, programs: list[DeviceProgram]) -> None:
    cfg = tb.cfg
    policy = int(tb.scn["policy"] == "mca")

    async def one(d):
        await tb.csr[d].program(programs[d])
        await tb.csr[d].write_fields("ARB", policy=policy, threshold=cfg.mca_queue_threshold,
                                     starve_limit=cfg.mca_starvation_limit)
    await _gather([one(d) for d in range(tb.n)])


@cocotb.test()
@coverage.saving("ring")
async def ring_baseline(dut):
    """Unfused baseline on the same hardware: GEMM stores all local, then N-1 ring
    reduce-scatter steps (DMA UPDATEs) and N-1 all-gather steps (DMA STOREs), each kicked
    through DMA_KICK with a barrier after it; same final memories as the fused run."""
    tb = RingTB(dut)
    assert tb.scn["fuse_allgather"], "the baseline runs RS + AG: use fuse_allgather=True"
    progs = baseline_programs(tb)
    await tb.start(progs)
    n = tb.n
    chunks = tb.expect["chunks"]
    lines = [c["limit"] - c["base"] for c in chunks]
    region_of = [{r.base: i for i, r in enumerate(p.regions)} for p in progs]
    timeout = _timeout(tb)
    targets = tb.mem_reqs()
    reads = tb.arm_gemm_reads()
    start = tb.cycle
    await _gather([tb.play_trace(d) for d in range(n)])
    targets = [t + len(tb.traces[d]) + reads[d] for d, t in enumerate(targets)]
    t_gemm = await tb.wait_applied(targets, timeout=timeout)
    await tb.wait_gemm_reads(timeout=timeout)
    steps = []
    for phase, first in ((0, 0), (1, 1)):          # RS sends chunk d-s, AG sends d-s+1
        for s in range(1, n):
            send = [(d - s + first) % n for d in range(n)]
            recv = [send[(d - 1) % n] for d in range(n)]

            async def kick(d):
                ri = region_of[d][chunks[send[d]]["base"]]
                await tb.csr[d].write_fields("DMA_KICK", kick=1, kick_phase=phase, kick_region=ri)
            await _gather([kick(d) for d in range(n)])
            targets = [targets[d] + lines[send[d]] + lines[recv[d]] for d in range(n)]
            steps.append(await tb.wait_applied(targets, timeout=timeout) - start)
    cycles = tb.cycle - start
    stats = await tb.stats()
    for d, st in enumerate(stats):
        assert st["irq"] == 0, f"device {d}: error flag raised: {st}"
    check = await tb.check_memories("baseline")
    tb.cover_run(stats)
    tb.log.info("baseline: %d cycles (GEMM %d, steps %s)", cycles, t_gemm - start, steps)
    tb.write_result("baseline", {"cycles": cycles, "gemm_cycles": t_gemm - start,
                                 "step_end_cycles": steps, "devices": stats, **check})
