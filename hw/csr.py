"""Register block of the track & trigger unit, built from :mod:`contract.regmap`.

The block is pipelined so that no path crosses more than one small piece of logic
between registers, whatever the size of the map (docs/regmap.md "Bus", docs/area.md
"CSR block timing"). A request accepted in cycle t goes through three registered stages,
named below by the cycle in which their registers hold it:

* t + 1, **request**: address, write flag and write data registered (the bus payload
  leaves no combinational path into the block).
* t + 2, **decode / group select**: the map is cut into groups of ``2**GROUP_BITS``
  consecutive words (one region group, or 16 global registers). Every group's word at
  the low address bits is selected by a binary tree of 2:1 muxes and registered
  (every group at once, so the hardware fields are sampled in cycle t + 1:
  ``contract.latency.CSR_SAMPLE``). A write is decoded into one registered hit bit per
  group with writable fields and a registered one-hot of the low address bits.
* t + 3, **response / write**: the word of the addressed group (a second mux tree on the
  high address bits; 0 for an unmapped address or a write) is the registered response;
  a write lands at the same clock edge: storage updated and ``w1p``/``w1c`` pulses high
  in cycle t + 3, the cycle its response is valid (``contract.latency.CSR``).

One request is in flight: the next one is accepted in the cycle its predecessor's
response is taken, so an access always sees every earlier write.

Cost, by construction: the storage flip-flops of the ``rw`` fields (needed: software
reads them back), about one 2:1 mux per readable bit before technology mapping (a
binary tree, instead of the AND-OR of a one-hot decode: two gates per bit), one register
per bit of each group's selected word (about 24 per region group), and a few dozen
decode flip-flops. Bits that are constant in every word of a tree (``const`` fields,
``w1p`` fields reading 0, unused bits) fold away. Grouping by the low bits instead (one
column per register of the region group, selected by the region index) needs fewer
flip-flops but maps to far more ECP5 LUTs and did not place and route in 300 s
(docs/area.md "CSR block timing").
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from contract import latency, regmap
from contract.spec import T3Config

from . import designs, layouts
from .component import T3Component
from .interfaces import CsrBus

__all__ = ["Csr", "GROUP_BITS"]

#: low word-address bits resolved in the group-select stage: a group is 16 words, the
#: stride of the region groups (contract.regmap.REGION_STRIDE), so each region is a group
GROUP_BITS = 4


def _fields(cfg: T3Config, access: str) -> data.StructLayout:
    """The global registers' fields of one access kind, as one layout."""
    return data.StructLayout({f.name: f.width for r in regmap.global_registers(cfg)
                              for f in r.fields if f.access == access})


def _resets(cfg: T3Config, access: str) -> dict[str, int]:
    """Reset value of each global field of one access kind."""
    return {f.name: f.reset for r in regmap.global_registers(cfg)
            for f in r.fields if f.access == access}


def _mux_tree(sel: Value, words: dict[int, Value]) -> Value:
    """``words[sel]``, 0 when ``sel`` is not a key: a binary tree of 2:1 muxes on the
    bits of ``sel`` (most significant first). Where every key left has the same value in
    a run of bits, one comparison of that run gates the subtree (a subtree without keys
    is 0). Keys must be below ``2 ** len(sel)``; width: the widest word."""

    def build(bit: int, items: list[tuple[int, Value]]) -> Value:
        if not items:
            return Const(0, 1)
        low = bit
        while low >= 0 and len({(k >> low) & 1 for k, _ in items}) == 1:
            low -= 1
        if low < bit:                        # bits low+1 .. bit are the same in every key
            common = (items[0][0] >> (low + 1)) & ((1 << (bit - low)) - 1)
            return Mux(sel[low + 1:bit + 1] == common, build(low, items), 0)
        if bit < 0:
            return items[0][1]               # one key left, every bit of sel matched
        hi = [(k, v) for k, v in items if (k >> bit) & 1]
        lo = [(k, v) for k, v in items if not (k >> bit) & 1]
        return Mux(sel[bit], build(bit - 1, hi), build(bit - 1, lo))

    assert all(0 <= k < (1 << len(sel)) for k in words), (len(sel), sorted(words))
    return build(len(sel) - 1, sorted(words.items()))


class Csr(T3Component):
    """The register block: the register map of docs/regmap.md on a :class:`CsrBus`.

    Every request gets one response, in order, with one request in flight: a request
    accepted in cycle t is answered in cycle t + :attr:`latency` (3) when the response
    is ready, and the next request is accepted in the cycle that response is taken.
    Word addresses; a read of an unmapped address returns 0, a write to one is ignored;
    a write is answered with 0. A read returns the hardware fields (``ro``, ``w1c``) as
    they are in cycle t + ``contract.latency.CSR_SAMPLE`` (1): every field of one
    register from the same cycle. A write updates the storage and raises its one-cycle
    ``w1p``/``w1c`` pulses in cycle t + 3 (the module docstring has the pipeline).

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
        One-cycle pulses, in the cycle the write's response becomes valid (e.g.
        ``kick``, ``clear_counters``).
    status : In(layout of the ``ro`` fields)
        Read-only status and counters.
    errors : In(layout of the ``w1c`` fields)
        The sticky error flags, read in ``ERR``.
    err_clear : Out(layout of the ``w1c`` fields)
        A one-cycle pulse per flag written 1 in ``ERR``.
    registers : list of contract.regmap.Register
        The register map this block decodes.
    latency : int
        Cycles from a request's acceptance to its response (``contract.latency.CSR``).
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

    @property
    def latency(self) -> int:
        """Cycles from a request's acceptance to its response (``contract.latency.CSR``)."""
        return latency.CSR

    def _field_signal(self, reg: regmap.Register, f: regmap.Field):
        if reg.region is not None:
            return getattr(self.regions[reg.region], f.name)
        port = {"rw": self.ctrl, "ro": self.status, "w1c": self.errors}.get(f.access)
        return None if port is None else getattr(port, f.name)

    def _write_target(self, reg: regmap.Register, f: regmap.Field):
        """The signal a write of field ``f`` sets (None: ``const``/``ro``, not writable)."""
        if f.access == "rw":
            return self._field_signal(reg, f)
        port = {"w1p": self.pulse, "w1c": self.err_clear}.get(f.access)
        return None if port is None else getattr(port, f.name)

    def _read_word(self, reg: regmap.Register) -> Value:
        """What a read of ``reg`` returns, up to its highest field bit (``w1p`` reads 0)."""
        parts, pos = [], 0
        for f in sorted(reg.fields, key=lambda f: f.lsb):
            val = Const(f.reset, f.width) if f.access == "const" else \
                Const(0, f.width) if f.access == "w1p" else self._field_signal(reg, f)
            parts += [Const(0, f.lsb - pos), val]
            pos = f.lsb + f.width
        return Cat(*parts)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        lo_bits = min(GROUP_BITS, cfg.csr_addr_bits)
        req, resp = self.bus.req, self.bus.resp

        # handshake: one request in flight, from its acceptance until its response is taken
        busy = Signal()
        taken = resp.valid & resp.ready
        m.d.comb += req.ready.eq(~busy | taken)
        accept = req.valid & req.ready
        with m.If(accept):
            m.d.sync += busy.eq(1)
        with m.Elif(taken):
            m.d.sync += busy.eq(0)

        # stage 1 (cycle t + 1): the request, registered
        s1 = Signal()
        q1 = Signal(req.payload.shape(), reset_less=True)
        m.d.sync += s1.eq(accept)
        with m.If(accept):
            m.d.sync += q1.eq(req.payload)
        lo1, hi1 = q1.addr[:lo_bits], q1.addr[lo_bits:]

        # stage 2 (cycle t + 2): every group's word at the low address bits; the write decoded
        s2, w2 = Signal(), Signal()
        hi2 = Signal(len(hi1), reset_less=True)
        m.d.sync += [s2.eq(s1), w2.eq(q1.write), hi2.eq(hi1)]
        groups: dict[int, dict[int, Value]] = {}
        for r in self._regs:
            groups.setdefault(r.addr >> lo_bits, {})[r.addr & ((1 << lo_bits) - 1)] = \
                self._read_word(r)
        selected = {}
        for g, words in groups.items():
            word = _mux_tree(lo1, words)
            selected[g] = Signal(len(word), name=f"grp{g:x}", reset_less=True)
            m.d.sync += selected[g].eq(word)
        self._writes(m, s1 & q1.write, lo1, hi1, q1.wdata, lo_bits)

        # stage 3 (cycle t + 3): the response, held until taken
        resp_valid = Signal()
        rdata = Signal(cfg.csr_data_bits, reset_less=True)
        m.d.comb += [resp.valid.eq(resp_valid), resp.payload.rdata.eq(rdata)]
        with m.If(~resp_valid | resp.ready):          # the response register is free
            m.d.sync += [resp_valid.eq(s2), rdata.eq(Mux(w2, 0, _mux_tree(hi2, selected)))]
        return m

    def _writes(self, m: Module, we1, lo1: Value, hi1: Value, wdata1: Value, lo_bits: int) -> None:
        """Write path: the stage-2 registers (cycle t + 2) hold a hit bit per group with
        writable fields, a one-hot of the low address bits and the data; the clock edge
        ending cycle t + 2 writes the hit register's writable fields, so storage and
        pulses change in cycle t + 3 (pulses for that one cycle)."""
        m.d.sync += [self.pulse.eq(0), self.err_clear.eq(0)]
        writable = [(r, f, t) for r in self._regs for f in r.fields
                    if (t := self._write_target(r, f)) is not None]
        wdata2 = Signal(len(wdata1), reset_less=True)
        m.d.sync += wdata2.eq(wdata1)
        group_hit, offset_hit = {}, {}
        for r, _, _ in writable:
            g, o = r.addr >> lo_bits, r.addr & ((1 << lo_bits) - 1)
            if g not in group_hit:
                group_hit[g] = Signal(name=f"wgrp{g:x}")
                m.d.sync += group_hit[g].eq(we1 & (hi1 == g))
            if o not in offset_hit:
                offset_hit[o] = Signal(name=f"woff{o:x}", reset_less=True)
                m.d.sync += offset_hit[o].eq(lo1 == o)
        for r, f, target in writable:
            with m.If(group_hit[r.addr >> lo_bits] & offset_hit[r.addr & ((1 << lo_bits) - 1)]):
                m.d.sync += target.eq(wdata2[f.lsb:f.lsb + f.width])


designs.register("t3_csr", lambda cfg: Csr(cfg=cfg))
