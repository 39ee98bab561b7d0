"""Stream verification library: payload packing, cocotb stream drivers, TB helpers.

Three layers, usable separately:

* **Packing** (pure Python + numpy, no simulator): :class:`Struct` packs/unpacks a payload
  described by a spec field list (``[(name, width), ...]``, LSB first, as in
  :mod:`contract.spec`); :func:`pack_line` / :func:`unpack_line` convert a line of raw
  elements (lane 0 in the least significant bits) to and from one integer.
* **Drivers** (cocotb 2.x): :class:`StreamSource` drives ``<prefix>__valid`` and
  ``<prefix>__payload`` and honours ``<prefix>__ready``, with seeded random idle
  cycles; :class:`StreamSink` drives ``<prefix>__ready`` with seeded random backpressure
  and collects payloads. Both are transaction-level: one coroutine each, one clock
  await per cycle and nothing else per cycle.
* **Test benches**: :class:`TB` starts the clock, resets, hands out seeded
  ``random.Random`` instances (seed printed) and counts cycles; :class:`Scoreboard`
  compares what a DUT produced with what a model predicted, in order, with a message
  that names the stream, the index and both values.

Signal names follow Amaranth's flattening of a component's signature: a stream port
``req`` becomes ``req__valid``, ``req__ready``, ``req__payload``.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["Struct", "pack_line", "unpack_line", "StreamSource", "StreamSink", "TB",
           "Scoreboard", "ClockCounter"]


# --------------------------------------------------------------------------------------
# Packing
# --------------------------------------------------------------------------------------

class Struct:
    """Pack/unpack integers laid out as a spec field list (name, width), LSB first.

    >>> s = Struct([("op", 2), ("addr", 4)])
    >>> s.pack(op=1, addr=3)
    13
    >>> s.unpack(13)
    {'op': 1, 'addr': 3}
    """

    def __init__(self, fields: Sequence[tuple[str, int]]):
        self.fields = [(str(n), int(w)) for n, w in fields]
        names = [n for n, _ in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"Struct: duplicate field names in {names}")
        self.offsets: dict[str, tuple[int, int]] = {}
        off = 0
        for n, w in self.fields:
            if w < 1:
                raise ValueError(f"Struct: field {n!r} has width {w}: must be >= 1")
            self.offsets[n] = (off, w)
            off += w
        self.width = off

    def pack(self, values: Mapping[str, int] | None = None, /, **kw: int) -> int:
        """Fields -> integer. Missing fields are 0; unknown fields and values that do
        not fit their width are errors."""
        vals = dict(values or {}, **kw)
        word = 0
        for name, v in vals.items():
            if name not in self.offsets:
                raise ValueError(f"Struct.pack: unknown field {name!r} (fields: "
                                 f"{', '.join(self.offsets)})")
            off, w = self.offsets[name]
            v = int(v)
            if not 0 <= v < (1 << w):
                raise ValueError(f"Struct.pack: {name}={v}: does not fit in {w} bits")
            word |= v << off
        return word

    def unpack(self, word: int) -> dict[str, int]:
        word = int(word)
        return {n: (word >> off) & ((1 << w) - 1) for n, (off, w) in self.offsets.items()}

    def get(self, word: int, name: str) -> int:
        off, w = self.offsets[name]
        return (int(word) >> off) & ((1 << w) - 1)


def pack_line(elements, elem_bits: int) -> int:
    """Raw elements (lane 0 first) -> one integer with lane 0 in the low bits."""
    dt = {8: "<u1", 16: "<u2", 32: "<u4", 64: "<u8"}.get(elem_bits)
    arr = np.asarray(elements)
    if dt is None:
        return sum(int(e) << (i * elem_bits) for i, e in enumerate(arr.tolist()))
    return int.from_bytes(arr.astype(dt).tobytes(), "little")


def unpack_line(word: int, elem_bits: int, lanes: int, dtype=None) -> np.ndarray:
    """One integer -> ``lanes`` raw elements (lane 0 from the low bits)."""
    dt = {8: "<u1", 16: "<u2", 32: "<u4", 64: "<u8"}.get(elem_bits)
    if dt is None:
        mask = (1 << elem_bits) - 1
        out = np.array([(int(word) >> (i * elem_bits)) & mask for i in range(lanes)], dtype=object)
        return out if dtype is None else out.astype(dtype)
    out = np.frombuffer(int(word).to_bytes(lanes * elem_bits // 8, "little"), dtype=dt)
    return out.astype(dtype or dt.replace("<", ""))


# --------------------------------------------------------------------------------------
# cocotb drivers
# --------------------------------------------------------------------------------------

def _sig(dut, prefix: str, name: str):
    full = f"{prefix}__{name}"
    try:
        return getattr(dut, full)
    except AttributeError:
        raise AttributeError(f"{dut._name} has no signal {full!r} (stream port {prefix!r})") from None


def _rng(rng: random.Random | int | None) -> random.Random:
    if isinstance(rng, random.Random):
        return rng
    return random.Random(rng)


class ClockCounter:
    """Counts rising edges of ``clk`` from when it is started (``.cycles``)."""

    def __init__(self, clk):
        import cocotb
        from cocotb.triggers import RisingEdge
        self.cycles = 0
        self._edge = RisingEdge(clk)

        async def count():
            while True:
                await self._edge
                self.cycles += 1
        self._task = cocotb.start_soon(count())


class StreamSource:
    """Drive a valid/ready stream from a queue of integer payloads.

    ``idle_prob`` is the probability of inserting an idle cycle before each beat
    (seeded by ``rng``). ``valid`` never drops and the payload never changes before
    ``ready`` (stream rules). ``on_accept(payload, cycle)`` is called per transfer,
    ``cycle`` being the number of rising edges since the source was created (the edge
    at which the transfer happened). ``accepted`` counts transfers; ``idle_cycles``/``stall_cycles`` count cycles with
    ``valid`` low by choice / ``valid`` high and ``ready`` low."""

    def __init__(self, dut, prefix: str, clk, *, rng: random.Random | int | None = None,
                 idle_prob: float = 0.0,
                 on_accept: Callable[[int, int], None] | None = None):
        import cocotb
        from cocotb.triggers import Event, RisingEdge
        if not 0.0 <= idle_prob < 1.0:
            raise ValueError(f"StreamSource: idle_prob={idle_prob}: must be in [0, 1)")
        self.valid = _sig(dut, prefix, "valid")
        self.ready = _sig(dut, prefix, "ready")
        self.payload = _sig(dut, prefix, "payload")
        self.rng, self.idle_prob, self.on_accept = _rng(rng), idle_prob, on_accept
        self.queue: deque[int] = deque()
        self.accepted = self.idle_cycles = self.stall_cycles = self.cycle = 0
        self._edge = RisingEdge(clk)
        self._drained = Event()
        self.valid.value = 0
        self._task = cocotb.start_soon(self._run())

    def send_nowait(self, payloads: int | Iterable[int]) -> None:
        """Queue one payload or many."""
        if isinstance(payloads, (int, np.integer)):
            payloads = [payloads]
        self.queue.extend(int(p) for p in payloads)
        self._drained.clear()

    async def send(self, payloads: int | Iterable[int]) -> None:
        """Queue payloads and wait until all queued payloads were accepted."""
        self.send_nowait(payloads)
        await self.wait_idle()

    async def wait_idle(self) -> None:
        if self.queue or int(self.valid.value):
            await self._drained.wait()

    async def _run(self) -> None:
        edge, rng, p_idle = self._edge, self.rng, self.idle_prob
        while True:
            if not self.queue:
                # idle: keep counting edges so ``cycle`` stays absolute
                self.valid.value = 0
                self._drained.set()
                while not self.queue:
                    await edge
                    self.cycle += 1
            while p_idle and rng.random() < p_idle:
                self.valid.value = 0
                self.idle_cycles += 1
                await edge
                self.cycle += 1
            word = self.queue.popleft()
            self.payload.value = word
            self.valid.value = 1
            while True:
                await edge
                self.cycle += 1
                if int(self.ready.value):
                    break
                self.stall_cycles += 1
            self.accepted += 1
            if self.on_accept is not None:
                self.on_accept(word, self.cycle)
            if not self.queue:
                self.valid.value = 0


class StreamSink:
    """Accept a valid/ready stream and collect its payloads (integers) in ``items``.

    ``ready`` is low with probability ``backpressure_prob`` each cycle (seeded).
    ``on_item(payload)`` is called per transfer (e.g. a :class:`Scoreboard`).
    ``expected`` is the default item count of :meth:`wait_for`."""

    def __init__(self, dut, prefix: str, clk, *, rng: random.Random | int | None = None,
                 backpressure_prob: float = 0.0, expected: int | None = None,
                 on_item: Callable[[int], None] | None = None):
        import cocotb
        from cocotb.triggers import Event, RisingEdge
        if not 0.0 <= backpressure_prob < 1.0:
            raise ValueError(f"StreamSink: backpressure_prob={backpressure_prob}: must be in [0, 1)")
        self.valid = _sig(dut, prefix, "valid")
        self.ready = _sig(dut, prefix, "ready")
        self.payload = _sig(dut, prefix, "payload")
        self.rng, self.bp, self.on_item = _rng(rng), backpressure_prob, on_item
        self.items: list[int] = []
        self.expected = expected
        self._clk = clk
        self._edge = RisingEdge(clk)
        self._count_event = Event()
        self._want: int | None = None
        self.ready.value = 0 if backpressure_prob else 1
        self._task = cocotb.start_soon(self._run())

    async def _run(self) -> None:
        edge, rng, bp = self._edge, self.rng, self.bp
        ready = 1
        while True:
            if bp:
                ready = 0 if rng.random() < bp else 1
                self.ready.value = ready
            await edge
            if ready and int(self.valid.value):
                word = self.payload.value.to_unsigned()
                self.items.append(word)
                if self.on_item is not None:
                    self.on_item(word)
                if self._want is not None and len(self.items) >= self._want:
                    self._count_event.set()

    async def wait_for(self, count: int | None = None, *,
                       timeout_cycles: int | None = None) -> list[int]:
        """Wait until ``count`` (default: ``expected``) payloads were collected, for at
        most ``timeout_cycles`` clock cycles when given (AssertionError after); return
        the first ``count`` payloads."""
        from cocotb.triggers import ClockCycles, First
        if count is None:
            if self.expected is None:
                raise ValueError("StreamSink.wait_for: no count given and no expected count")
            count = self.expected
        if len(self.items) < count:
            self._want = count
            self._count_event.clear()
            if timeout_cycles is None:
                await self._count_event.wait()
            else:
                await First(self._count_event.wait(), ClockCycles(self._clk, timeout_cycles))
                if len(self.items) < count:
                    raise AssertionError(f"stream {self.payload._name}: got {len(self.items)} of "
                                         f"{count} items within {timeout_cycles} cycles")
        return self.items[:count]


# --------------------------------------------------------------------------------------
# Test bench helpers
# --------------------------------------------------------------------------------------

class Scoreboard:
    """In-order comparison of DUT outputs against model predictions.

    ``expect(item)`` queues a prediction; ``observe(item)`` (usable as a sink's
    ``on_item``) pops the oldest prediction and records a mismatch. ``check()`` raises
    an AssertionError naming the first mismatches, unexpected items or missing items.
    ``fmt`` turns an item into text for messages."""

    def __init__(self, name: str, *, fmt: Callable[[Any], str] = repr, max_report: int = 5):
        self.name, self.fmt, self.max_report = name, fmt, max_report
        self.expected: deque[Any] = deque()
        self.observed = 0
        self.errors: list[str] = []

    def expect(self, item: Any) -> None:
        self.expected.append(item)

    def observe(self, item: Any) -> None:
        idx = self.observed
        self.observed += 1
        if not self.expected:
            self.errors.append(f"{self.name}[{idx}]: unexpected item {self.fmt(item)}")
            return
        want = self.expected.popleft()
        if not _equal(item, want):
            self.errors.append(f"{self.name}[{idx}]: got {self.fmt(item)}, want {self.fmt(want)}")

    def check(self) -> None:
        errs = list(self.errors)
        if self.expected:
            errs.append(f"{self.name}: {len(self.expected)} expected items never came "
                        f"(next: {self.fmt(self.expected[0])})")
        if errs:
            more = f" (+{len(errs) - self.max_report} more)" if len(errs) > self.max_report else ""
            raise AssertionError("; ".join(errs[:self.max_report]) + more)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


class TB:
    """Base test bench in the cocotbext-axi style: clock, reset, seeded randomness.

    ``TB(dut)`` starts a clock of ``period_ns`` on ``dut.<clk>``; ``await tb.reset()``
    holds ``dut.<rst>`` high for ``cycles`` edges. ``tb.rng(name)`` returns a
    ``random.Random`` seeded from ``cocotb.RANDOM_SEED`` and ``name`` (printed once), so
    the same seed reproduces every stream's randomness independently of the others."""

    def __init__(self, dut, *, clk: str = "clk", rst: str = "rst", period_ns: int = 10):
        import cocotb
        from cocotb.clock import Clock
        self.dut = dut
        self.clk = getattr(dut, clk)
        self.rst = getattr(dut, rst)
        self.log = dut._log
        self.seed = int(cocotb.RANDOM_SEED)
        # cocotb derives this per-test seed from the run's seed (COCOTB_RANDOM_SEED, printed
        # by cocotb at start-up): the same run seed reproduces every test's randomness.
        self.log.info("test seed=%d", self.seed)
        Clock(self.clk, period_ns, unit="ns").start()

    def rng(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}:{name}")

    async def reset(self, cycles: int = 2) -> None:
        from cocotb.triggers import RisingEdge
        self.rst.value = 1
        for _ in range(cycles):
            await RisingEdge(self.clk)
        self.rst.value = 0
        await RisingEdge(self.clk)

    async def cycles(self, n: int) -> None:
        from cocotb.triggers import ClockCycles
        await ClockCycles(self.clk, n)

    async def wait_until(self, cond: Callable[[], bool], *, timeout_cycles: int, what: str) -> int:
        """Wait (clock by clock) until ``cond()`` is true; return the cycles waited."""
        from cocotb.triggers import RisingEdge
        for n in range(timeout_cycles):
            if cond():
                return n
            await RisingEdge(self.clk)
        raise AssertionError(f"timeout after {timeout_cycles} cycles waiting for {what}")
