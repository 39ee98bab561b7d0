"""DMA engine: moves fired tiles to the next device, no compute unit involved."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from contract import latency
from contract.spec import COUNTER_BITS, T3Config

from . import designs, layouts
from .addrmap import count_event, tile_step1, tile_step2
from .component import T3Component
from .interfaces import MemoryPort
from .layouts import FireOp, Op

__all__ = ["DmaEngine"]


class DmaEngine(T3Component):
    """Moves fired tiles from this device's memory to the next device as link packets.

    A queue of ``cfg.dma_queue_depth`` fires {wf_id, region, phase, whole}. Per fire the
    engine computes the tile geometry from the region registers (the formulas of
    :meth:`contract.program.Region.tile`, in two pipelined steps), then issues one READ
    per line on ``mem.req`` in :meth:`TileGeometry.addresses` order (row by row,
    increasing address), at most one per cycle. Each response on ``mem.resp`` (in order)
    becomes one packet {op = the packets' op for the region's fire op of the phase
    (contract.spec.FIRE_OP_TO_OP), dest = ``next_device``, addr - base + dest_base, wf_id,
    data} on ``link``, a registered output. A FireOp.NONE fire is counted as a completed
    tile and sends nothing; so is a tile outside its region (the tracker flagged it). A
    fire with ``whole`` set (a DMA_KICK from software, used by the unfused baseline)
    moves the whole region: ``outer_extent`` rows of ``inner_extent`` lines from ``base``.

    At most :attr:`outstanding` READs are in flight (a FIFO of per-line packet headers
    and a data FIFO, each that deep), so link backpressure stalls the issue of READs,
    never the acceptance of their responses: the memory never waits on the link (that
    wait, around a ring of full links, would deadlock).

    Timing (no backpressure): a fire accepted in cycle t gives the first
    ``mem.req.valid`` in cycle t + :attr:`issue_latency` (queue 1, geometry 2);
    back-to-back tiles cost 2 idle cycles of ``mem.req`` between them.

    Parameters
    ----------
    cfg : T3Config
        Queue depths (``dma_queue_depth``; ``mem_queue_depth`` = :attr:`outstanding`) and
        every width.

    Attributes
    ----------
    fire : In(stream.Signature(layouts.fire_layout(cfg)))
        Tiles to send: the tracker's fires and software kicks.
    mem : Out(MemoryPort(cfg=cfg))
        READs of the tiles' lines (full lane mask, no data) and their data, in order.
    link : Out(stream.Signature(layouts.link_packet(cfg)))
        The packets for the next device.
    regions : In(layouts.regions_layout(cfg))
        The programmed regions (geometry, ``dest_base``, fire ops).
    next_device : In(cfg.device_bits)
        ``dest`` of the packets.
    clear_counters : In(1)
        Zeroes ``tiles`` and ``lines``.
    tiles : Out(COUNTER_BITS)
        Tiles completed (last packet taken by the link, or a tile that sends nothing).
    lines : Out(COUNTER_BITS)
        Packets handed to the link output register.
    queued : Out(range(cfg.dma_queue_depth + 1))
        Fires waiting in the queue.
    busy : Out(1)
        A fire, READ or packet is anywhere in the engine.
    outstanding : int
        Most READs in flight.
    issue_latency : int
        ``fire`` accepted -> first ``mem.req.valid`` (contract.latency.DMA_ISSUE).
    """

    def __init__(self, *, cfg: T3Config):
        super().__init__(cfg, lambda cfg: {
            "fire": In(stream.Signature(layouts.fire_layout(cfg))),
            "mem": Out(MemoryPort(cfg=cfg)),
            "link": Out(stream.Signature(layouts.link_packet(cfg))),
            "regions": In(layouts.regions_layout(cfg)),
            "next_device": In(cfg.device_bits),
            "clear_counters": In(1),
            "tiles": Out(COUNTER_BITS),
            "lines": Out(COUNTER_BITS),
            "queued": Out(range(cfg.dma_queue_depth + 1)),
            "busy": Out(1),
        })

    @property
    def outstanding(self) -> int:
        """Most READs in flight (issued, response not yet taken)."""
        return self.cfg.mem_queue_depth

    @property
    def issue_latency(self) -> int:
        """Cycles from a fire's acceptance on ``fire`` to its first ``mem.req.valid``."""
        return latency.DMA_ISSUE

    def _header(self) -> data.StructLayout:
        """What a READ in flight needs to become a packet when its data returns."""
        cfg = self.cfg
        return data.StructLayout({"addr": cfg.addr_bits, "wf_id": cfg.wf_id_bits,
                                  "op": Op, "last": 1})

    # ---- design decision a broken variant overrides (verif/formal/mutants.py) ----------

    def _dest_offset(self, reg):
        """What a line's source address adds to become its destination address:
        ``dest_base - base`` of the region ``reg`` (modulo the address space)."""
        return reg.dest_base - reg.base

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        fl = layouts.fire_layout(cfg)
        hl = self._header()

        m.submodules.queue = queue = SyncFIFO(width=fl.size, depth=cfg.dma_queue_depth)
        m.submodules.meta = meta = SyncFIFO(width=hl.size, depth=self.outstanding)
        m.d.comb += [queue.w_en.eq(self.fire.valid), queue.w_data.eq(self.fire.payload),
                     self.fire.ready.eq(queue.w_rdy), self.queued.eq(queue.level)]
        none_done, issuing = self._issue(m, queue, meta, hl)
        take, last_taken, holding = self._packets(m, meta, hl)
        count_event(m, self.lines, take, self.clear_counters)
        # a NONE tile and the last line of another can complete in the same cycle
        count_event(m, self.tiles, none_done + last_taken, self.clear_counters)
        m.d.comb += self.busy.eq(queue.r_rdy | holding | issuing)
        return m

    def _issue(self, m: Module, queue: SyncFIFO, meta: SyncFIFO, hl: data.StructLayout):
        """The per-tile issue FSM: IDLE (take a fire, geometry step 1), GEOM (step 2, the
        tile's rows and origin), ISSUE (one READ per line on ``mem.req``, its packet
        header into ``meta``). Returns (a tile that sends nothing completes, not IDLE)."""
        cfg = self.cfg
        fl = layouts.fire_layout(cfg)
        cur = Signal(fl)                       # the tile being issued
        s1 = {"ge": Signal(), "off_o": Signal(cfg.wf_outer_bits + cfg.count_bits),
              "off_i": Signal(cfg.wf_inner_bits + cfg.count_bits)}
        fire_op = Signal(FireOp)               # the tile's fire op (its phase's)
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
        rd = self.mem.req

        # geometry step 2 of the tile in `cur` (used in state GEOM)
        reg = self.regions[cur.region]
        st2 = tile_step2(m, cfg, reg, s1)
        fop = FireOp(Mux(cur.phase, reg.store_fire, reg.update_fire))
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
                m.d.sync += [fire_op.eq(fop), r.eq(0), c.eq(0),
                             pitch.eq(reg.pitch), dest_off.eq(self._dest_offset(reg))]
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
                m.d.comb += rd.valid.eq(meta.w_rdy)
                hdr = Signal(hl)
                m.d.comb += [hdr.addr.eq(addr + dest_off), hdr.wf_id.eq(cur.wf_id),
                             hdr.op.eq(layouts.fire_packet_op(fire_op)), hdr.last.eq(last),
                             meta.w_data.eq(hdr), meta.w_en.eq(rd.valid & rd.ready)]
                with m.If(rd.valid & rd.ready):
                    with m.If(c == row_lines - 1):
                        m.d.sync += [c.eq(0), r.eq(r + 1), row_start.eq(row_start + pitch),
                                     addr.eq(row_start + pitch)]
                    with m.Else():
                        m.d.sync += [c.eq(c + 1), addr.eq(addr + 1)]
                    with m.If(last):
                        m.next = "IDLE"

        m.d.comb += none_done.eq(fsm.ongoing("GEOM") & skip)
        # READs carry no data; every lane of the line is returned (mask all ones)
        m.d.comb += [rd.payload.op.eq(Op.READ), rd.payload.addr.eq(addr),
                     rd.payload.mask.eq((1 << cfg.lanes) - 1), rd.payload.data.eq(0)]
        return none_done, ~fsm.ongoing("IDLE")

    def _packets(self, m: Module, meta: SyncFIFO, hl: data.StructLayout):
        """Responses -> link packets (a registered output). Returns (a packet is taken
        into the output register, ... and it is its tile's last, a packet is held)."""
        cfg = self.cfg
        resp = self.mem.resp
        # Every READ in flight has a reserved slot in `rdata` (as deep as `meta`), so a
        # response is always accepted: a stalled link never stalls the memory. (Without
        # it, a ring of full links and memories blocked on DMA responses deadlocks.)
        m.submodules.rdata = rdata = SyncFIFOBuffered(width=cfg.line_bits, depth=self.outstanding)
        m.d.comb += [rdata.w_data.eq(resp.payload.data), rdata.w_en.eq(resp.valid),
                     resp.ready.eq(rdata.w_rdy)]
        out_valid = Signal()
        h = data.View(hl, meta.r_data)
        take = Signal()
        m.d.comb += [self.link.valid.eq(out_valid),
                     take.eq(meta.r_rdy & rdata.r_rdy & (~out_valid | self.link.ready)),
                     meta.r_en.eq(take), rdata.r_en.eq(take)]
        with m.If(self.link.valid & self.link.ready):
            m.d.sync += out_valid.eq(0)
        pkt = self.link.payload
        with m.If(take):
            m.d.sync += [out_valid.eq(1), pkt.op.eq(h.op), pkt.dest.eq(self.next_device),
                         pkt.addr.eq(h.addr), pkt.wf_id.eq(h.wf_id), pkt.data.eq(rdata.r_data)]
        return take, take & h.last, meta.r_rdy | rdata.r_rdy | out_valid


designs.register("t3_dma", lambda cfg: DmaEngine(cfg=cfg))
