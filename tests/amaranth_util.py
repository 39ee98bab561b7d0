"""Helpers for fast Amaranth-simulator tests: run a testbench, drive/collect streams."""

from __future__ import annotations

import random
from typing import Callable

from amaranth.sim import Simulator


def run(dut, *benches: Callable, deadline_cycles: int = 100_000, vcd: str | None = None) -> None:
    """Simulate ``dut`` with the given async testbenches (one clock, 1 MHz)."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for b in benches:
        sim.add_testbench(b)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run_until(deadline_cycles * 1e-6)
    else:
        sim.run_until(deadline_cycles * 1e-6)


async def send(ctx, port, payloads, rng: random.Random | None = None, idle: float = 0.0):
    """Drive a stream source: each payload once, random idle cycles with probability idle."""
    for p in payloads:
        while rng is not None and rng.random() < idle:
            ctx.set(port.valid, 0)
            await ctx.tick()
        ctx.set(port.valid, 1)
        ctx.set(port.payload, p)
        await ctx.tick().until(port.ready)
    ctx.set(port.valid, 0)


async def collect(ctx, port, count: int, out: list, rng: random.Random | None = None,
                  stall: float = 0.0, times: list | None = None, clock: list | None = None):
    """Sink a stream with random backpressure; append payloads (and cycle stamps)."""
    cycle = 0
    while len(out) < count:
        ready = not (rng is not None and rng.random() < stall)
        ctx.set(port.ready, int(ready))
        _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
        cycle += 1
        if ready and valid:
            out.append(payload)
            if times is not None:
                times.append(cycle)
    ctx.set(port.ready, 0)


async def csr_write(ctx, dut, writes) -> None:
    """Write ``(addr, value)`` pairs through ``dut``'s register bus (``csr_req`` /
    ``csr_resp``), one at a time; the responses are taken and ignored."""
    for addr, val in writes:
        ctx.set(dut.csr_req.valid, 1)
        ctx.set(dut.csr_req.payload, {"addr": addr, "write": 1, "wdata": val})
        ctx.set(dut.csr_resp.ready, 1)
        await ctx.tick().until(dut.csr_req.ready)
    ctx.set(dut.csr_req.valid, 0)
