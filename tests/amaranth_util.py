"""Helpers for fast Amaranth-simulator tests: run a testbench, drive/collect streams.

The streams are paced like the cocotb drivers' (verif/streams.py), by the pause
generators of verif/pacing.py: ``rng`` and a probability give a seeded random one
(:func:`verif.pacing.random_pauses`, one draw per cycle asked), or ``pauses`` passes any
generator.
"""

from __future__ import annotations

import random
from typing import Callable

from amaranth.sim import Simulator

from verif.pacing import Pauses, pause_generator, random_pauses


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


def _pauses(rng: random.Random | None, probability: float, pauses: Pauses):
    """The pause generator of a helper call: ``pauses`` if given, else random pauses of
    ``probability`` drawn from ``rng`` (None: no pauses)."""
    if pauses is not None:
        return pause_generator(pauses)
    return None if rng is None else random_pauses(rng, probability)


async def send(ctx, port, payloads, rng: random.Random | None = None, idle: float = 0.0, *,
               pauses: Pauses = None):
    """Drive a stream source: each payload once; before each, idle cycles while the pause
    generator says so (random with probability ``idle`` from ``rng``, or ``pauses``)."""
    gen = _pauses(rng, idle, pauses)
    for p in payloads:
        while gen is not None and next(gen):
            ctx.set(port.valid, 0)
            await ctx.tick()
        ctx.set(port.valid, 1)
        ctx.set(port.payload, p)
        await ctx.tick().until(port.ready)
    ctx.set(port.valid, 0)


async def collect(ctx, port, count: int, out: list, rng: random.Random | None = None,
                  stall: float = 0.0, times: list | None = None, clock: list | None = None, *,
                  pauses: Pauses = None):
    """Sink a stream, ``ready`` low in the cycles the pause generator says so (random with
    probability ``stall`` from ``rng``, or ``pauses``); append payloads (and cycle stamps
    to ``times``)."""
    gen = _pauses(rng, stall, pauses)
    cycle = 0
    while len(out) < count:
        ready = not (gen is not None and next(gen))
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
    ``csr_resp``), one at a time (:func:`send`); the responses are taken and ignored."""
    ctx.set(dut.csr_resp.ready, 1)
    await send(ctx, dut.csr_req, [{"addr": addr, "write": 1, "wdata": val} for addr, val in writes])
