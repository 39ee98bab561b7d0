"""Deliberately broken variants of the blocks: each must be caught by a check.

A mutant is a subclass of a block that overrides ONE of the block's design-decision
methods (the small methods the block factors its decisions into, e.g.
``TrackerTable._completes``) with the wrong decision. The formal harnesses
(:data:`verif.formal.tracker.MUTANTS`, ...) and the unit tests build a mutant instead of
the block and expect their checks to fail; `make mutants` (verif/mutation.py) runs
every registered mutant against its killing checks (``verif.mutation.KILLERS``).

Every mutant class is registered through :func:`mutant`, which checks at import that
each method it defines overrides a method of the block: a hook renamed in the design
fails here, instead of leaving a "mutant" that silently is the design.
"""

from __future__ import annotations

import inspect

from amaranth.hdl import Const

from hw.addrmap import AddressMap
from hw.arbiter import MemoryArbiter
from hw.dma import DmaEngine
from hw.dram import DramController
from hw.env.link import LinkModel
from hw.merge import StreamMerge
from hw.nmc import ComputeMemory
from hw.tracker import FIRE_SLOTS, TrackerTable

__all__ = ["mutant", "MUTANT_CLASSES",
           "TrackerFiresEarly", "TrackerLosesSpill", "TrackerIgnoresFireSlots",
           "TrackerFireSlotCompareInverted",
           "ArbiterWithoutHold", "ArbiterWithoutStarvationGuard",
           "MemoryWithoutHazardCheck", "MemoryWithoutStoreForwarding", "MemoryWithoutSnoop",
           "DmaWrongDestination", "AddrMapWrongRemoteBase", "MergeDropsGrant",
           "LinkDropsUnderBackpressure", "DramShortActivateToRead"]

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
class TrackerLosesSpill(TrackerTable):
    """Broken eviction: an evicted tile's count is not written back (its backing counter
    gets 0), so the tile's earlier updates are lost and it fires late or never. Caught
    by the tracker harness's ``no_lost_update`` / ``fires_exactly_at_threshold``
    (``tracker_mutant_loses_spill``) and by the cocotb and Amaranth tests' fire checks."""

    def _spill_count(self, count):
        return Const(0)


@mutant
class TrackerIgnoresFireSlots(TrackerTable):
    """Tracked heads are granted without a free fire slot: a fire pushed into a full fire
    queue is lost. Caught by
    tests/test_tracker_amaranth.py::test_fire_slots_hold_tracked_heads_not_dma_reads and
    the harness's ``fires_delivered`` (``tracker_mutant_ignores_fire_slots``)."""

    def _fire_slot_free(self, reserved):
        return Const(1)


@mutant
class TrackerFireSlotCompareInverted(TrackerTable):
    """The fire-slot test inverted: a tracked head is granted only when no slot is free,
    so with the fire queue drained no tracked request ever leaves its lane (the
    producer's stores stall for ever). Caught by the harness's ``progress``
    (``tracker_mutant_no_progress``)."""

    def _fire_slot_free(self, reserved):
        return reserved >= FIRE_SLOTS


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


# ---- DMA, address map, merge, link model, DRAM timing (verif/mutation.py lists each --
# ---- mutant's killing checks) ----------------------------------------------------------

@mutant
class DmaWrongDestination(DmaEngine):
    """Wrong DMA destination: the line's offset is ``dest_base`` instead of
    ``dest_base - base`` (the source base is not subtracted), so every packet addresses
    the wrong line of the next device. Caught by
    tests/test_dma_amaranth.py::test_dma_tiles_random_backpressure."""

    def _dest_offset(self, reg):
        return reg.dest_base


@mutant
class AddrMapWrongRemoteBase(AddressMap):
    """A REMOTE request's address is ``addr + remote_base`` (the region's base is not
    subtracted). Caught by tests/test_addrmap_amaranth.py::test_classification_random."""

    def _remote_address(self, addr, reg):
        return addr + reg.remote_base


@mutant
class MergeDropsGrant(StreamMerge):
    """A stalled grant is not held: while ``o`` waits, a newly valid input ahead in the
    round-robin order takes the output, and the presented payload changes. Caught by the
    stream rule on ``o`` (formal ``streams_merge``); no data is lost, so the simulator
    tests cannot see it."""

    def _holds_grant(self):
        return Const(0)


@mutant
class LinkDropsUnderBackpressure(LinkModel):
    """The link pops its head packet whenever it offers it, taken or not: a packet
    offered while ``rx`` is stalled is lost. Caught by
    tests/test_link_amaranth.py::test_backpressure_and_full_fifo_lose_nothing and the
    stream rule on ``rx`` (formal ``streams_link``)."""

    def _pops(self, offered, ready):
        return offered


@mutant
class DramShortActivateToRead(DramController):
    """A wrong timing constraint: a READ may follow its bank's ACT after ``t_rcd - 1``
    cycles. Caught by the lock-step test against the cycle model
    (tests/test_dram_amaranth.py::test_random_traces_are_cycle_exact_and_bit_exact)."""

    def _activate_to_read(self):
        return self._timing.t_rcd - 1
