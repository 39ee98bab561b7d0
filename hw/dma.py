"""DMA engine: moves fired tiles to the next device, no compute unit involved.

A queue of ``cfg.dma_queue_depth`` fire events {wf_id, region, phase}. Per fire, the
engine computes the tile geometry from the region registers (the formulas of
:meth:`contract.program.Region.tile`, in two pipelined steps), then issues one READ per
line on ``rd`` in :meth:`TileGeometry.addresses` order (row by row, increasing address),
at most one per cycle. Read responses arrive in order on ``resp``; each becomes one link
packet {op = the region's fire op for the phase, dest = next_device,
addr = addr - base + dest_base, wf_id, data} on ``link`` (a registered output).
A FireOp.NONE fire is counted as a completed tile and sends nothing. A fire with
``whole`` set (a DMA_KICK from software, used by the unfused baseline) moves the whole
region: ``outer_extent`` rows of ``inner_extent`` lines from ``base``.

Outstanding reads are limited to ``outstanding`` (a FIFO of per-line packet headers,
``cfg.mem_queue_depth`` deep, and a data FIFO as deep), so link backpressure stalls the
issue of READs, never the acceptance of their responses: the memory never waits on the
link (that wait, around a ring of full links, would deadlock).

Timing (no backpressure): a fire accepted on ``fire`` in cycle t gives the first
``rd.valid`` in cycle t + ``issue_latency`` (queue 1, geometry 2). Back-to-back tiles
cost 2 idle cycles of ``rd`` between them (the geometry steps).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from contract.spec import FireOp, Op, T3Config

from . import designs, layouts
from .addrmap import (COUNTER_BITS, check_cfg, count_event, fire_layout, regions_layout,
                      tile_step1, tile_step2)

__all__ = ["DmaEngine"]


class DmaEngine(wiring.Component):
    """The DMA engine (see the module doc).

    Ports: ``fire`` (In), ``rd`` (Out memory requests: READs), ``resp`` (In read data),
    ``link`` (Out link packets), ``regions``/``next_device``/``clear_counters`` (In),
    ``tiles``/``lines`` (Out counters), ``queued`` (Out, fires waiting), ``busy`` (Out).
    """

    ISSUE_LATENCY = 3    # fire accepted -> first rd.valid (queue 1 + geometry 2)

    def __init__(self, *, cfg: T3Config):
        self._cfg = check_cfg("DmaEngine", cfg)
        super().__init__({
            "fire": In(stream.Signature(fire_layout(cfg))),
            "rd": Out(stream.Signature(layouts.memory_request(cfg))),
            "resp": In(stream.Signature(layouts.memory_response(cfg))),
            "link": Out(stream.Signature(layouts.link_packet(cfg))),
            "regions": In(regions_layout(cfg)),
            "next_device": In(cfg.device_bits),
            "clear_counters": In(1),
            "tiles": Out(COUNTER_BITS),
            "lines": Out(COUNTER_BITS),
            "queued": Out(range(cfg.dma_queue_depth + 1)),
            "busy": Out(1),
        })

    @property
    def cfg(self) -> T3Config:
        return self._cfg

    @property
    def outstanding(self) -> int:
        """Most READs in flight (issued, response not yet taken)."""
        return self._cfg.mem_queue_depth

    @property
    def issue_latency(self) -> int:
        """Cycles from a fire's acceptance on ``fire`` to its first ``rd.valid``."""
        return self.ISSUE_LATENCY

    def _header(self) -> data.StructLayout:
        cfg = self._cfg
        return data.StructLayout({"addr": cfg.addr_bits, "wf_id": cfg.wf_id_bits,
                                  "op": 2, "last": 1})

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        fl = fire_layout(cfg)
        hl = self._header()

        m.submodules.queue = queue = SyncFIFO(width=fl.size, depth=cfg.dma_queue_depth)
        m.submodules.meta = meta = SyncFIFO(width=hl.size, depth=self.outstanding)
        m.d.comb += [queue.w_en.eq(self.fire.valid), queue.w_data.eq(self.fire.payload),
                     self.fire.ready.eq(queue.w_rdy), self.queued.eq(queue.level)]

        # ---- per-tile issue FSM ---------------------------------------------------------
        cur = Signal(fl)                       # the tile being issued
        s1 = {"ge": Signal(), "off_o": Signal(cfg.wf_outer_bits + cfg.count_bits),
              "off_i": Signal(cfg.wf_inner_bits + cfg.count_bits)}
        op = Signal(2)
        # wide enough for a tile (count_bits) and for a whole region (addr_bits + 1)
        ext_bits = max(cfg.count_bits, cfg.addr_bits + 1)
        rows = Signal(ext_bits)
        row_lines = Signal(ext_bits)
        r = Signal(ext_bits)
        c = Signal(ext_bits)
        addr = Signal(cfg.addr_bits)
        row_start = Signal(cfg.addr_bits)
        pitch = Signal(cfg.addr_bits + 1)
        dest_off = Signal(cfg.addr_bits)       # dest_base - base, modulo the address space
        none_done = Signal()

        # geometry step 2 of the tile in `cur` (used in state GEOM)
        reg = self.regions[cur.region]
        st2 = tile_step2(m, cfg, reg, s1)
        fop = Mux(cur.phase, reg.store_fire, reg.update_fire)
        # a tile outside its region was already flagged by the tracker: send nothing
        skip = (fop == FireOp.NONE) | (~st2["inside"] & ~cur.whole)

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(queue.r_rdy):
                    f = data.View(fl, queue.r_data)
                    st = tile_step1(m, cfg, self.regions[f.region], f.wf_id)
                    m.d.comb += queue.r_en.eq(1)
                    m.d.sync += [cur.eq(f)] + [s1[k].eq(st[k]) for k in s1]
                    m.next = "GEOM"
            with m.State("GEOM"):
                m.d.sync += [op.eq(fop), r.eq(0), c.eq(0),
                             pitch.eq(reg.pitch), dest_off.eq(reg.dest_base - reg.base)]
                with m.If(cur.whole):
                    m.d.sync += [rows.eq(reg.outer_extent), row_lines.eq(reg.inner_extent),
                                 addr.eq(reg.base), row_start.eq(reg.base)]
                with m.Else():
                    m.d.sync += [rows.eq(st2["rows"]), row_lines.eq(st2["row_lines"]),
                                 addr.eq(st2["origin"]), row_start.eq(st2["origin"])]
                with m.If(skip):
                    m.next = "IDLE"
                with m.Else():
                    m.next = "ISSUE"
            with m.State("ISSUE"):
                last = (r == rows - 1) & (c == row_lines - 1)
                m.d.comb += self.rd.valid.eq(meta.w_rdy)
                hdr = Signal(hl)
                m.d.comb += [hdr.addr.eq(addr + dest_off), hdr.wf_id.eq(cur.wf_id),
                             hdr.op.eq(Mux(op == FireOp.UPDATE, Op.UPDATE, Op.STORE)),
                             hdr.last.eq(last),
                             meta.w_data.eq(hdr), meta.w_en.eq(self.rd.valid & self.rd.ready)]
                with m.If(self.rd.valid & self.rd.ready):
                    with m.If(c == row_lines - 1):
                        m.d.sync += [c.eq(0), r.eq(r + 1), row_start.eq(row_start + pitch),
                                     addr.eq(row_start + pitch)]
                    with m.Else():
                        m.d.sync += [c.eq(c + 1), addr.eq(addr + 1)]
                    with m.If(last):
                        m.next = "IDLE"

        m.d.comb += none_done.eq(fsm.ongoing("GEOM") & skip)

        # READs carry no data; every lane of the line is returned (mask all ones)
        m.d.comb += self.rd.payload.eq(Cat(Const(Op.READ, 2), addr, Const((1 << cfg.lanes) - 1, cfg.lanes),
                                           Const(0, cfg.line_bits)))

        # ---- responses -> link packets (registered output) ------------------------------
        # Every READ in flight has a reserved slot in `rdata` (as deep as `meta`), so a
        # response is always accepted: a stalled link never stalls the memory. (Without
        # it, a ring of full links and memories blocked on DMA responses deadlocks.)
        m.submodules.rdata = rdata = SyncFIFOBuffered(width=cfg.line_bits, depth=self.outstanding)
        m.d.comb += [rdata.w_data.eq(self.resp.payload.data), rdata.w_en.eq(self.resp.valid),
                     self.resp.ready.eq(rdata.w_rdy)]
        out_valid = Signal()
        h = data.View(hl, meta.r_data)
        take = Signal()
        m.d.comb += [self.link.valid.eq(out_valid),
                     take.eq(meta.r_rdy & rdata.r_rdy & (~out_valid | self.link.ready)),
                     meta.r_en.eq(take), rdata.r_en.eq(take)]
        with m.If(self.link.valid & self.link.ready):
            m.d.sync += out_valid.eq(0)
        with m.If(take):
            m.d.sync += [out_valid.eq(1), self.link.payload.op.eq(h.op),
                         self.link.payload.dest.eq(self.next_device),
                         self.link.payload.addr.eq(h.addr), self.link.payload.wf_id.eq(h.wf_id),
                         self.link.payload.data.eq(rdata.r_data)]
        count_event(m, self.lines, take, self.clear_counters)
        # a NONE tile and the last line of another can complete in the same cycle
        count_event(m, self.tiles, none_done + (take & h.last), self.clear_counters)
        m.d.comb += self.busy.eq(queue.r_rdy | meta.r_rdy | rdata.r_rdy | out_valid
                                 | ~fsm.ongoing("IDLE"))
        return m


designs.register("t3_dma", lambda cfg: DmaEngine(cfg=cfg))
