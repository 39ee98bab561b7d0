"""Memory-controller arbiter (MCA) between the compute and the communication streams.

Two policies, selected at run time by the ``policy`` input (a register in the T3 unit):

* ``Policy.FIFO`` -- the plain baseline: round-robin between the two streams whenever both
  have a request (equal share of memory bandwidth, as a FIFO memory queue would give
  under steady contention).
* ``Policy.MCA`` -- the paper's T3-MCA: the compute stream (the GEMM's requests) always
  wins; a communication request is granted only while compute has nothing to issue *and*
  the memory queue occupancy ``queue_level`` is below ``threshold``. To bound how long
  communication can wait, a request that has waited ``starve_limit`` cycles is granted
  next, ahead of compute.

Starvation bound (proved by k-induction in verif/formal/arbiter.py): with ``out.ready``
held high, a communication request waits at most ``starve_limit`` cycles from the first
cycle it is valid to its grant.

Stream rules: a grant presented on ``out`` is held (same source, same payload) until it
is accepted, so ``out.valid``/``out.payload`` never change while stalled.
"""

from __future__ import annotations

import enum

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from contract.spec import COUNTER_BITS, MCA_STARVE_BITS

__all__ = ["Policy", "MemoryArbiter"]


class Policy(enum.IntEnum):
    """The ``policy`` input of :class:`MemoryArbiter` (the unit's ``ARB`` register)."""
    FIFO = 0
    MCA = 1


class MemoryArbiter(wiring.Component):
    """Two-input arbiter with the plain (round-robin) and MCA policies (see the module doc).

    Latency 0: the grant is combinational (``out.valid`` in the cycle an input is valid).
    A grant presented on ``out`` and not taken is held, with its payload, until taken.

    Parameters
    ----------
    payload_shape : shape-castable
        The request payload, the same on both inputs and on ``out``.
    level_bits : int
        Width of ``queue_level`` and ``threshold`` (memory-queue occupancy), 1..16.
    starve_bits : int
        Width of ``starve_limit`` (cycles), 1..32 (default
        :data:`contract.spec.MCA_STARVE_BITS`).

    Attributes
    ----------
    compute : In(stream.Signature(payload_shape))
        The compute stream (the GEMM's requests).
    comm : In(stream.Signature(payload_shape))
        The communication stream.
    out : Out(stream.Signature(payload_shape))
        The granted request.
    policy : In(1)
        :class:`Policy` (``FIFO``: round-robin; ``MCA``: compute first).
    queue_level : In(level_bits)
        Current occupancy of the memory queue (entries).
    threshold : In(level_bits)
        MCA: a communication request is granted while compute has nothing to issue
        only if ``queue_level < threshold`` (the starvation limit overrides both).
    starve_limit : In(starve_bits)
        MCA: a communication request that has waited this many cycles is granted next,
        ahead of compute (0 behaves as 1).
    comm_wait_max : Out(starve_bits + 1)
        Longest wait of a communication request seen (cycles from valid to grant;
        saturates).
    starved_grants : Out(COUNTER_BITS)
        Communication grants forced by the starvation limit (MCA, compute waiting).
    probe : Out(wiring.Signature({"grant_comm": Out(1), "held": Out(1)}))
        Coverage probes, not used by the design: ``grant_comm`` -- the request on
        ``out`` is the communication stream's; ``held`` -- that grant was presented and
        not taken last cycle (held, not decided in this cycle).
    """

    def __init__(self, *, payload_shape, level_bits: int, starve_bits: int = MCA_STARVE_BITS):
        for name, v, lo, hi in (("level_bits", level_bits, 1, 16),
                                ("starve_bits", starve_bits, 1, 32)):
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{type(self).__name__}: {name}={v!r}: must be an integer "
                                 f"in [{lo}, {hi}]")
        self._payload_shape = payload_shape
        self._level_bits = level_bits
        self._starve_bits = starve_bits
        super().__init__({
            "compute": In(stream.Signature(payload_shape)),
            "comm": In(stream.Signature(payload_shape)),
            "out": Out(stream.Signature(payload_shape)),
            "policy": In(1),
            "queue_level": In(level_bits),
            "threshold": In(level_bits),
            "starve_limit": In(starve_bits),
            "comm_wait_max": Out(starve_bits + 1),
            "starved_grants": Out(COUNTER_BITS),
            "probe": Out(wiring.Signature({"grant_comm": Out(1), "held": Out(1)})),
        })

    @property
    def latency(self) -> int:
        """Cycles from an input's valid to ``out.valid`` (combinational grant)."""
        return 0

    # ---- design decisions a broken variant overrides (verif/formal/mutants.py) ---------

    def _holds_grant(self) -> Value:
        """A grant presented on ``out`` and not taken is held next cycle: a stalled
        ``out`` keeps its valid and payload (stream rules), whatever the inputs do."""
        return self.out.valid & ~self.out.ready

    def _starved(self, wait, limit) -> Value:
        """The communication request at the head of ``comm`` has waited long enough
        (``wait`` cycles so far) to be granted next, ahead of compute (MCA only)."""
        return self.comm.valid & (wait + 1 >= limit)

    # ---- hardware -------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        # Grant state: `hold` keeps a presented-but-not-accepted grant stable.
        hold = Signal()
        hold_comm = Signal()
        last_comm = Signal()          # round-robin pointer: source of the last grant
        wait = Signal(self._starve_bits + 1)

        starved = Signal()
        limit = Signal(self._starve_bits + 1)
        m.d.comb += limit.eq(self.starve_limit)
        m.d.comb += starved.eq(self._starved(wait, limit))

        pick_comm = Signal()
        with m.If(hold):
            m.d.comb += pick_comm.eq(hold_comm)
        with m.Elif(self.policy == Policy.MCA):
            below = Signal()
            m.d.comb += below.eq(self.queue_level < self.threshold)
            m.d.comb += pick_comm.eq(self.comm.valid & (starved | (~self.compute.valid & below)))
        with m.Else():  # round-robin
            m.d.comb += pick_comm.eq(self.comm.valid & (~self.compute.valid | ~last_comm))

        with m.If(pick_comm):
            m.d.comb += [
                self.out.valid.eq(self.comm.valid),
                self.out.payload.eq(self.comm.payload),
                self.comm.ready.eq(self.out.ready),
            ]
        with m.Else():
            m.d.comb += [
                self.out.valid.eq(self.compute.valid),
                self.out.payload.eq(self.compute.payload),
                self.compute.ready.eq(self.out.ready),
            ]
        m.d.comb += [self.probe.grant_comm.eq(pick_comm), self.probe.held.eq(hold)]

        fire = Signal()
        m.d.comb += fire.eq(self.out.valid & self.out.ready)
        m.d.sync += hold.eq(self._holds_grant())
        m.d.sync += hold_comm.eq(pick_comm)
        with m.If(fire):
            m.d.sync += last_comm.eq(pick_comm)

        # Wait counter of the communication request at the head of `comm`.
        comm_granted = Signal()
        m.d.comb += comm_granted.eq(fire & pick_comm)
        cur = Signal.like(wait)
        m.d.comb += cur.eq(wait + 1)
        with m.If(comm_granted | ~self.comm.valid):
            m.d.sync += wait.eq(0)
        with m.Elif(wait != (1 << len(wait)) - 1):
            m.d.sync += wait.eq(cur)
        with m.If(comm_granted & (wait > self.comm_wait_max)):
            m.d.sync += self.comm_wait_max.eq(wait)
        with m.If(comm_granted & self.compute.valid & (self.policy == Policy.MCA) & ~hold):
            m.d.sync += self.starved_grants.eq(self.starved_grants + 1)
        return m


def _design(cfg):
    from hw import layouts
    return MemoryArbiter(payload_shape=layouts.memory_request(cfg),
                         level_bits=max(1, cfg.mem_queue_depth.bit_length()),
                         starve_bits=MCA_STARVE_BITS)


from hw import designs as _designs  # noqa: E402  (registration at import)
_designs.register("t3_memory_arbiter", _design)
