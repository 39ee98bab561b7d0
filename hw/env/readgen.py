"""Background GEMM read traffic: a rate-programmable generator of memory READs.

Models the GPU's compute units reading the GEMM's operands (A/B) from the same DRAM the
T3 unit writes: ENVIRONMENT traffic, like the producer trace and the link models, not T3
hardware. The ring top (hw/env/ring.py) merges it with the producer stream in front of each
unit's ``producer`` port, so the memory-controller arbiter sees the reads in the compute
stream (issue #5).

Not registered in :mod:`hw.designs` (environment, not a T3 block: no area report); its
Verilog is generated and linted as part of ``t3_ring``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from contract.spec import COUNTER_BITS, T3Config

from .. import layouts
from ..component import T3Component, check_int
from ..layouts import Op
from .link import token_bucket

__all__ = ["GemmReadGenerator"]


class GemmReadGenerator(T3Component):
    """Presents READ requests at ``num / den`` per cycle over a window of lines.

    The pace is the token bucket the link model uses (:func:`hw.env.link.token_bucket`:
    starts empty, bursts of at most ``ceil((den + num - 1) / den)``), until ``count``
    requests have been issued. The addresses walk the window ``[base, base + lines)`` one
    line per request, wrapping at the end. The inputs are read when a request is loaded
    into the output register, which then holds it (valid and payload) until accepted, so
    changing the inputs never changes a presented request. The generator stops once
    ``issued`` (plus the one presented) reaches ``count``; raising ``count`` resumes it.

    Parameters
    ----------
    cfg : T3Config
        Address width and the request layout.
    credit_bits : int
        Width of ``num``/``den``, 1..16 (default 9).

    Attributes
    ----------
    req : Out(stream.Signature(layouts.producer_request(cfg)))
        The READs (``wf_id`` = 0, ``data`` = 0), held until accepted.
    num, den : In(credit_bits)
        Requests per cycle = num/den, 1 <= num <= den; num = 0 never issues.
    base : In(cfg.addr_bits)
        First line of the window.
    lines : In(cfg.addr_bits + 1)
        Window length in lines (0: nothing is issued).
    count : In(COUNTER_BITS)
        Requests to issue (0: nothing is issued).
    issued : Out(COUNTER_BITS)
        Requests accepted on ``req`` since reset.
    """

    def __init__(self, *, cfg: T3Config, credit_bits: int = 9):
        self._credit_bits = check_int("GemmReadGenerator", "credit_bits", credit_bits,
                                      lo=1, hi=16)
        super().__init__(cfg, lambda cfg: {
            "req": Out(stream.Signature(layouts.producer_request(cfg))),
            "num": In(credit_bits),
            "den": In(credit_bits),
            "base": In(cfg.addr_bits),
            "lines": In(cfg.addr_bits + 1),
            "count": In(COUNTER_BITS),
            "issued": Out(COUNTER_BITS),
        })

    @property
    def credit_bits(self) -> int:
        return self._credit_bits

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        presenting = Signal()
        addr = Signal(cfg.addr_bits)
        offset = Signal(cfg.addr_bits + 1)      # the next request's line in the window
        loaded = Signal(COUNTER_BITS)           # requests loaded into the output register
        accepted = Signal()
        m.d.comb += accepted.eq(self.req.valid & self.req.ready)
        has_token, spend = token_bucket(m, num=self.num, den=self.den,
                                        credit_bits=self._credit_bits)
        load = Signal()
        m.d.comb += [
            load.eq((~presenting | accepted) & has_token & (loaded < self.count)
                    & (self.lines != 0)),
            spend.eq(load),
            self.req.valid.eq(presenting),
            self.req.payload.op.eq(Op.READ),
            self.req.payload.addr.eq(addr),
        ]
        with m.If(accepted):
            m.d.sync += [presenting.eq(0), self.issued.eq(self.issued + 1)]
        # the wrap: `>=`, not `==`, so a window shrunk under a running walk restarts at `base`
        cur = Signal.like(offset)
        m.d.comb += cur.eq(Mux(offset >= self.lines, 0, offset))
        with m.If(load):
            m.d.sync += [presenting.eq(1), addr.eq((self.base + cur)[:cfg.addr_bits]),
                         offset.eq(cur + 1), loaded.eq(loaded + 1)]
        return m

