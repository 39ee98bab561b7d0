"""cocotb testbench of the N-device T3 ring (hw/ring.py).

``ring_t3``: program every device through its CSR bus from the sim_models programming,
play each device's producer trace (issue times respected, optional random jitter, the
DUT's backpressure obeyed), wait until every device has applied every expected request
(reduce-scatter and fused all-gather), then read every device's memory back through the
host port and compare it bit for bit with the golden model.

``ring_baseline``: the unfused baseline on the same hardware: all stores local, then the
ring reduce-scatter and all-gather as N-1 + N-1 DMA steps kicked through the CSRs with a
barrier after each step, exactly as sim_models.baseline orders the additions.

Parameters (verif.runner.tb_params): ``workdir`` prepared by verif.ring_scenario.prepare.
Results go to ``workdir/result_<mode>.json`` (cycles and utilisation) and
``workdir/readback_<mode>.npz``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, Combine, RisingEdge

from sim_models import regmap
from sim_models.program import DeviceProgram, Region
from sim_models.spec import FireOp, Op, ProducerAction, T3Config, memory_request_fields, \
    memory_response_fields, producer_request_fields
from sim_models.trace import load_traces

from .csr_driver import CsrDriver
from .runner import tb_params
from .streams import TB, Struct, pack_line, unpack_line


class RingTB(TB):
    def __init__(self, dut):
        super().__init__(dut)
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
        self.cycle = 0
        for i in range(self.n):
            getattr(dut, f"producer__{i}__valid").value = 0
            getattr(dut, f"host__{i}__valid").value = 0
            getattr(dut, f"host_resp__{i}__ready").value = 0
        num, den = self.cfg.link_credit_ratio
        dut.link_latency.value = self.cfg.link_latency_cycles
        dut.link_num.value = num
        dut.link_den.value = den
        cocotb.start_soon(self._count())

    async def _count(self):
        edge = RisingEdge(self.clk)
        while True:
            await edge
            self.cycle += 1

    # ---- stimulus ------------------------------------------------------------------
    async def play_trace(self, d: int, ops: np.ndarray | None = None) -> int:
        """Issue device d's producer requests no earlier than their issue times (relative
        to now) plus a random, order-preserving jitter. Returns the last accept cycle."""
        tr = self.traces[d]
        valid = getattr(self.dut, f"producer__{d}__valid")
        ready = getattr(self.dut, f"producer__{d}__ready")
        payload = getattr(self.dut, f"producer__{d}__payload")
        rng = self.rng(f"jitter{d}")
        jitter = int(self.scn["jitter"])
        bits = self.cfg.elem_bits
        ops = tr.op if ops is None else ops
        words = [self.preq.pack(op=int(ops[i]), addr=int(tr.addr[i]), wf_id=int(tr.wf_id[i]),
                                data=pack_line(tr.data[i], bits)) for i in range(len(tr))]
        t0 = self.cycle
        shift = 0
        edge = RisingEdge(self.clk)
        for i, w in enumerate(words):
            if jitter and rng.random() < 0.1:
                shift += rng.randint(1, jitter)
            due = t0 + int(tr.time[i]) + shift
            if self.cycle < due:
                valid.value = 0
                await ClockCycles(self.clk, due - self.cycle)
            payload.value = w
            valid.value = 1
            await edge
            while not int(ready.value):
                await edge
        valid.value = 0
        return self.cycle

    # ---- completion ----------------------------------------------------------------
    async def wait_applied(self, targets: list[int], *, timeout: int) -> int:
        """Wait until device d's memory has accepted targets[d] requests (all d), its
        queue is empty and no packet is on any link; return the cycle."""
        dut = self.dut
        edge = RisingEdge(self.clk)
        start = self.cycle
        while True:
            done = all(int(getattr(dut, f"mem_reqs__{d}").value) >= targets[d]
                       and int(getattr(dut, f"queue_level__{d}").value) == 0
                       and int(getattr(dut, f"link_in_flight__{d}").value) == 0
                       for d in range(self.n))
            if done:
                return self.cycle
            if self.cycle - start > timeout:
                got = [int(getattr(dut, f"mem_reqs__{d}").value) for d in range(self.n)]
                raise AssertionError(f"ring did not finish in {timeout} cycles: memory requests "
                                     f"{got}, expected {targets}")
            await edge

    def mem_reqs(self) -> list[int]:
        return [int(getattr(self.dut, f"mem_reqs__{d}").value) for d in range(self.n)]

    # ---- readback ------------------------------------------------------------------
    async def read_memory(self, d: int, lo: int, hi: int) -> np.ndarray:
        """READ lines [lo, hi) of device d through the host port (random backpressure on
        the response stream); returns (hi - lo) x lanes raw bits."""
        dut = self.dut
        rv, rr, rp = (getattr(dut, f"host__{d}__{s}") for s in ("valid", "ready", "payload"))
        sv, sr, sp = (getattr(dut, f"host_resp__{d}__{s}") for s in ("valid", "ready", "payload"))
        rng = self.rng(f"readback{d}")
        bp = float(self.scn["backpressure"])
        out: list[int] = []
        n = hi - lo
        edge = RisingEdge(self.clk)

        async def responses():
            while len(out) < n:
                r = 0 if (bp and rng.random() < bp) else 1
                sr.value = r
                await edge
                if r and int(sv.value):
                    out.append(self.mresp.get(sp.value.to_unsigned(), "data"))
            sr.value = 0

        task = cocotb.start_soon(responses())
        for a in range(lo, hi):
            rp.value = self.mreq.pack(op=int(Op.READ), addr=a, mask=0, data=0)
            rv.value = 1
            await edge
            while not int(rr.value):
                await edge
        rv.value = 0
        await task
        ud = np.dtype(self.cfg.fmt.uint_dtype)
        return np.stack([unpack_line(w, self.cfg.elem_bits, self.cfg.lanes, ud) for w in out])

    async def check_memories(self, mode: str) -> dict:
        lo, hi = self.expect["out_lines"]
        got = await _gather([self.read_memory(d, lo, hi) for d in range(self.n)])
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
                      "producer_reqs", "ingress_reqs", "remote_sent"):
                st[c] = await self.csr[d].read(regmap.reg(self.cfg, c.upper()).addr)
            st["irq"] = int(self.dut.irq.value) >> d & 1
            out.append(st)
        return out

    def write_result(self, mode: str, result: dict) -> None:
        (self.workdir / f"result_{mode}.json").write_text(json.dumps(result, indent=1))


async def _gather(coros):
    tasks = [cocotb.start_soon(c) for c in coros]
    return [await t for t in tasks]


def _timeout(tb: RingTB) -> int:
    longest = max(int(t.time[-1]) if len(t) else 0 for t in tb.traces)
    total = sum(len(t) for t in tb.traces)
    bw = tb.cfg.link_lines_per_cycle
    return 4 * longest + int(8 * total / bw) + 50 * tb.cfg.link_latency_cycles + 10_000


@cocotb.test()
async def ring_t3(dut):
    """Fused RS + AG through tracker, DMA and NMC; compare every memory bit for bit."""
    tb = RingTB(dut)
    await tb.reset()
    await _gather([tb.csr[d].program(tb.programs[d]) for d in range(tb.n)])
    base = tb.mem_reqs()
    start = tb.cycle
    await _gather([tb.play_trace(d) for d in range(tb.n)])
    targets = [b + e["mem_reqs"] for b, e in zip(base, tb.expect["t3"])]
    end = await tb.wait_applied(targets, timeout=_timeout(tb))
    cycles = end - start
    stats = await tb.stats()
    for d, st in enumerate(stats):
        assert st["irq"] == 0, f"device {d}: error flag raised: {st}"
        assert st["fires"] == tb.expect["t3"][d]["fires"], f"device {d}: fires {st['fires']}"
    check = await tb.check_memories("t3")
    tb.log.info("t3: %d cycles", cycles)
    tb.write_result("t3", {"cycles": cycles, "devices": stats, **check})
