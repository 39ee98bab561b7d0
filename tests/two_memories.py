"""A small design with two memories, shared by the tests of the Verilog conversion
(tests/test_verilog_postprocess.py, tests/test_amaranth_private.py): an all-zero memory
(written, so it stays a memory) and a ROM with non-zero contents."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

#: the ROM's contents
ROM = [3, 1, 4, 1, 5, 9, 2, 6]


class TwoMemories(wiring.Component):
    addr: In(3)
    zero_q: Out(8)
    rom_q: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.submodules.zero = zero = Memory(shape=8, depth=8, init=[])
        m.submodules.rom = rom = Memory(shape=8, depth=8, init=ROM)
        zr, rr = zero.read_port(), rom.read_port()
        wr = zero.write_port()
        m.d.comb += [zr.addr.eq(self.addr), rr.addr.eq(self.addr), self.zero_q.eq(zr.data),
                     self.rom_q.eq(rr.data), wr.addr.eq(self.addr), wr.data.eq(rr.data),
                     wr.en.eq(self.addr[0])]
        return m
