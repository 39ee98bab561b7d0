"""Seeded random stalls for the test environment (issue #18): :class:`StallSource`, a
random stall bit from a xorshift32 generator, and :class:`StreamStall`, a stream gate it
closes in random cycles within the stream rules. The ring (:class:`hw.env.ring.T3Ring`)
puts one on every link and one on every unit's memory request handshake; no Python runs
per cycle (the testbench sets a seed and a probability once), and
:func:`stall_pattern` is the reference of a generator's output."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from contract.spec import COUNTER_BITS, ConfigError

from ..component import check_int

__all__ = ["STALL_SEED_BITS", "STALL_PROB_BITS", "StallSource", "StreamStall",
           "stall_pattern", "stall_prob_code"]

#: width of ``stall_seed`` and of the stall generators' state
STALL_SEED_BITS = 32
#: width of ``stall_prob``: the stall probability per cycle is ``stall_prob / 2**STALL_PROB_BITS``
STALL_PROB_BITS = 16
_STALL_MASK = (1 << STALL_SEED_BITS) - 1
#: the seed mix (odd constants of the golden ratio and of murmur3's finaliser)
_STALL_INDEX_MUL = 0x9E3779B1
_STALL_SEED_MUL = 0x85EBCA6B


def stall_prob_code(p: float) -> int:
    """``stall_prob`` for a probability ``p`` per cycle in [0, 1): round(p x 2**16),
    at most 2**16 - 1; 0 exactly for ``p`` = 0 (the gates are then wires)."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ConfigError(f"stall probability {p!r}: must be a number in [0, 1)")
    return min(round(p * (1 << STALL_PROB_BITS)), (1 << STALL_PROB_BITS) - 1)


def stall_start_state(seed: int, index: int) -> int:
    """The generator's first state: ``seed`` mixed with the instance ``index`` (a
    multiply and a fold of the high half, so that neighbouring seeds and instances start
    far apart), never 0."""
    x = ((seed & _STALL_MASK) ^ ((index + 1) * _STALL_INDEX_MUL)) & _STALL_MASK
    x = (x * _STALL_SEED_MUL) & _STALL_MASK
    x ^= x >> 16
    return x or 1


def stall_next_state(x: int) -> int:
    """One step of the generator: xorshift32 (13, 17, 5); never 0 from non-zero."""
    x ^= (x << 13) & _STALL_MASK
    x ^= x >> 17
    x ^= (x << 5) & _STALL_MASK
    return x


def stall_pattern(seed: int, index: int, prob: int, cycles: int) -> list[bool]:
    """The reference of :class:`StallSource`: its ``stall`` output in the first
    ``cycles`` cycles after reset (cycle 0 loads the seed and never stalls; from cycle 1
    on, stall when the state's top :data:`STALL_PROB_BITS` bits are below ``prob``)."""
    out, state = [], 0
    for _ in range(cycles):
        out.append(state != 0 and state >> (STALL_SEED_BITS - STALL_PROB_BITS) < prob)
        state = stall_start_state(seed, index) if state == 0 else stall_next_state(state)
    return out


class StallSource(wiring.Component):
    """A seeded random stall bit: ``stall`` is 1 in a cycle with probability
    ``prob / 2**16``, drawn by a xorshift32 generator (test environment: the ring's
    random stalls on every link and on every memory's request handshake, issue #18).

    The generator is loaded in the first cycle after reset from ``seed`` mixed with the
    instance's ``index`` (:func:`stall_start_state`), so every instance of a ring has its
    own stream of stall cycles and the same seed gives the same streams; the testbench
    sets ``seed`` and ``prob`` before the reset and leaves them. With ``prob`` = 0,
    ``stall`` is constant 0. No Python runs per cycle: :func:`stall_pattern` is the
    reference.

    Parameters
    ----------
    index : int
        The instance number, >= 0 (mixed into the seed).

    Attributes
    ----------
    seed : In(STALL_SEED_BITS)
        The run's stall seed (read in the first cycle after reset).
    prob : In(STALL_PROB_BITS)
        Stall probability per cycle, in units of 2**-16.
    active : In(1)
        The gated handshake offers a transfer this cycle (``valid``; counts only).
    stall : Out(1)
        Hold the handshake this cycle.
    stalled : Out(COUNTER_BITS)
        Cycles with ``stall`` and ``active``: transfers held back (wrapping).
    """

    def __init__(self, *, index: int):
        self._index = check_int("StallSource", "index", index, lo=0)
        super().__init__({
            "seed": In(STALL_SEED_BITS),
            "prob": In(STALL_PROB_BITS),
            "active": In(1),
            "stall": Out(1),
            "stalled": Out(COUNTER_BITS),
        })

    @property
    def index(self) -> int:
        return self._index

    def elaborate(self, platform):
        m = Module()
        bits = STALL_SEED_BITS
        state = Signal(bits)
        start = Signal(bits)
        mixed = Signal(bits)
        m.d.comb += [
            mixed.eq((self.seed ^ ((self._index + 1) * _STALL_INDEX_MUL & _STALL_MASK))
                     * _STALL_SEED_MUL),
            start.eq(mixed ^ (mixed >> 16)),
            self.stall.eq((state != 0) & (state[bits - STALL_PROB_BITS:] < self.prob)),
        ]
        with m.If(state == 0):
            m.d.sync += state.eq(Mux(start == 0, 1, start))
        with m.Else():
            s1 = state ^ (state << 13)[:bits]
            s2 = s1 ^ (s1 >> 17)
            m.d.sync += state.eq(s2 ^ (s2 << 5)[:bits])
        with m.If(self.stall & self.active):
            m.d.sync += self.stalled.eq(self.stalled + 1)
        return m


class StreamStall(wiring.Component):
    """A stream pass-through that a :class:`StallSource` holds closed in random cycles,
    within the stream rules (test environment, issue #18).

    A stall only delays the *start* of an offer: in a stalled cycle with no offer
    pending, ``o.valid`` and ``i.ready`` are both low (nothing transfers on either side,
    so nothing is lost or duplicated). An offer made on ``o`` and not yet taken stays up,
    stall or not, as the rules require (after ``valid & ~ready``, ``valid`` stays high
    with the same payload; ``i`` keeps it, since its source obeys the same rule). The
    payload passes unchanged; with ``prob`` = 0 it is a wire.

    Parameters
    ----------
    payload_shape : shape-like
        The stream's payload.
    index : int
        The stall generator's instance number (:class:`StallSource`).

    Attributes
    ----------
    i : In(stream.Signature(payload_shape))
    o : Out(stream.Signature(payload_shape))
    seed, prob : In
        As :class:`StallSource`'s.
    stalled : Out(COUNTER_BITS)
        Cycles an offer on ``i`` was held back by a stall.
    """

    def __init__(self, *, payload_shape, index: int):
        self._source = StallSource(index=index)
        super().__init__({
            "i": In(stream.Signature(payload_shape)),
            "o": Out(stream.Signature(payload_shape)),
            "seed": In(STALL_SEED_BITS),
            "prob": In(STALL_PROB_BITS),
            "stalled": Out(COUNTER_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.source = src = self._source
        pending = Signal()      # o offered last cycle and not taken: must stay offered
        hold = Signal()
        m.d.comb += [
            hold.eq(src.stall & ~pending),
            src.seed.eq(self.seed), src.prob.eq(self.prob),
            src.active.eq(self.i.valid & ~pending),
            self.stalled.eq(src.stalled),
            self.o.payload.eq(self.i.payload),
            self.o.valid.eq(self.i.valid & ~hold),
            self.i.ready.eq(self.o.ready & ~hold),
        ]
        m.d.sync += pending.eq(self.o.valid & ~self.o.ready)
        return m
