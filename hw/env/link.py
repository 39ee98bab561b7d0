"""Model of one ring link (fixed latency, fractional bandwidth) as synthesizable RTL, and
the token bucket it paces with (shared with the background read generator)."""

from __future__ import annotations

import math

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from contract.spec import COUNTER_BITS

from ..component import check_int

__all__ = ["LinkModel", "token_bucket"]


def token_bucket(m: Module, *, num, den, credit_bits: int) -> tuple[Value, Signal]:
    """A token bucket for a rate of ``num / den`` events per cycle (1 <= num <= den).

    Every cycle ``num`` tokens are added, up to ``den + num - 1`` (so a source that is
    held back never loses the tokens it has earned), and an event costs ``den`` tokens.
    Returns ``(has_token, spend)``: ``has_token`` (1 bit, from a register) says an event
    may happen this cycle; the caller drives ``spend`` to 1 in the cycle it happens (only
    when ``has_token``). Starts empty at reset, so the first event comes
    ``ceil(den / num)`` cycles after reset. Shared by :class:`LinkModel` and
    :class:`hw.env.readgen.GemmReadGenerator`."""
    tokens = Signal(credit_bits + 1, name="tokens")
    spend = Signal(name="spend")
    refill = Signal(credit_bits + 2, name="refill")
    m.d.comb += refill.eq(tokens + num - (spend.as_unsigned() * den))
    cap = Signal(credit_bits + 2, name="token_cap")
    m.d.comb += cap.eq(den + num - 1)   # never lose tokens while backlogged
    with m.If(refill > cap):
        m.d.sync += tokens.eq(cap)
    with m.Else():
        m.d.sync += tokens.eq(refill)
    return tokens >= den, spend


class LinkModel(wiring.Component):
    """One ring link: fixed latency and a fractional bandwidth; never drops a packet.

    A packet accepted on ``tx`` in cycle t is offered on ``rx`` no earlier than cycle
    t + ``latency``, and no earlier than t + 2 (the FIFO's buffered read port). Bandwidth
    is a token bucket (:func:`token_bucket`): ``num`` packets leave every ``den`` cycles
    on average, in bursts of at most ``ceil((den + num - 1) / den)``. Packets in flight
    wait in a FIFO (``lib.memory`` through SyncFIFOBuffered) with their release time; when
    it is full, ``tx`` is backpressured. The FIFO must hold ``bandwidth x latency``
    packets to sustain the full bandwidth: :meth:`depth_for` gives that depth.
    ``latency``, ``num`` and ``den`` are inputs, so the ring top can drive them from
    registers or constants.

    Parameters
    ----------
    payload_shape : shape-like
        The packet (``hw.layouts.link_packet(cfg)`` in the ring).
    depth : int
        FIFO depth in packets, >= 2.
    latency_bits : int
        Width of ``latency``, 1..30 (default 20).
    credit_bits : int
        Width of ``num``/``den``, 1..16 (default 9).

    Attributes
    ----------
    tx : In(stream.Signature(payload_shape))
        Packets sent into the link.
    rx : Out(stream.Signature(payload_shape))
        Packets delivered, in order.
    latency : In(latency_bits)
        Cycles from ``tx`` to ``rx``, >= 1 (2 is the smallest delivered).
    num, den : In(credit_bits)
        Packets per cycle = num/den, 1 <= num <= den.
    busy_cycles : Out(COUNTER_BITS)
        Cycles a packet was delivered (wrapping).
    in_flight : Out(range(depth + 1))
        Packets inside the link.
    """

    TIME_BITS = 32

    def __init__(self, *, payload_shape, depth: int, latency_bits: int = 20, credit_bits: int = 9):
        check_int("LinkModel", "depth", depth, lo=2)
        check_int("LinkModel", "latency_bits", latency_bits, lo=1, hi=30)
        check_int("LinkModel", "credit_bits", credit_bits, lo=1, hi=16)
        self._payload_shape = payload_shape
        self._depth = depth
        self._latency_bits = latency_bits
        self._credit_bits = credit_bits
        super().__init__({
            "tx": In(stream.Signature(payload_shape)),
            "rx": Out(stream.Signature(payload_shape)),
            "latency": In(latency_bits),
            "num": In(credit_bits),
            "den": In(credit_bits),
            "busy_cycles": Out(COUNTER_BITS),
            "in_flight": Out(range(depth + 1)),
        })

    @property
    def depth(self) -> int:
        return self._depth

    @staticmethod
    def depth_for(latency_cycles: int, lines_per_cycle: float) -> int:
        """FIFO depth that sustains ``lines_per_cycle`` over ``latency_cycles`` (power of 2)."""
        need = math.ceil(latency_cycles * lines_per_cycle) + 2
        return 1 << max(1, math.ceil(math.log2(need)))

    # ---- design decision a broken variant overrides (verif/formal/mutants.py) ----------

    def _pops(self, offered, ready):
        """Whether the head packet leaves the FIFO this cycle: offered on ``rx`` and
        taken (``ready``)."""
        return offered & ready

    def elaborate(self, platform):
        m = Module()
        tb = self.TIME_BITS
        entry = data.StructLayout({"due": tb, "payload": self._payload_shape})
        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=entry.size, depth=self._depth)

        now = Signal(tb)
        m.d.sync += now.eq(now + 1)

        # Enqueue with the release time.
        w = data.View(entry, q.w_data)
        m.d.comb += [
            w.due.eq(now + self.latency),
            w.payload.eq(self.tx.payload),
            q.w_en.eq(self.tx.valid),
            self.tx.ready.eq(q.w_rdy),
        ]

        r = data.View(entry, q.r_data)
        due = Signal()
        # (now - due) as a signed difference handles the wrap of the free-running clock.
        diff = Signal(tb)
        m.d.comb += diff.eq(now - r.due)
        m.d.comb += due.eq(~diff[tb - 1])
        has_token, spend = token_bucket(m, num=self.num, den=self.den, credit_bits=self._credit_bits)
        can_send = Signal()
        m.d.comb += can_send.eq(q.r_rdy & due & has_token)
        m.d.comb += [
            self.rx.valid.eq(can_send),
            self.rx.payload.eq(r.payload),
            q.r_en.eq(self._pops(can_send, self.rx.ready)),
            spend.eq(q.r_en),
        ]
        with m.If(q.r_en):
            m.d.sync += self.busy_cycles.eq(self.busy_cycles + 1)
        m.d.comb += self.in_flight.eq(q.level)
        return m


def _design(cfg):
    from hw import layouts
    return LinkModel(payload_shape=layouts.link_packet(cfg),
                     depth=LinkModel.depth_for(cfg.link_latency_cycles, cfg.link_lines_per_cycle))


from hw import designs as _designs  # noqa: E402  (registration at import)
_designs.register("t3_link", _design)
