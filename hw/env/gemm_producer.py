"""The closed-loop GEMM producer: compute units that wait for their operand READs.

Models the GPU's compute units running the GEMM in waves (the timing rule of
:func:`sim_models.trace.producer_trace`: a wave of up to ``cus`` workgroups computes, then
emits its output stores), but CLOSED-LOOP: a wave's compute advances only as its operand
READs come back from memory, so the GEMM slows down when the memory is contended (issue
#15, item 4). The stores' data and order are the trace's (the testbench feeds them on
``stores``); this block decides only WHEN they are released, and issues the READs.

ENVIRONMENT hardware, like :mod:`hw.env.readgen` and the link models: not registered in
:mod:`hw.designs` (no area report); the ring top (hw/env/ring.py) puts it in front of each
unit's ``producer`` port.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, enum, fifo, stream
from amaranth.lib.wiring import In, Out

from contract.spec import COUNTER_BITS, ConfigError, Op, T3Config

from .. import layouts
from ..component import T3Component, check_int

__all__ = ["ClosedLoopGemm", "wave_descriptor"]

#: bits of ``k_steps`` and ``step_cycles``
STEP_BITS = 16


def wave_descriptor(count_bits: int) -> data.StructLayout:
    """One wave on the ``waves`` port: ``lines`` store lines (>= 1), ``reads`` READs per
    K step (0: compute only)."""
    return data.StructLayout({"lines": count_bits, "reads": count_bits})


class _Phase(enum.Enum, shape=2):
    IDLE = 0        # waiting for the next wave's descriptor
    RUN = 1         # READs and compute steps
    STORE = 2       # releasing the wave's stores


class ClosedLoopGemm(T3Component):
    """Waves of READ, compute, store, where compute waits for the READs to come back.

    One wave at a time (the trace's timing rule), with ``K = max(k_steps, 1)``,
    ``T = step_cycles``, ``r`` = the descriptor's ``reads``:

    1. A descriptor is taken from ``waves`` (in IDLE, or in the cycle the previous wave
       releases its last store: back-to-back waves lose no cycle).
    2. RUN, from the next cycle: the wave's ``K * r`` READs are presented on ``out`` as
       fast as it takes them while fewer than ``max(outstanding, 1)`` READs were in flight
       at the start of the cycle (accepted on ``out``, not yet counted answered: a READ
       counted in cycle t frees its slot for cycle t + 1). Concurrently, step
       ``s`` (0..K-1) computes for ``T`` cycles, starting in the cycle after step ``s-1``'s
       last compute cycle (step 0: the first RUN cycle) or later, in the first cycle in
       which ``(s + 1) * r`` of the wave's READs are counted answered -- the count
       includes a READ that ``reads_done`` counts in that very cycle. A cycle in RUN in
       which the next step could start but for its READs is a stall cycle; with ``T >= 1``
       every RUN cycle is either a compute cycle or a stall cycle.
    3. STORE, from the cycle after the last compute cycle: exactly ``lines`` stores pass
       from ``stores`` to ``out`` unchanged, one per cycle when both sides are ready. A
       descriptor with ``lines`` = 0 releases nothing and ends in its first STORE cycle.
       With ``T`` = 0 compute is free: the store phase begins in the cycle the last READ
       of the wave is counted answered (the first RUN cycle if ``r`` = 0).

    So with ``r`` = 0 and ``T >= 1``, no stalls on ``stores``/``out`` and descriptors
    always available, a wave takes exactly ``K * T + lines`` cycles from one descriptor
    taken to the next (``T`` = 0 included). The next wave's READs start only when its descriptor is taken, after the
    previous wave's last store (sequential, as the trace). The READ addresses walk
    ``[read_base, read_base + max(read_lines, 1))`` one line per READ, wrapping, the walk
    continuing across waves from reset (like :class:`hw.env.readgen.GemmReadGenerator`).

    ``out`` never changes a presented request before it is accepted: a READ's address
    moves only on acceptance, and a store is ``stores``' own (held) payload. ``out.valid``
    and ``stores.ready``/``waves.ready`` are combinational from the inputs (``stores``
    passes through; with ``T`` = 0 the store phase opens on this cycle's ``reads_done``).

    ``reads_done`` is followed one count per cycle (the unit's counter moves by at most
    one per cycle): a READ is answered in the cycle this block counts it, and its latency
    (``read_latency_sum``/``_max``) is that cycle minus its acceptance cycle, measured
    modulo ``2 ** count_bits`` (latencies must stay below that). ``reads_done`` must count
    only this block's READs, and only once one is accepted. The acceptance cycles wait in
    a FIFO of ``max_outstanding`` entries (``lib.memory`` through ``SyncFIFO``).

    The runtime inputs are held constant during a run. ``enable`` = 0 makes the block a
    wire from ``stores`` to ``out`` (``waves`` not consumed, no READs, the wave state
    frozen; ``reads_done`` is still followed).

    Parameters
    ----------
    cfg : T3Config
        Address width and the request layout.
    count_bits : int
        Width of the descriptor fields, of the timestamps and of ``read_latency_max``,
        8..32 (default 24).
    max_outstanding : int
        Capacity of the in-flight READ timestamp FIFO: a power of two in 2..1024
        (default 64); the runtime ``outstanding`` is clamped to it.

    Attributes
    ----------
    stores : In(stream.Signature(layouts.producer_request(cfg)))
        The trace's stores, in order.
    waves : In(stream.Signature(wave_descriptor(count_bits)))
        One descriptor per wave, in order: ``lines`` (store lines of the wave) and
        ``reads`` (READs per K step).
    out : Out(stream.Signature(layouts.producer_request(cfg)))
        To the unit's producer port: the READs (``op`` = READ, ``wf_id`` = 0, ``data`` = 0)
        and the released stores, held until accepted.
    reads_done : In(COUNTER_BITS)
        The unit's wrapping count of answered producer READs (``T3Unit.gemm_reads_done``),
        0 at reset; answers come in issue order.
    enable : In(1)
        1: closed loop; 0: ``stores`` straight to ``out``.
    k_steps : In(16)
        K steps per wave (0 behaves as 1).
    step_cycles : In(16)
        Compute cycles per step (0: compute is free).
    outstanding : In(range(max_outstanding + 1))
        READs in flight at most (0 behaves as 1).
    read_base : In(cfg.addr_bits)
        First line of the READ window.
    read_lines : In(cfg.addr_bits + 1)
        READ window length in lines (0 behaves as 1).
    reads_issued : Out(COUNTER_BITS)
        READs accepted on ``out`` (wrapping, from reset; so are the counters below).
    waves_done : Out(COUNTER_BITS)
        Waves whose store phase ended.
    stall_cycles : Out(COUNTER_BITS)
        Cycles the wave was ready to compute its next step but for that step's READs.
    compute_cycles : Out(COUNTER_BITS)
        Cycles a step was computing.
    read_latency_sum : Out(COUNTER_BITS)
        Sum over answered READs of their latency in cycles.
    read_latency_max : Out(count_bits)
        The largest READ latency in cycles (saturating).
    store_cycles : Out(COUNTER_BITS)
        Cycles in the store phase (waiting or releasing).
    busy : Out(1)
        A wave is in progress or READs are in flight.
    """

    def __init__(self, *, cfg: T3Config, count_bits: int = 24, max_outstanding: int = 64):
        who = "ClosedLoopGemm"
        self._count_bits = check_int(who, "count_bits", count_bits, lo=8, hi=32)
        check_int(who, "max_outstanding", max_outstanding, lo=2, hi=1024)
        if max_outstanding & (max_outstanding - 1):
            raise ConfigError(f"{who}: max_outstanding={max_outstanding!r}: must be a power "
                              f"of two in [2, 1024]")
        self._max_outstanding = max_outstanding
        super().__init__(cfg, lambda cfg: {
            "stores": In(stream.Signature(layouts.producer_request(cfg))),
            "waves": In(stream.Signature(wave_descriptor(count_bits))),
            "out": Out(stream.Signature(layouts.producer_request(cfg))),
            "reads_done": In(COUNTER_BITS),
            "enable": In(1),
            "k_steps": In(STEP_BITS),
            "step_cycles": In(STEP_BITS),
            "outstanding": In(range(max_outstanding + 1)),
            "read_base": In(cfg.addr_bits),
            "read_lines": In(cfg.addr_bits + 1),
            "reads_issued": Out(COUNTER_BITS),
            "waves_done": Out(COUNTER_BITS),
            "stall_cycles": Out(COUNTER_BITS),
            "compute_cycles": Out(COUNTER_BITS),
            "read_latency_sum": Out(COUNTER_BITS),
            "read_latency_max": Out(count_bits),
            "store_cycles": Out(COUNTER_BITS),
            "busy": Out(1),
        })

    @property
    def count_bits(self) -> int:
        return self._count_bits

    @property
    def max_outstanding(self) -> int:
        return self._max_outstanding

    def elaborate(self, platform):
        m = Module()
        cb = self._count_bits
        w = SimpleNamespace(                    # what the parts of the block share
            k=Mux(self.k_steps == 0, 1, self.k_steps),
            phase=Signal(_Phase), lines=Signal(cb), reads=Signal(cb),   # + the descriptor
            now=Signal(cb),                     # free-running cycle stamp
            take=Signal(),                      # a descriptor is taken this cycle
            pop=Signal(),                       # a READ is counted answered this cycle
            in_flight=Signal(range(self._max_outstanding + 1)))
        m.d.sync += w.now.eq(w.now + 1)
        m.d.comb += w.take.eq(self.waves.valid & self.waves.ready)
        astep_now = self._answers(m, w)
        read_valid, read_addr = self._issue(m, w)
        run_done = self._compute(m, w, astep_now)
        gate, wave_end = self._release(m, w, run_done)
        m.d.comb += [
            self.waves.ready.eq(self.enable & ((w.phase == _Phase.IDLE) | wave_end)),
            self.busy.eq((w.phase != _Phase.IDLE) | (w.in_flight != 0)),
        ]
        with m.If(~self.enable | gate):
            m.d.comb += [self.out.valid.eq(self.stores.valid),
                         self.out.payload.eq(self.stores.payload),
                         self.stores.ready.eq(self.out.ready)]
        with m.Else():
            m.d.comb += [self.out.valid.eq(read_valid),
                         self.out.payload.op.eq(Op.READ),
                         self.out.payload.addr.eq(read_addr)]
        return m

    def _answers(self, m: Module, w) -> Signal:
        """Follow ``reads_done`` one count per cycle (``w.pop``), time each answered READ
        against its acceptance stamp, and count the wave's answered READs by K step.
        Returns the number of the wave's steps whose READs are all answered, this cycle's
        answer included."""
        cb = self._count_bits
        m.submodules.stamps = stamps = fifo.SyncFIFO(width=cb, depth=self._max_outstanding)
        w.stamps = stamps
        answered = Signal(COUNTER_BITS)         # READs counted answered since reset
        latency = Signal(cb)
        m.d.comb += [
            w.pop.eq((self.reads_done != answered) & stamps.r_rdy),
            stamps.r_en.eq(w.pop),
            latency.eq(w.now - stamps.r_data),
        ]
        with m.If(w.pop):
            m.d.sync += [answered.eq(answered + 1),
                         self.read_latency_sum.eq(self.read_latency_sum + latency)]
            with m.If(latency > self.read_latency_max):
                m.d.sync += self.read_latency_max.eq(latency)
        ai, astep = Signal(cb), Signal(STEP_BITS)    # answered: READ ai of step astep
        astep_now = Signal(STEP_BITS + 1)
        a_wrap = Signal()
        m.d.comb += [a_wrap.eq(w.pop & (ai + 1 == w.reads)),
                     astep_now.eq(astep + a_wrap)]
        with m.If(w.pop):
            m.d.sync += [ai.eq(Mux(a_wrap, 0, ai + 1)), astep.eq(astep + a_wrap)]
        with m.If(w.take):
            m.d.sync += [ai.eq(0), astep.eq(0)]
        return astep_now

    def _issue(self, m: Module, w) -> tuple[Signal, Signal]:
        """Present the wave's READs while fewer than ``outstanding`` are in flight; push
        each one's acceptance stamp. Returns (valid, address) of the READ presented."""
        cfg = self.cfg
        window = Mux(self.read_lines == 0, 1, self.read_lines)
        outstanding = Mux(self.outstanding == 0, 1, self.outstanding)
        ri, rstep = Signal(self._count_bits), Signal(STEP_BITS)    # issued: ri of rstep
        valid, acc = Signal(), Signal()
        offset = Signal(cfg.addr_bits + 1)      # the next READ's line in the window
        cur = Signal.like(offset)
        addr = Signal(cfg.addr_bits)
        m.d.comb += [
            cur.eq(Mux(offset >= window, 0, offset)),
            addr.eq((self.read_base + cur)[:cfg.addr_bits]),
            valid.eq(self.enable & (w.phase == _Phase.RUN) & (w.reads != 0)
                     & (rstep < w.k) & (w.in_flight < outstanding)),
            acc.eq(valid & self.out.ready),
            w.stamps.w_en.eq(acc),
            w.stamps.w_data.eq(w.now),
        ]
        m.d.sync += w.in_flight.eq(w.in_flight + acc - w.pop)
        with m.If(acc):
            r_wrap = ri + 1 == w.reads
            m.d.sync += [ri.eq(Mux(r_wrap, 0, ri + 1)), rstep.eq(rstep + r_wrap),
                         offset.eq(cur + 1), self.reads_issued.eq(self.reads_issued + 1)]
        with m.If(w.take):
            m.d.sync += [ri.eq(0), rstep.eq(0)]
        return valid, addr

    def _compute(self, m: Module, w, astep_now) -> Signal:
        """The K steps of ``step_cycles`` cycles, each gated by its READs; moves RUN to
        STORE after the last compute cycle. Returns ``run_done``: with ``step_cycles`` = 0,
        the wave's READs are all answered (its steps are free), so it stores now."""
        step = Signal(STEP_BITS)                # steps finished
        computing = Signal()
        left = Signal(STEP_BITS)                # compute cycles left after this one
        can_start, step_ends, run_done = Signal(), Signal(), Signal()
        run = self.enable & (w.phase == _Phase.RUN)
        m.d.comb += [
            can_start.eq((w.reads == 0) | (astep_now > step)),
            run_done.eq((self.step_cycles == 0) & ((w.reads == 0) | (astep_now >= w.k))),
        ]
        with m.If(run & (self.step_cycles != 0)):
            with m.If(computing):
                m.d.sync += self.compute_cycles.eq(self.compute_cycles + 1)
                m.d.comb += step_ends.eq(left == 0)
                m.d.sync += left.eq(left - 1)
            with m.Elif(can_start):
                m.d.sync += [self.compute_cycles.eq(self.compute_cycles + 1),
                             computing.eq(1), left.eq(self.step_cycles - 2)]
                m.d.comb += step_ends.eq(self.step_cycles == 1)
            with m.Else():
                m.d.sync += self.stall_cycles.eq(self.stall_cycles + 1)
            with m.If(step_ends):
                m.d.sync += [computing.eq(0), step.eq(step + 1)]
                with m.If(step + 1 == w.k):
                    m.d.sync += w.phase.eq(_Phase.STORE)
        with m.If(run & (self.step_cycles == 0) & ~run_done):
            m.d.sync += self.stall_cycles.eq(self.stall_cycles + 1)
        with m.If(w.take):
            m.d.sync += [step.eq(0), computing.eq(0)]
        return run_done

    def _release(self, m: Module, w, run_done) -> tuple[Signal, Signal]:
        """The store phase: pass ``lines`` stores, then end the wave and take the next
        descriptor. Returns (``gate``: ``stores`` is connected to ``out`` this cycle,
        ``wave_end``: the wave ends this cycle)."""
        released = Signal(self._count_bits)
        storing, gate, acc, wave_end = Signal(), Signal(), Signal(), Signal()
        m.d.comb += [
            storing.eq(self.enable & ((w.phase == _Phase.STORE)
                                      | ((w.phase == _Phase.RUN) & run_done))),
            gate.eq(storing & (released < w.lines)),
            acc.eq(gate & self.stores.valid & self.out.ready),
            wave_end.eq(storing & ((w.lines == 0) | (acc & (released + 1 == w.lines)))),
        ]
        with m.If(storing):
            m.d.sync += self.store_cycles.eq(self.store_cycles + 1)
        with m.If(acc):
            m.d.sync += released.eq(released + 1)
        with m.If(wave_end):
            m.d.sync += [w.phase.eq(_Phase.IDLE), self.waves_done.eq(self.waves_done + 1)]
        with m.If(w.take):
            m.d.sync += [w.phase.eq(_Phase.RUN), w.lines.eq(self.waves.payload.lines),
                         w.reads.eq(self.waves.payload.reads), released.eq(0)]
        return gate, wave_end
