"""cocotb entry point of the stream drivers' own tests (verif/tb_streams.py), under Icarus
and Verilator, on a 4-entry stream FIFO. One build per simulator."""

import pytest
from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from verif.runner import run_cocotb, verilog_for
from verif.tb_streams import DEPTH

TOP = "t3_stream_fifo"
WIDTH = 16
#: the cocotb seed (printed by cocotb; the tests' random pauses derive from it)
SEED = 5


class StreamFifo(wiring.Component):
    """``i`` -> a DEPTH-entry FIFO -> ``o`` (the drivers' test DUT)."""
    i: In(stream.Signature(WIDTH))
    o: Out(stream.Signature(WIDTH))

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=WIDTH, depth=DEPTH)
        m.d.comb += [fifo.w_data.eq(self.i.payload), fifo.w_en.eq(self.i.valid),
                     self.i.ready.eq(fifo.w_rdy),
                     self.o.payload.eq(fifo.r_data), self.o.valid.eq(fifo.r_rdy),
                     fifo.r_en.eq(self.o.ready)]
        return m


@pytest.mark.cocotb
@pytest.mark.xdist_group("streams")
def test_stream_drivers(sim):
    src = verilog_for(TOP, {"width": WIDTH, "depth": DEPTH}, StreamFifo)
    print(f"stream drivers on {sim}: cocotb seed={SEED}")
    run_cocotb(sim=sim, top=TOP, verilog=src, test_module="verif.tb_streams", params={},
               seed=SEED)
