"""Stream verification library: payload packing, cocotb stream drivers, test benches.

Modelled on cocotbext-axi: a test bench class owns the clock and the reset and hands out
bus models; sources and sinks take pluggable pause generators (verif/pacing.py). Layers,
usable separately:

* **Packing** (pure Python + numpy, no simulator): :class:`Struct` packs/unpacks a payload
  described by a spec field list (``[(name, width), ...]``, LSB first, as in
  :mod:`contract.spec`); :func:`pack_line` / :func:`unpack_line` convert a line of raw
  elements (lane 0 in the least significant bits) to and from one integer.
* **Clock** (cocotb 2.x): :class:`ClockDomain` starts a clock, tells the current cycle
  from the simulation time, waits ``n`` edges with one timer, and runs every stream driver
  of the clock in *one* coroutine that wakes only at the edges some driver needs.
* **Drivers**: :class:`StreamSource` drives ``<prefix>__valid`` and ``<prefix>__payload``
  and honours ``<prefix>__ready``: a queue of beats, each optionally not before a given
  cycle (a timed trace: issue times, jitter), idle cycles from a pause generator;
  :class:`StreamSink` drives ``<prefix>__ready`` (always, or only while it expects items,
  as a bus master waiting for responses), backpressure from a pause generator, and
  collects payloads. The only valid/ready handshake of the cocotb benches: the CSR bus
  model (verif/csr_driver.py) and the ring bench's producer and host ports use them.
* **Test benches**: :class:`TB` owns the clock domain and the reset and hands out
  seeded ``random.Random`` instances (seed printed); :class:`Scoreboard` compares what a
  DUT produced with what a model predicted, in order, with a message that names the
  stream, the index and both values.

Speed: Python wakes only where the stimulus needs it. A driver with nothing to do costs
nothing; a beat due in 500 cycles costs one timer; all drivers of a clock share one
wake-up per edge at which any of them acts (see :class:`ClockDomain`). Every shortcut
lands on exactly the edge a per-cycle loop would have reached, so stimulus and cycle
counts are those of a driver per port awaiting every edge.

Signal names follow Amaranth's flattening of a component's signature: a stream port
``req`` becomes ``req__valid``, ``req__ready``, ``req__payload``.
"""

from __future__ import annotations

import math
import random
from collections import deque
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .pacing import Pauses, pause_generator

__all__ = ["Struct", "pack_line", "unpack_line", "ClockDomain", "StreamSource", "StreamSink",
           "TB", "Scoreboard"]


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
# Clock domain: cycle numbers, timer jumps, the drivers' shared coroutine
# --------------------------------------------------------------------------------------

class ClockDomain:
    """A clock and the stream drivers it clocks.

    ``ClockDomain(signal, period_ns)`` starts the clock (first rising edge at the start
    time, then one per period). :attr:`cycle` is the number of the last rising edge,
    computed from the simulation time (no counting coroutine); only differences of it
    mean something. :meth:`edges` waits ``n`` edges with one timer instead of ``n``
    wake-ups.

    Drivers (:class:`StreamSource`, :class:`StreamSink`) register the cycle at which
    they next need to act (``_wake``); one coroutine serves them all: it sleeps until the
    earliest such edge (one timer to a quarter period before it, then the edge), then
    lets each due driver sample its inputs and set its outputs. A driver that gets work
    while that coroutine sleeps past its edge (e.g. a test calls ``send_nowait``) wakes
    it early. Within an edge drivers act in the order they became active; they only
    interact through their callbacks, and the outcome does not depend on that order."""

    def __init__(self, signal, period_ns: int):
        import cocotb
        from cocotb.clock import Clock
        from cocotb.simtime import convert, get_sim_time
        from cocotb.triggers import Event, RisingEdge
        self.signal = signal
        self.period_ns = period_ns
        #: clock period in simulator steps
        self.period = convert(period_ns, "ns", to="step")
        self._sim_time = get_sim_time
        self.edge = RisingEdge(signal)
        Clock(signal, period_ns, unit="ns").start()
        self.start_time = get_sim_time("step")
        #: edges crossed by a timer instead of a wake-up (speed diagnostics)
        self.edges_skipped = 0
        self._active: dict[Any, None] = {}     # drivers with a wake cycle, activation order
        self._kick = Event()
        self._sleep_until: float | None = None   # the serving coroutine's interruptible sleep
        cocotb.start_soon(self._serve())

    @property
    def cycle(self) -> int:
        """Number of the last rising edge (the edge at the start time is 0). Read right
        after a rising edge, it counts that edge."""
        return (self._sim_time("step") - self.start_time) // self.period

    def _timer_to_quarter_past(self, cycle: int):
        """A Timer to a quarter period after edge ``cycle`` (must be in the future)."""
        from cocotb.triggers import Timer
        t = self.start_time + cycle * self.period + self.period // 4
        return Timer(t - self._sim_time("step"), unit="step")

    async def edges(self, n: int) -> None:
        """Wait ``n`` >= 1 rising edges, exactly as ``ClockCycles(signal, n)``, but with one
        timer instead of ``n`` Python wake-ups: a timer to a quarter period past edge
        ``n - 1``, then edge ``n``. Off a clock edge it falls back to ClockCycles."""
        from cocotb.triggers import ClockCycles
        if n > 2 and (self._sim_time("step") - self.start_time) % self.period == 0:
            await self._timer_to_quarter_past(self.cycle + n - 1)
            await self.edge
            self.edges_skipped += n - 1
        else:
            await ClockCycles(self.signal, n)

    def deadline(self, cycle: int):
        """A trigger that fires a quarter period after edge ``cycle`` (or at once if that
        is past): for timeouts raced against an event with ``First``."""
        from cocotb.triggers import Timer
        t = self.start_time + cycle * self.period + self.period // 4 - self._sim_time("step")
        return Timer(max(t, 1), unit="step")

    # ---- the drivers' coroutine --------------------------------------------------------
    def _wake_at(self, driver, cycle: int | None) -> None:
        """``driver`` next acts at edge ``cycle`` (None: it has nothing to do)."""
        driver._wake = cycle
        if cycle is None:
            self._active.pop(driver, None)
            return
        self._active[driver] = None
        if self._sleep_until is not None and cycle < self._sleep_until:
            self._kick.set()

    async def _serve(self) -> None:
        from cocotb.triggers import First
        edge, kick, active = self.edge, self._kick, self._active
        while True:
            if not active:
                self._sleep_until = math.inf
                kick.clear()
                await kick.wait()
                self._sleep_until = None
                continue
            now = self.cycle
            wake = min(d._wake for d in active)
            if wake - now >= 2:
                self._sleep_until = wake
                kick.clear()
                timer = self._timer_to_quarter_past(wake - 1)
                woken = await First(timer, kick.wait())
                self._sleep_until = None
                if woken is not timer:
                    continue                    # new work: plan again
                self.edges_skipped += wake - now - 1
            await edge
            now = self.cycle
            for d in list(active):
                if d._wake is not None and d._wake <= now:
                    d._on_edge(now)


# --------------------------------------------------------------------------------------
# Stream drivers
# --------------------------------------------------------------------------------------

def _signals(dut, prefix: str):
    out = []
    for name in ("valid", "ready", "payload"):
        full = f"{prefix}__{name}"
        try:
            out.append(getattr(dut, full))
        except AttributeError:
            raise AttributeError(f"{dut._name} has no signal {full!r} (stream port "
                                 f"{prefix!r})") from None
    return out


class StreamSource:
    """Drive a valid/ready stream from a queue of integer payloads (beats).

    ``send_nowait(payloads, at=cycles)`` queues beats; beat ``i`` is presented no earlier
    than edge ``at[i]`` (a timed trace; ``at`` None: as soon as possible). A beat given
    to an idle source is presented at once (``valid`` high from now, so the DUT can take
    it at the next edge). ``pauses`` (verif/pacing.py; None: never) is asked once per
    cycle in which a beat could be presented: True keeps ``valid`` low for that cycle.
    ``valid`` never drops and the payload never changes before ``ready`` (stream rules).

    ``on_accept(payload, cycle)`` is called per transfer, ``cycle`` being the
    :attr:`ClockDomain.cycle` of the edge that took it. Counters: ``accepted``,
    ``idle_cycles`` (valid low by a pause), ``stall_cycles`` (valid high, ready low);
    ``last_accept`` is the cycle of the last transfer. ``ready_timeout`` (None: wait for
    ever): a beat presented for more than that many cycles without ``ready`` stops the
    source, and :meth:`wait_idle` raises AssertionError naming the source and the beat."""

    def __init__(self, clock: ClockDomain, dut, prefix: str, *, pauses: Pauses = None,
                 on_accept: Callable[[int, int], None] | None = None,
                 ready_timeout: int | None = None, name: str | None = None):
        from cocotb.triggers import Event
        self.valid, self.ready, self.payload = _signals(dut, prefix)
        self.name = name or prefix
        self.clock = clock
        self.pauses = pause_generator(pauses)
        self.on_accept = on_accept
        self.ready_timeout = ready_timeout
        self.accepted = self.idle_cycles = self.stall_cycles = 0
        self.last_accept: int | None = None
        self._words: deque[int] = deque()      # beats not yet accepted (head: presented)
        self._due: deque[int] = deque()        # their earliest cycles
        self._presenting = False
        self._since = 0                        # cycle the presented beat went valid
        self._wake: int | None = None
        self._failure: str | None = None
        self._idle = Event()
        self._idle.set()
        self._valid = 0
        self.valid.value = 0

    def set_pause_generator(self, pauses: Pauses) -> None:
        self.pauses = pause_generator(pauses)

    def clear_pause_generator(self) -> None:
        self.pauses = None

    @property
    def pending(self) -> int:
        """Beats not accepted yet (the presented one included)."""
        return len(self._words)

    def send_nowait(self, payloads: int | Iterable[int], *,
                    at: int | Iterable[int] | None = None) -> None:
        """Queue one payload or many; ``at``: the earliest cycle of each (see class doc)."""
        if isinstance(payloads, (int, np.integer)):
            payloads = [payloads]
            at = None if at is None else [at]
        words = [int(p) for p in payloads]
        if not words:
            return
        if at is None:
            due = [0] * len(words)
        else:
            due = [int(a) for a in at]
            if len(due) != len(words):
                raise ValueError(f"{self.name}: {len(words)} payloads but {len(due)} cycles")
        self._words.extend(words)
        self._due.extend(due)
        self._idle.clear()
        if self._wake is None and self._failure is None:
            self._next(self.clock.cycle)

    async def send(self, payloads: int | Iterable[int], *,
                   at: int | Iterable[int] | None = None) -> None:
        """Queue payloads and wait until every queued payload was accepted."""
        self.send_nowait(payloads, at=at)
        await self.wait_idle()

    async def wait_idle(self, *, ready_timeout: int | None = None,
                        context: Callable[[], str] | None = None) -> None:
        """Wait until every queued beat was accepted. ``ready_timeout`` sets the source's
        (see class doc); ``context()`` is added to the failure message."""
        if ready_timeout is not None:
            self.ready_timeout = ready_timeout
        if self._words and self._failure is None:
            await self._idle.wait()
        if self._failure is not None:
            raise AssertionError(self._failure + (f" ({context()})" if context else ""))

    def _set_valid(self, v: int) -> None:
        if v != self._valid:
            self.valid.value = v
            self._valid = v

    def _next(self, cycle: int) -> None:
        """Nothing presented at ``cycle``: present the head beat, or wait for it."""
        if not self._words:
            self._set_valid(0)
            self.clock._wake_at(self, None)
            self._idle.set()
            return
        due = self._due[0]
        if cycle < due:
            self._set_valid(0)
            self.clock._wake_at(self, due)
            return
        if self.pauses is not None and next(self.pauses):
            self._set_valid(0)
            self.idle_cycles += 1
            self.clock._wake_at(self, cycle + 1)
            return
        self.payload.value = self._words[0]
        self._set_valid(1)
        self._presenting = True
        self._since = cycle
        self.clock._wake_at(self, cycle + 1)

    def _on_edge(self, cycle: int) -> None:
        if not self._presenting:
            self._next(cycle)
            return
        if int(self.ready.value):
            word = self._words.popleft()
            self._due.popleft()
            self._presenting = False
            self.accepted += 1
            self.last_accept = cycle
            if self.on_accept is not None:
                self.on_accept(word, cycle)
            self._next(cycle)
            return
        self.stall_cycles += 1
        if self.ready_timeout is not None and cycle - self._since > self.ready_timeout:
            self._failure = (f"{self.name}: beat {self.accepted} not accepted for "
                             f"{self.ready_timeout} cycles ({len(self._words)} not accepted)")
            self.clock._wake_at(self, None)
            self._idle.set()
            return
        self.clock._wake_at(self, cycle + 1)


class StreamSink:
    """Accept a valid/ready stream and collect its payloads in ``items`` (integers; a
    payload with X/Z bits is kept as the simulator's value, and converting it fails).

    By default the sink is always willing (a consumer); with ``on_demand`` it is willing
    only while it expects items (:meth:`expect`: a bus master waiting for its
    responses). While willing, ``pauses`` (verif/pacing.py; None: never) is asked once
    per cycle: True holds ``ready`` low for that cycle. ``on_item(payload)`` is called per
    transfer (e.g. a :class:`Scoreboard`); ``last_item`` is the cycle of the last one."""

    def __init__(self, clock: ClockDomain, dut, prefix: str, *, pauses: Pauses = None,
                 on_item: Callable[[Any], None] | None = None, on_demand: bool = False,
                 name: str | None = None):
        from cocotb.triggers import Event
        self.valid, self.ready, self.payload = _signals(dut, prefix)
        self.name = name or prefix
        self.clock = clock
        self.pauses = pause_generator(pauses)
        self.on_item = on_item
        self.items: list[Any] = []
        self.last_item: int | None = None
        self._expected: int | None = 0 if on_demand else None   # None: unlimited
        self._taken = 0
        self._want: int | None = None
        self._count_event = Event()
        self._wake: int | None = None
        self._ready = 0
        self.ready.value = 0
        if not on_demand:
            self._arm(clock.cycle)

    def set_pause_generator(self, pauses: Pauses) -> None:
        self.pauses = pause_generator(pauses)

    def clear_pause_generator(self) -> None:
        self.pauses = None

    def expect(self, count: int) -> None:
        """On-demand sink: be willing until ``count`` more items arrived."""
        if self._expected is None:
            raise ValueError(f"{self.name}: expect() needs an on_demand sink")
        self._expected += int(count)
        if self._wake is None and self._expected > 0:
            self._arm(self.clock.cycle)

    def _arm(self, cycle: int) -> None:
        """Set ``ready`` for the edge after ``cycle`` (asking the pause generator)."""
        r = 0 if self.pauses is not None and next(self.pauses) else 1
        if r != self._ready:
            self.ready.value = r
            self._ready = r
        self.clock._wake_at(self, cycle + 1)

    def _on_edge(self, cycle: int) -> None:
        if self._ready and int(self.valid.value):
            raw = self.payload.value
            try:
                word = raw.to_unsigned()
            except ValueError:
                word = raw
            self.items.append(word)
            self.last_item = cycle
            if self.on_item is not None:
                self.on_item(word)
            if self._expected is not None:
                self._expected -= 1
            if self._want is not None and len(self.items) >= self._want:
                self._count_event.set()
        if self._expected == 0:
            if self._ready:
                self.ready.value = 0
                self._ready = 0
            self.clock._wake_at(self, None)
            return
        self._arm(cycle)

    async def wait_for(self, count: int, *, timeout_cycles: int | None = None,
                       stall_cycles: int | None = None) -> list[Any]:
        """Wait until ``count`` payloads were collected; return the first ``count``.
        AssertionError when that takes more than ``timeout_cycles`` cycles, or when no
        payload arrives for ``stall_cycles`` cycles (None: no limit)."""
        from cocotb.triggers import First
        start = self.clock.cycle
        while len(self.items) < count:
            limits = []
            if timeout_cycles is not None:
                limits.append((start + timeout_cycles,
                               f"within {timeout_cycles} cycles"))
            if stall_cycles is not None:
                last = start if self.last_item is None else max(start, self.last_item)
                limits.append((last + stall_cycles, f"(none for {stall_cycles} cycles)"))
            self._want = count
            self._count_event.clear()
            if not limits:
                await self._count_event.wait()
                continue
            deadline, why = min(limits)
            if self.clock.cycle >= deadline:
                self._want = None
                raise AssertionError(f"stream {self.name}: got {len(self.items)} of {count} "
                                     f"items {why}")
            await First(self._count_event.wait(), self.clock.deadline(deadline))
        self._want = None
        return self.items[:count]

    async def recv(self, **limits: int | None) -> Any:
        """The next item not yet received (waits for it; ``limits`` as :meth:`wait_for`)."""
        await self.wait_for(self._taken + 1, **limits)
        self._taken += 1
        return self.items[self._taken - 1]


# --------------------------------------------------------------------------------------
# Test benches
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
    """Base test bench in the cocotbext-axi style: clock, reset, seeded randomness, bus
    models.

    ``TB(dut)`` starts a clock of ``period_ns`` on ``dut.<clk>`` (:attr:`clock`, a
    :class:`ClockDomain`); ``await tb.reset()`` holds ``dut.<rst>`` high for ``cycles``
    edges. :meth:`source` / :meth:`sink` make stream drivers on that clock.
    ``tb.rng(name)`` returns a ``random.Random`` seeded from ``cocotb.RANDOM_SEED`` and
    ``name`` (printed once), so the same seed reproduces every stream's randomness
    independently of the others."""

    def __init__(self, dut, *, clk: str = "clk", rst: str = "rst", period_ns: int = 10):
        import cocotb
        self.dut = dut
        self.rst = getattr(dut, rst)
        self.log = dut._log
        self.seed = int(cocotb.RANDOM_SEED)
        # cocotb derives this per-test seed from the run's seed (COCOTB_RANDOM_SEED, printed
        # by cocotb at start-up): the same run seed reproduces every test's randomness.
        self.log.info("test seed=%d", self.seed)
        self.clock = ClockDomain(getattr(dut, clk), period_ns)
        self.clk = self.clock.signal

    @property
    def cycle(self) -> int:
        """The clock's :attr:`ClockDomain.cycle`."""
        return self.clock.cycle

    def rng(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}:{name}")

    def source(self, prefix: str, **kw) -> StreamSource:
        """A :class:`StreamSource` on this bench's clock for port ``prefix``."""
        return StreamSource(self.clock, self.dut, prefix, **kw)

    def sink(self, prefix: str, **kw) -> StreamSink:
        """A :class:`StreamSink` on this bench's clock for port ``prefix``."""
        return StreamSink(self.clock, self.dut, prefix, **kw)

    async def reset(self, cycles: int = 2) -> None:
        from cocotb.triggers import RisingEdge
        self.rst.value = 1
        for _ in range(cycles):
            await RisingEdge(self.clk)
        self.rst.value = 0
        await RisingEdge(self.clk)

    async def cycles(self, n: int) -> None:
        """Wait ``n`` clock edges (:meth:`ClockDomain.edges`)."""
        await self.clock.edges(n)

    async def wait_until(self, cond: Callable[[], bool], *, timeout_cycles: int, what: str) -> int:
        """Wait (clock by clock) until ``cond()`` is true; return the cycles waited."""
        from cocotb.triggers import RisingEdge
        for n in range(timeout_cycles):
            if cond():
                return n
            await RisingEdge(self.clk)
        raise AssertionError(f"timeout after {timeout_cycles} cycles waiting for {what}")
