"""cocotb testbench of hw.nmc.ComputeMemory (driven by verif/test_nmc.py).

Parameters (verif.runner.tb_params): ``cfg`` (T3Config keys), ``n_requests``,
``idle_prob`` (req), ``bp_prob`` (resp), and the DUT's documented ``latency``,
``bubble`` (same_line_update_bubble) and ``alu_latency``. Every test resets the DUT and
clears the storage it uses (storage keeps its contents across resets, as a RAM does), so
the tests are independent except ``zero_init``, which must run first.
"""

from __future__ import annotations

import cocotb
import numpy as np

from sim_models.fparith import from_float
from sim_models.nmc_model import ComputeMemoryModel, accept_schedule, random_trace
from contract.spec import Op, T3Config, memory_request_fields
from verif import coverage
from verif.runner import tb_params
from verif.pacing import optional_random_pauses
from verif.streams import TB, Scoreboard, Struct, pack_line, unpack_line


class NmcTB(TB):
    """ComputeMemory with a request source, a response sink and the golden model beside it."""

    def __init__(self, dut, *, idle_prob: float = 0.0, bp_prob: float = 0.0):
        super().__init__(dut)
        self.p = tb_params()
        self.cfg = cfg = T3Config.from_dict(self.p["cfg"])
        self.eb, self.lanes = cfg.elem_bits, cfg.lanes
        self.codec = Struct(memory_request_fields(cfg))
        self.model = ComputeMemoryModel(cfg)
        self.board = Scoreboard("resp", fmt=lambda x: "[" + " ".join(f"{int(v):x}" for v in x) + "]")
        self.accept_cycles: list[int] = []
        self.req = self.source("req", on_accept=self._accepted,
                               pauses=optional_random_pauses(self.rng("req"), idle_prob))
        self.resp = self.sink("resp", on_item=lambda w: self.board.observe(unpack_line(w, self.eb, self.lanes)),
                              pauses=optional_random_pauses(self.rng("resp"), bp_prob))
        coverage.watch(self.clk, {"memory.response_backpressure": coverage.stalled(dut, "resp")})

    def _accepted(self, word: int, cycle: int) -> None:
        """A request the DUT took: its cycle, and the nmc.<op>.<dtype> coverage point
        (op 3, the invalid op of ``error_flag``, has none)."""
        self.accept_cycles.append(cycle)
        try:
            op = Op(self.codec.get(word, "op"))
        except ValueError:
            return
        coverage.cover(f"nmc.{op.name.lower()}.{self.cfg.dtype}")

    def encode(self, req) -> int:
        op, addr, mask, data = req
        return self.codec.pack(op=int(op), addr=addr, mask=mask,
                               data=0 if data is None else pack_line(data, self.eb))

    async def run(self, reqs, *, predicted: list | None = None) -> None:
        """Send ``reqs``; expect the model's READ lines (or ``predicted`` for requests the
        model refuses); wait until every response arrived and check them."""
        want = self.model.run(reqs) if predicted is None else predicted
        for line in want:
            self.board.expect(line)
        target = len(self.resp.items) + len(want)
        await self.req.send([self.encode(r) for r in reqs])
        await self.resp.wait_for(target, timeout_cycles=200 + 20 * len(reqs))
        await self.cycles(self.p["latency"] + 2)   # an unexpected extra response would show
        self.board.check()

    async def clear(self) -> None:
        """STORE zeros to every line (model too)."""
        full = (1 << self.lanes) - 1
        zero = np.zeros(self.lanes, dtype=np.int64)
        await self.run([(Op.STORE, a, full, zero) for a in range(self.cfg.mem_depth_lines)])

    def read_all(self):
        return [(Op.READ, a, 0, None) for a in range(self.cfg.mem_depth_lines)]

    async def start(self) -> "NmcTB":
        await self.reset()
        return self

    def assert_no_error(self) -> None:
        assert int(self.dut.error.value) == 0, "error flag set by valid traffic"


@cocotb.test()
@coverage.saving("nmc")
async def zero_init(dut):
    """Storage is zero after configuration (must be the first test of the run)."""
    tb = await NmcTB(dut).start()
    await tb.run(tb.read_all())
    tb.assert_no_error()


@cocotb.test()
@coverage.saving("nmc")
async def random_trace_vs_model(dut):
    """Random READ/STORE/UPDATE with heavy same-line reuse, random idle on req and random
    backpressure on resp: every response and the final storage bit-exact to the model."""
    p = tb_params()
    tb = await NmcTB(dut, idle_prob=p["idle_prob"], bp_prob=p["bp_prob"]).start()
    await tb.clear()
    reqs = random_trace(tb.cfg, tb.rng("trace"), p["n_requests"], hot_lines=3)
    await tb.run(reqs + tb.read_all())
    tb.assert_no_error()
    n = len(reqs)
    tb.log.info("%d requests, %d READ responses checked; req stalls %d, idles %d",
                n, tb.board.observed, tb.req.stall_cycles, tb.req.idle_cycles)


def _span(cycles: list[int]) -> int:
    return cycles[-1] - cycles[0] + 1


@cocotb.test()
@coverage.saving("nmc")
async def sustained_rate(dut):
    """No backpressure, no idle, no same-line UPDATE pair: exactly 1 request per cycle."""
    tb = await NmcTB(dut).start()
    await tb.clear()
    rng = tb.rng("rate")
    L = tb.p["alu_latency"]
    ops = [Op.UPDATE, Op.READ, Op.STORE, Op.READ]
    full = (1 << tb.lanes) - 1
    n = 400
    # consecutive addresses: the same line recurs every mem_depth_lines >= 16 > L requests
    reqs = [(ops[k % 4], k % tb.cfg.mem_depth_lines, full,
             np.array([rng.randrange(0x3000) for _ in range(tb.lanes)])) for k in range(n)]
    reqs += [(Op.READ, k % tb.cfg.mem_depth_lines, 0, None) for k in range(100)]
    assert tb.cfg.mem_depth_lines > L
    tb.accept_cycles.clear()
    await tb.run(reqs)
    span = _span(tb.accept_cycles)
    tb.log.info("sustained: %d requests in %d cycles = %.3f req/cycle", len(reqs), span,
                len(reqs) / span)
    assert len(tb.accept_cycles) == len(reqs) and span == len(reqs), \
        f"{len(reqs)} requests took {span} cycles"
    tb.assert_no_error()


@cocotb.test()
@coverage.saving("nmc")
async def same_line_update_rate(dut):
    """A chain of 64 UPDATEs to one line with values of mixed magnitudes (the order of the
    additions changes the rounded sum), then a READ of it: exactly ``bubble`` idle cycles
    between two UPDATEs, the READ right after the last, its line bit-exact (program
    order); a random UPDATE-heavy trace on 2 lines: the acceptance cycles follow the
    documented rule (sim_models.nmc_model.accept_schedule) exactly."""
    tb = await NmcTB(dut).start()
    await tb.clear()
    bubble, L = tb.p["bubble"], tb.p["alu_latency"]
    full = (1 << tb.lanes) - 1
    n = 64
    rng = np.random.default_rng(tb.rng("chain").randrange(1 << 30))
    vals = rng.uniform(-1, 1, (n, tb.lanes)) * 2.0 ** rng.integers(-10, 8, (n, tb.lanes))
    data = from_float(tb.cfg.fmt, vals.ravel()).reshape(n, tb.lanes)
    chain = [(Op.UPDATE, 3, full, d) for d in data] + [(Op.READ, 3, 0, None)]
    tb.accept_cycles.clear()
    await tb.run(chain)
    gaps = np.diff(tb.accept_cycles[:n])
    tb.log.info("dependent UPDATE chain: %d in %d cycles (%.3f req/cycle, bubble %d)",
                n, _span(tb.accept_cycles[:n]), n / _span(tb.accept_cycles[:n]), bubble)
    assert (gaps == 1 + bubble).all(), f"gaps between dependent UPDATEs: {sorted(set(gaps))}"
    assert tb.accept_cycles[n] - tb.accept_cycles[0] == (n - 1) * L + 1, "READ after the chain"

    reqs = random_trace(tb.cfg, tb.rng("reuse"), 300, hot_lines=2, hot_prob=0.95,
                        op_weights=(1, 1, 6))
    tb.accept_cycles.clear()
    await tb.run(reqs)
    want = accept_schedule(reqs, L)
    got = [c - tb.accept_cycles[0] for c in tb.accept_cycles]
    tb.log.info("heavy reuse: %d requests in %d cycles (%.3f req/cycle), %d bubbles",
                len(reqs), got[-1] + 1, len(reqs) / (got[-1] + 1), got[-1] + 1 - len(reqs))
    assert got == want, next(f"request {k}: accepted at {g}, rule says {w}"
                             for k, (g, w) in enumerate(zip(got, want)) if g != w)
    tb.assert_no_error()


@cocotb.test()
@coverage.saving("nmc")
async def error_flag(dut):
    """op 3 (and an address >= mem_depth_lines when the depth is not a power of two) is
    consumed, changes nothing, returns nothing and sets the sticky error flag."""
    tb = await NmcTB(dut, bp_prob=0.3).start()
    await tb.clear()
    full = (1 << tb.lanes) - 1
    data = np.arange(1, tb.lanes + 1)
    depth = tb.cfg.mem_depth_lines
    await tb.run([(Op.STORE, 2, full, data)])
    tb.assert_no_error()
    expect_line = tb.model.line(2)
    await tb.run([(3, 2, full, data * 7), (Op.READ, 2, 0, None)], predicted=[expect_line])
    assert int(dut.error.value) == 1, "op 3 did not set error"
    assert (int(dut.error_op.value), int(dut.error_addr.value)) == (3, 2), "error_op/addr"
    await tb.run([(Op.UPDATE, 2, full, data), (Op.READ, 2, 0, None)])   # still works
    assert int(dut.error.value) == 1, "error is not sticky"
    await tb.reset()
    tb.assert_no_error()
    if depth < (1 << tb.cfg.addr_bits):
        bad = depth + 1
        alias = bad & ((1 << (depth.bit_length() - 1)) - 1)
        await tb.run([(Op.STORE, bad, full, data), (Op.READ, bad, 0, None),
                      (Op.READ, alias, 0, None)], predicted=[tb.model.line(alias)])
        assert int(dut.error.value) == 1, f"address {bad} >= {depth} did not set error"
