"""MCA threshold from the GEMM's measured memory intensity (the paper: "the threshold is
set from the GEMM's memory intensity measured during its first stage"; the formula is
ours, docs/memory.md "MCA threshold").

The meter counts the compute stream's memory requests (the GEMM's operand READs and its
local stores, everything the tracker's producer lane sends to memory) over a window of
``2**window_log2`` cycles that opens at the first such request after reset or
``restart``. At the window's end the intensity is ``I = count / 2**window_log2``
requests per cycle (1.0 = the memory's streaming peak) and the threshold becomes::

    threshold = clamp(Q - floor(count * Q / 2**window_log2), 1, Q)      Q = mem_queue_depth

i.e. communication may fill the part of the queue the GEMM leaves free on average: a
GEMM at 90% of peak leaves it 1-2 of 16 entries, one at 10% leaves it 15. Until the
window ends (and with ``window_log2 = 0``: always) the threshold is the programmed one
(``ARB.threshold``).
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib.wiring import In, Out

from contract.spec import COUNTER_BITS, MCA_WINDOW_LOG2_MAX, T3Config

from .component import T3Component

__all__ = ["McaThresholdMeter", "auto_threshold"]


def auto_threshold(count: int, window_log2: int, queue_depth: int) -> int:
    """The rule of the module doc, in Python (the reference the tests use)."""
    return max(1, min(queue_depth, queue_depth - ((count * queue_depth) >> window_log2)))


class McaThresholdMeter(T3Component):
    """Measures the compute stream's intensity over one window and sets the MCA threshold
    (module doc). Latency: the new threshold is in use the cycle after the window's last.

    Parameters
    ----------
    cfg : T3Config
        ``mem_queue_depth`` (Q).

    Attributes
    ----------
    window_log2 : In(range(MCA_WINDOW_LOG2_MAX + 1))
        Window length, log2 cycles; 0: never measure (the programmed threshold is used).
    restart : In(1)
        Forget the measurement: the next compute request opens a new window.
    compute_req : In(1)
        A compute-stream request goes to memory this cycle.
    manual : In(range(Q + 1))
        The programmed threshold, used until a measurement completes.
    threshold : Out(range(Q + 1))
        The threshold in use.
    measured : Out(1)
        A measurement completed (``threshold`` is the measured one).
    window_reqs : Out(COUNTER_BITS)
        Compute requests counted in the (current or last) window.
    """

    def __init__(self, *, cfg: T3Config):
        super().__init__(cfg, lambda cfg: {
            "window_log2": In(range(MCA_WINDOW_LOG2_MAX + 1)),
            "restart": In(1),
            "compute_req": In(1),
            "manual": In(range(cfg.mem_queue_depth + 1)),
            "threshold": Out(range(cfg.mem_queue_depth + 1)),
            "measured": Out(1),
            "window_reqs": Out(COUNTER_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        q = self.cfg.mem_queue_depth
        open_ = Signal()                                   # the window is running
        cycles = Signal(MCA_WINDOW_LOG2_MAX + 1)           # its cycles so far
        measured_thr = Signal(range(q + 1))
        count_now = Signal.like(self.window_reqs)
        m.d.comb += count_now.eq(self.window_reqs + self.compute_req)
        scaled = Signal(COUNTER_BITS + q.bit_length())
        m.d.comb += scaled.eq((count_now * q) >> self.window_log2)
        m.d.comb += self.threshold.eq(Mux(self.measured, measured_thr, self.manual))
        with m.If(self.restart):
            m.d.sync += [open_.eq(0), self.measured.eq(0), cycles.eq(0), self.window_reqs.eq(0)]
        with m.Elif(open_):
            m.d.sync += [cycles.eq(cycles + 1), self.window_reqs.eq(count_now)]
            with m.If(cycles + 1 == (Const(1, len(cycles)) << self.window_log2)):     # the window's last cycle
                m.d.sync += [open_.eq(0), self.measured.eq(1),
                             measured_thr.eq(Mux(scaled >= q, 1, q - scaled))]
        with m.Elif(~self.measured & self.compute_req & (self.window_log2 != 0)):
            # the first compute request opens the window: its first cycle and first count
            m.d.sync += [open_.eq(1), cycles.eq(1), self.window_reqs.eq(1)]
        return m
