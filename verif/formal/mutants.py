"""Deliberately broken variants of the blocks: each must be caught by a check.

A mutant is a subclass of a block that overrides ONE of the block's design-decision
methods (the small methods the block factors its decisions into, e.g.
``TrackerTable._completes``) with the wrong decision. The formal harnesses
(:data:`verif.formal.tracker.MUTANTS`, ...) and the unit tests build a mutant instead of
the block and expect their checks to fail.

Every mutant class is registered through :func:`mutant`, which checks at import that
each method it defines overrides a method of the block: a hook renamed in the design
fails here, instead of leaving a "mutant" that silently is the design.
"""

from __future__ import annotations

import inspect

from amaranth.hdl import Const

from hw.arbiter import MemoryArbiter
from hw.nmc import ComputeMemory
from hw.tracker import TrackerTable

__all__ = ["mutant", "MUTANT_CLASSES",
           "TrackerFiresEarly", "TrackerWithoutBreaker", "TrackerFireRoomForAll",
           "ArbiterWithoutHold", "ArbiterWithoutStarvationGuard",
           "MemoryWithoutHazardCheck", "MemoryWithoutStoreForwarding", "MemoryWithoutSnoop"]

#: every mutant class, by name
MUTANT_CLASSES: dict[str, type] = {}


def mutant(cls: type) -> type:
    """Class decorator: register ``cls``, a broken variant of the block it derives from;
    every method it defines must override a method of that block (with the same
    parameters), and it must define at least one."""
    block = cls.__mro__[1]
    own = {name: v for name, v in vars(cls).items() if inspect.isfunction(v)}
    if not own:
        raise TypeError(f"mutant {cls.__name__}: overrides nothing of {block.__name__}")
    for name, fn in own.items():
        base = getattr(block, name, None)
        if not inspect.isfunction(base):
            raise TypeError(f"mutant {cls.__name__}: {block.__name__} has no method {name!r} "
                            f"to override (renamed hook?)")
        if inspect.signature(fn).parameters.keys() != inspect.signature(base).parameters.keys():
            raise TypeError(f"mutant {cls.__name__}.{name}{inspect.signature(fn)}: the "
                            f"parameters differ from {block.__name__}.{name}"
                            f"{inspect.signature(base)}")
    MUTANT_CLASSES[cls.__name__] = cls
    return cls


# ---- tracker --------------------------------------------------------------------------

@mutant
class TrackerFiresEarly(TrackerTable):
    """Fires one count early (count == threshold - 1). Caught by the tracker harness's
    ``fires_exactly_at_threshold`` (``tracker_mutant_fire_early``)."""

    def _completes(self, count_after, threshold):
        return count_after + 1 >= threshold


@mutant
class TrackerWithoutBreaker(TrackerTable):
    """No deadlock breaker: a full table with both the producer and the link heads
    needing a new entry hangs. Caught by the harness's ``progress``
    (``tracker_mutant_no_breaker``)."""

    def _deadlock_breaker(self, producer_stall, link_stall):
        return Const(0)


@mutant
class TrackerFireRoomForAll(TrackerTable):
    """The design before the ring deadlock fix: every tracked request waits for room in
    the fire register, not only the completing one. Caught by
    tests/test_tracker_amaranth.py::test_full_fire_register_holds_only_the_completing_request."""

    def _needs_fire_room(self, completes):
        return Const(1)


# ---- memory-controller arbiter --------------------------------------------------------

@mutant
class ArbiterWithoutHold(MemoryArbiter):
    """A stalled grant is not held: the next cycle may present the other input.
    Caught by the stream rule on ``out`` (``arbiter_mutant_nohold``)."""

    def _holds_grant(self):
        return Const(0)


@mutant
class ArbiterWithoutStarvationGuard(MemoryArbiter):
    """MCA never forces a waiting communication request through: it starves behind
    compute. Caught by the starvation bound (``arbiter_mutant_starve``)."""

    def _starved(self, wait, limit):
        return Const(0)


# ---- compute-enhanced memory ----------------------------------------------------------

@mutant
class MemoryWithoutHazardCheck(ComputeMemory):
    """An UPDATE is not held behind an unfinished overlapping UPDATE to its line: it
    reads a stale operand. Caught by ``read_returns_shadow`` (``nmc_mutant_no_hazard``)."""

    def _update_hazard(self, req, unfinished):
        return Const(0)


@mutant
class MemoryWithoutStoreForwarding(ComputeMemory):
    """The operand stage ignores STOREs still in s[1..L-1]. Caught by
    ``read_returns_shadow`` (``nmc_mutant_no_store_forward``)."""

    def _forward_stores(self, operand, addr, in_flight):
        return operand


@mutant
class MemoryWithoutSnoop(ComputeMemory):
    """Operand and READ lines miss the write stage's write of the same cycle. Caught
    by ``read_returns_shadow`` (``nmc_mutant_no_snoop``)."""

    def _snoop(self, line, addr, write):
        return line
