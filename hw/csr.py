"""Register block of the track & trigger unit, built from :mod:`contract.regmap`."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from contract import regmap
from contract.spec import T3Config

from . import designs, layouts
from .component import T3Component
from .interfaces import CsrBus

__all__ = ["Csr"]


def _fields(cfg: T3Config, access: str) -> data.StructLayout:
    """The global registers' fields of one access kind, as one layout."""
    return data.StructLayout({f.name: f.width for r in regmap.global_registers(cfg)
                              for f in r.fields if f.access == access})


def _resets(cfg: T3Config, access: str) -> dict[str, int]:
    """Reset value of each global field of one access kind."""
    return {f.name: f.reset for r in regmap.global_registers(cfg)
            for f in r.fields if f.access == access}


class Csr(T3Component):
    """The register block: the register map of docs/regmap.md on a :class:`CsrBus`.

    Every request gets one response, in order, with one request in flight (the response
    is a register: a request accepted in cycle t is answered in cycle t + 1, and the next
    is accepted once the response is taken). Word addresses; a read of an unmapped
    address returns 0, a write to one is ignored; a write is answered with 0.

    The ports other than the bus are derived from the register map field by field; the
    sticky flags are kept in the blocks that raise them.

    Parameters
    ----------
    cfg : T3Config
        Bus widths, region count and every field's width; ConfigError when the register
        map does not fit ``csr_addr_bits``.

    Attributes
    ----------
    bus : In(CsrBus(cfg=cfg))
        The register bus, target side.
    regions : Out(layouts.regions_layout(cfg))
        Every region's fields (read/write).
    ctrl : Out(layout of the ``rw`` global fields)
        Control fields, at their reset values after reset.
    pulse : Out(layout of the ``w1p`` fields)
        One-cycle pulses, the cycle after a write of 1 (e.g. ``kick``, ``clear_counters``).
    status : In(layout of the ``ro`` fields)
        Read-only status and counters.
    errors : In(layout of the ``w1c`` fields)
        The sticky error flags, read in ``ERR``.
    err_clear : Out(layout of the ``w1c`` fields)
        A one-cycle pulse per flag written 1 in ``ERR``.
    registers : list of contract.regmap.Register
        The register map this block decodes.
    """

    def __init__(self, *, cfg: T3Config):
        super().__init__(cfg, lambda cfg: {
            "bus": In(CsrBus(cfg=cfg)),
            "regions": Out(layouts.regions_layout(cfg)),
            "ctrl": Out(_fields(cfg, "rw"), init=_resets(cfg, "rw")),
            "pulse": Out(_fields(cfg, "w1p")),
            "status": In(_fields(cfg, "ro")),
            "errors": In(_fields(cfg, "w1c")),
            "err_clear": Out(_fields(cfg, "w1c")),
        })
        self._regs = regmap.registers(self.cfg)        # ConfigError if the map does not fit

    @property
    def registers(self) -> list[regmap.Register]:
        return self._regs

    def _field_signal(self, reg: regmap.Register, f: regmap.Field):
        if reg.region is not None:
            return getattr(self.regions[reg.region], f.name)
        port = {"rw": self.ctrl, "ro": self.status, "w1c": self.errors}.get(f.access)
        return None if port is None else getattr(port, f.name)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        req, resp = self.bus.req, self.bus.resp
        resp_valid = Signal()
        rdata = Signal(cfg.csr_data_bits)
        m.d.comb += [resp.valid.eq(resp_valid), resp.payload.rdata.eq(rdata),
                     req.ready.eq(~resp_valid | resp.ready)]
        with m.If(resp.valid & resp.ready):
            m.d.sync += resp_valid.eq(0)

        # pulses last one cycle
        m.d.sync += [self.pulse.eq(0), self.err_clear.eq(0)]
        p = req.payload
        accept = req.valid & req.ready
        we = accept & p.write
        words = []
        for r in self._regs:
            hit = Signal(name=f"sel_{r.name}")
            word = Signal(cfg.csr_data_bits, name=f"rd_{r.name}")
            m.d.comb += hit.eq(p.addr == r.addr)
            for f in r.fields:
                val = Const(f.reset, f.width) if f.access == "const" else \
                    Const(0, f.width) if f.access == "w1p" else self._field_signal(r, f)
                m.d.comb += word[f.lsb:f.lsb + f.width].eq(val)
                wbits = p.wdata[f.lsb:f.lsb + f.width]
                target = {"rw": lambda: self._field_signal(r, f),
                          "w1p": lambda: getattr(self.pulse, f.name),
                          "w1c": lambda: getattr(self.err_clear, f.name)}.get(f.access)
                if target is not None:
                    with m.If(we & hit):
                        m.d.sync += target().eq(wbits)
            words.append(word & hit.replicate(cfg.csr_data_bits))
        with m.If(accept):
            # AND-OR read mux: the decoded register's word, 0 when unmapped or writing
            m.d.sync += [resp_valid.eq(1), rdata.eq(Mux(p.write, 0, _or_tree(words)))]
        return m


def _or_tree(values):
    while len(values) > 1:
        values = [values[i] | values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


designs.register("t3_csr", lambda cfg: Csr(cfg=cfg))
