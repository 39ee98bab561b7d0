"""Background GEMM read traffic: a rate-programmable generator of memory READs.

Models the GPU's compute units reading the GEMM's operands (A/B) from the same DRAM the
T3 unit writes: ENVIRONMENT traffic, like the producer trace and the link models, not T3
hardware. The ring top (hw/env/ring.py) merges it with the producer stream in front of each
unit's ``producer`` port, so the memory-controller arbiter sees the reads in the compute
stream (issue #5).

:class:`GemmReadGenerator` presents READ requests (producer_request layout: ``op`` =
READ, ``wf_id`` = 0, ``data`` = 0) at ``num / den`` requests per cycle, paced by the
token bucket the link model uses (:func:`hw.env.link.token_bucket`: starts empty, bursts of at
most ``ceil((den + num - 1) / den)``), until ``count`` requests have been issued. The
addresses walk the window ``[base, base + lines)`` one line per request, wrapping at the
end. ``count = 0`` or ``lines = 0``: nothing is issued. The inputs are read when a
request is loaded into the output register, which then holds it (valid and payload)
until accepted, so changing the inputs never changes a presented request.

``issued`` counts accepted requests since reset (32-bit); the generator stops once
``issued`` (plus the one presented) reaches ``count``; raising ``count`` resumes it.

Not registered in :mod:`hw.designs` (environment, not a T3 block: no area report); its
Verilog is generated and linted as part of ``t3_ring``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from contract.spec import ConfigError, Op, T3Config

from .. import layouts
from ..addrmap import COUNTER_BITS
from .link import token_bucket

__all__ = ["GemmReadGenerator"]


class GemmReadGenerator(wiring.Component):
    """READ request generator (see the module doc).

    Parameters (keyword-only): ``cfg`` (:class:`T3Config`: address width and the request
    layout), ``credit_bits`` (width of ``num``/``den``, 1..16).

    Ports: ``req`` (Out stream, producer_request layout), ``num``/``den`` (In, requests per
    cycle = num/den, 1 <= num <= den; num = 0 never issues), ``base`` (In, first line of
    the window), ``lines`` (In, window length in lines), ``count`` (In, requests to issue),
    ``issued`` (Out(32), requests accepted on ``req``).
    """

    def __init__(self, *, cfg: T3Config, credit_bits: int = 9):
        self._cfg = layouts.check_cfg("GemmReadGenerator", cfg)
        if isinstance(credit_bits, bool) or not isinstance(credit_bits, int) \
                or not 1 <= credit_bits <= 16:
            raise ConfigError(f"GemmReadGenerator: credit_bits={credit_bits!r}: "
                              f"must be an integer in [1, 16]")
        self._credit_bits = credit_bits
        super().__init__({
            "req": Out(stream.Signature(layouts.producer_request(cfg))),
            "num": In(credit_bits),
            "den": In(credit_bits),
            "base": In(cfg.addr_bits),
            "lines": In(cfg.addr_bits + 1),
            "count": In(COUNTER_BITS),
            "issued": Out(COUNTER_BITS),
        })

    @property
    def cfg(self) -> T3Config:
        return self._cfg

    @property
    def credit_bits(self) -> int:
        return self._credit_bits

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
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

