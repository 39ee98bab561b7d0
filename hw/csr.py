"""Register block of the track & trigger unit, built from :mod:`contract.regmap`.

Bus (documented in docs/regmap.md): ``req`` stream {addr, write, wdata} and ``resp``
stream {rdata}; every request gets one response, in order, one request in flight (a
response register). Word addresses; unmapped reads return 0, unmapped writes are ignored.

Ports other than the bus are derived from the register map, field by field:
``regions`` (Out, every region group), ``ctrl`` (Out: the ``rw`` global fields),
``pulse`` (Out: the ``w1p`` fields, one-cycle pulses), ``status`` (In: the ``ro``
fields), ``errors`` (In: the sticky ``w1c`` flags, kept in the blocks that raise them) and
``err_clear`` (Out: a one-cycle pulse per flag written 1).
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from contract import regmap
from contract.spec import T3Config

from . import designs, layouts
from .addrmap import check_cfg, regions_layout

__all__ = ["Csr", "csr_request", "csr_response"]


def csr_request(cfg: T3Config) -> data.StructLayout:
    return layouts.struct(regmap.csr_request_fields(cfg))


def csr_response(cfg: T3Config) -> data.StructLayout:
    return layouts.struct(regmap.csr_response_fields(cfg))


def _fields(cfg: T3Config, access: str) -> data.StructLayout:
    return data.StructLayout({f.name: f.width for r in regmap.global_registers(cfg)
                              for f in r.fields if f.access == access})


class Csr(wiring.Component):
    """The register block (see the module doc)."""

    def __init__(self, *, cfg: T3Config):
        self._cfg = check_cfg("Csr", cfg)
        self._regs = regmap.registers(cfg)        # ConfigError if the map does not fit
        super().__init__({
            "req": In(stream.Signature(csr_request(cfg))),
            "resp": Out(stream.Signature(csr_response(cfg))),
            "regions": Out(regions_layout(cfg)),
            "ctrl": Out(_fields(cfg, "rw"), init={f.name: f.reset for r in regmap.global_registers(cfg)
                                                  for f in r.fields if f.access == "rw"}),
            "pulse": Out(_fields(cfg, "w1p")),
            "status": In(_fields(cfg, "ro")),
            "errors": In(_fields(cfg, "w1c")),
            "err_clear": Out(_fields(cfg, "w1c")),
        })

    @property
    def cfg(self) -> T3Config:
        return self._cfg

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
        cfg = self._cfg
        resp_valid = Signal()
        rdata = Signal(cfg.csr_data_bits)
        m.d.comb += [self.resp.valid.eq(resp_valid), self.resp.payload.rdata.eq(rdata),
                     self.req.ready.eq(~resp_valid | self.resp.ready)]
        with m.If(self.resp.valid & self.resp.ready):
            m.d.sync += resp_valid.eq(0)

        # pulses last one cycle
        m.d.sync += [self.pulse.eq(0), self.err_clear.eq(0)]
        p = self.req.payload
        accept = self.req.valid & self.req.ready
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
