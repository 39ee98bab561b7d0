"""Address map (the paper's ``remote_map``): classify producer requests and link arrivals.

Also home of the helpers the track & trigger blocks share: the tile-geometry arithmetic
of :meth:`contract.program.Region.tile` split into two pipeline steps, the region match,
sticky error flags and event counters. (The layouts they work on are in
:mod:`hw.layouts`.)
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from contract import latency
from contract.spec import COUNTER_BITS, T3Config

from . import designs, layouts
from .component import T3Component
from .layouts import Op, ProducerAction

__all__ = ["AddressMap", "tile_step1", "tile_step2", "region_match", "Sticky", "count_event"]


def count_event(m: Module, counter: Signal, inc, clear) -> None:
    """A wrapping event counter: += ``inc`` (a 1-bit event or a small count) every cycle,
    zeroed by ``clear`` (clear wins)."""
    with m.If(clear):
        m.d.sync += counter.eq(0)
    with m.Else():
        m.d.sync += counter.eq(counter + inc)


class Sticky:
    """Sticky error flags plus the detail of the first error seen while all were clear.

    ``events`` is a dict name -> 1-bit Value (this cycle's misuse); ``clear`` has the
    flags' layout (write-1-to-clear per flag). A flag stays set until cleared (set wins
    over clear in the same cycle)."""

    def __init__(self, m: Module, flags, detail, *, clear, events: dict, detail_value) -> None:
        any_new = Signal()
        m.d.comb += any_new.eq(Cat(*events.values()).any())
        for name, ev in events.items():
            f = getattr(flags, name)
            with m.If(ev):
                m.d.sync += f.eq(1)
            with m.Elif(getattr(clear, name)):
                m.d.sync += f.eq(0)
        with m.If(any_new & ((Value.cast(flags) & ~Value.cast(clear)) == 0)):
            m.d.sync += detail.eq(detail_value)


# ---- tile geometry (program.Region.tile), in two pipeline steps ------------------------

def tile_step1(m: Module, cfg: T3Config, region, wf_id) -> dict[str, Value]:
    """Step 1: the tile's offsets in the region, in rows and lines:
    ``off_o = (tile_outer_idx - tile_outer0) * tile_outer`` (same inner), and whether
    the tile index is not below the region's first tile (``ge``)."""
    to = Value.cast(wf_id)[cfg.wf_inner_bits:]
    ti = Value.cast(wf_id)[:cfg.wf_inner_bits]
    lo = (to - region.tile_outer0)[:cfg.wf_outer_bits]
    li = (ti - region.tile_inner0)[:cfg.wf_inner_bits]
    return {"ge": (to >= region.tile_outer0) & (ti >= region.tile_inner0),
            "off_o": lo * region.tile_outer, "off_i": li * region.tile_inner}


def tile_step2(m: Module, cfg: T3Config, region, s1) -> dict[str, Value]:
    """Step 2 (from the registered step 1): ``inside`` (the tile is in the region), the
    clipped ``rows`` and ``row_lines`` and the tile's first line ``origin``."""
    off_o, off_i = s1["off_o"], s1["off_i"]
    inside = s1["ge"] & (off_o < region.outer_extent) & (off_i < region.inner_extent)
    # what is left of the region past the tile's offset, at the extents' full width:
    # inside the region it is > 0 and fits; cutting it to the count width first (as an
    # earlier version did) wrapped for large regions and gave tiles of 0 rows, i.e. a
    # threshold of 0 and an early fire (found by verif/formal/tracker.py)
    left_o = (region.outer_extent - off_o)[:len(region.outer_extent)]
    left_i = (region.inner_extent - off_i)[:len(region.inner_extent)]
    rows = Mux(region.tile_outer < left_o, region.tile_outer, left_o)[:cfg.count_bits]
    row_lines = Mux(region.tile_inner < left_i, region.tile_inner, left_i)[:cfg.count_bits]
    origin = (region.base + off_o * region.pitch + off_i)[:cfg.addr_bits]
    return {"inside": inside, "rows": rows, "row_lines": row_lines, "origin": origin}


def region_match(m: Module, cfg: T3Config, regions, addr) -> tuple[Value, Value]:
    """(hit, index) of the first region whose [base, limit) holds ``addr``."""
    hits = Cat(*((addr >= regions[i].base) & (addr < regions[i].limit) for i in range(cfg.regions)))
    idx = Signal(cfg.region_bits)
    for i in reversed(range(cfg.regions)):
        with m.If(hits[i]):
            m.d.comb += idx.eq(i)
    return hits.any(), idx


class AddressMap(T3Component):
    """Classify producer requests and link arrivals by the region that holds their address.

    Two independent lanes, each a one-stage pipeline: a request accepted in cycle t is
    on the lane's output in cycle t + :attr:`latency`, one request per cycle per lane.

    * Producer lane (``producer`` -> ``local[0]`` or ``remote``): a READ (the GPU
      reading its GEMM operands, hw/env/readgen.py) is local and untracked whatever the
      region. A STORE or UPDATE goes by the region holding ``addr`` (the first match;
      regions never overlap) and its ``producer`` action: LOCAL or no region -> local,
      untracked; REMOTE -> a link packet {op, dest = ``next_device``, addr - base +
      remote_base, wf_id, data} on ``remote``; TRACKED -> local, tracked, phase 0 for an
      UPDATE and 1 for a STORE.
    * Link lane (``ingress`` -> ``local[1]``): an UPDATE into a region with
      update_contribs > 0 and a STORE into one with store_contribs > 0 are tracked (phase
      by op); everything else is a plain local request. The packet's ``dest`` is not
      checked (the ring delivers only packets for this device).

    Local requests carry a full lane mask (producers and the link move whole lines).
    Errors: a line address >= ``mem_depth_lines`` (``addr_range``, either lane, READs
    too) or a READ arriving from the link (``bad_op``: the link carries only UPDATEs and
    STOREs): the request is consumed and not applied anywhere.

    Parameters
    ----------
    cfg : T3Config
        Widths of every port; ``mem_depth_lines`` for the range check; ``regions``.

    Attributes
    ----------
    producer : In(stream.Signature(layouts.producer_request(cfg)))
        The GPU's requests.
    ingress : In(stream.Signature(layouts.link_packet(cfg)))
        Packets from the previous device on the ring.
    local : Out(stream.Signature(layouts.tracked_request(cfg))).array(2)
        Requests for this device's memory, to the tracker's lanes: ``[0]`` from
        ``producer``, ``[1]`` from ``ingress``; ``mem`` is the memory request, ``wf_id``,
        ``region``, ``phase``, ``tracked`` what the tracker counts it by.
    remote : Out(stream.Signature(layouts.link_packet(cfg)))
        REMOTE producer requests, translated, for the next device.
    regions : In(layouts.regions_layout(cfg))
        The programmed regions (from the CSR block).
    next_device : In(cfg.device_bits)
        ``dest`` of the packets on ``remote`` (latched with each packet).
    enable : In(1)
        0: neither input is accepted.
    clear : In(layouts.error_flags("addrmap"))
        Write-1-to-clear of ``err``, one bit per flag (a flag raised in the same cycle
        stays set).
    clear_counters : In(1)
        Zeroes the counters.
    err : Out(layouts.error_flags("addrmap"))
        Sticky flags ``addr_range``, ``bad_op`` (contract.errors).
    err_addr : Out(cfg.addr_bits + 1)
        Address of the first error raised while every flag was clear (the producer's
        when both lanes err in one cycle).
    err_ingress : Out(1)
        ``err_addr`` came from the link lane.
    producer_reqs, ingress_reqs : Out(COUNTER_BITS)
        Requests accepted on ``producer`` / ``ingress`` (wrapping).
    remote_sent : Out(COUNTER_BITS)
        Packets taken from ``remote`` (wrapping).
    busy : Out(1)
        A request is in either stage.
    """

    def __init__(self, *, cfg: T3Config):
        super().__init__(cfg, lambda cfg: {
            "producer": In(stream.Signature(layouts.producer_request(cfg))),
            "ingress": In(stream.Signature(layouts.link_packet(cfg))),
            "local": Out(stream.Signature(layouts.tracked_request(cfg))).array(2),
            "remote": Out(stream.Signature(layouts.link_packet(cfg))),
            "regions": In(layouts.regions_layout(cfg)),
            "next_device": In(cfg.device_bits),
            "enable": In(1),
            "clear": In(layouts.error_flags("addrmap")),
            "clear_counters": In(1),
            "err": Out(layouts.error_flags("addrmap")),
            "err_addr": Out(cfg.addr_bits + 1),
            "err_ingress": Out(1),
            "producer_reqs": Out(COUNTER_BITS),
            "ingress_reqs": Out(COUNTER_BITS),
            "remote_sent": Out(COUNTER_BITS),
            "busy": Out(1),
        })

    @property
    def latency(self) -> int:
        """Cycles from acceptance to the output, either lane (contract.latency.ADDRMAP)."""
        return latency.ADDRMAP

    # ---- design decision a broken variant overrides (verif/formal/mutants.py) ----------

    def _remote_address(self, addr, reg):
        """The line address a REMOTE request ``addr`` of region ``reg`` gets on the next
        device: ``addr - base + remote_base``."""
        return addr - reg.base + reg.remote_base

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        full_mask = (1 << cfg.lanes) - 1
        events = {name: Signal(name=name) for name in layouts.error_flags("addrmap").members}
        err_addr = Signal(cfg.addr_bits + 1)
        err_ingress = Signal()

        # One stage register per lane; the producer stage feeds `local[0]` or `remote`.
        busy = []
        for lane, src in enumerate((self.producer, self.ingress)):
            out = self.local[lane]
            valid = Signal(name=f"v{lane}")
            is_remote = Signal(name=f"rem{lane}")
            local = Signal(layouts.tracked_request(cfg), name=f"loc{lane}")
            remote_addr = Signal(cfg.addr_bits, name=f"raddr{lane}")
            # the destination is latched with the packet: a CTRL write while the packet
            # waits on `remote` must not change a presented payload (stream rule; found by
            # verif/formal/streams.py)
            remote_dest = Signal.like(self.next_device, name=f"rdest{lane}")
            busy.append(valid)
            leaving = Signal(name=f"leave{lane}")
            if lane == 0:
                m.d.comb += leaving.eq(Mux(is_remote, self.remote.ready, out.ready))
                # the remote packet shares the stage register; only its address differs
                rp = self.remote.payload
                m.d.comb += [out.valid.eq(valid & ~is_remote), out.payload.eq(local),
                             self.remote.valid.eq(valid & is_remote),
                             rp.op.eq(local.mem.op), rp.dest.eq(remote_dest),
                             rp.addr.eq(remote_addr), rp.wf_id.eq(local.wf_id),
                             rp.data.eq(local.mem.data)]
            else:
                m.d.comb += [leaving.eq(out.ready), out.valid.eq(valid), out.payload.eq(local)]
            with m.If(leaving):
                m.d.sync += valid.eq(0)
            m.d.comb += src.ready.eq(self.enable & (~valid | leaving))

            p = src.payload
            hit, idx = region_match(m, cfg, self.regions, p.addr)
            reg = self.regions[idx]
            is_store = p.op == Op.STORE
            is_read = p.op == Op.READ
            if lane == 0:
                # a producer READ stays local and is never counted, whatever the region
                tracked = hit & (reg.producer == ProducerAction.TRACKED) & ~is_read
                remote_now = hit & (reg.producer == ProducerAction.REMOTE) & ~is_read
                bad_op = Const(0)
            else:
                contribs = Mux(is_store, reg.store_contribs, reg.update_contribs)
                tracked = hit & (contribs != 0)
                remote_now = Const(0)
                bad_op = is_read
            bad_range = p.addr >= cfg.mem_depth_lines
            accept = src.valid & src.ready
            with m.If(accept):
                with m.If(bad_range):
                    m.d.comb += events["addr_range"].eq(1)
                with m.Elif(bad_op):
                    m.d.comb += events["bad_op"].eq(1)
                with m.Else():
                    m.d.sync += [
                        valid.eq(1), is_remote.eq(remote_now),
                        local.mem.op.eq(p.op), local.mem.addr.eq(p.addr),
                        local.mem.mask.eq(full_mask), local.mem.data.eq(p.data),
                        local.wf_id.eq(p.wf_id), local.region.eq(idx),
                        local.phase.eq(is_store), local.tracked.eq(tracked),
                        remote_addr.eq(self._remote_address(p.addr, reg)),
                        remote_dest.eq(self.next_device),
                    ]
            counter = self.producer_reqs if lane == 0 else self.ingress_reqs
            count_event(m, counter, accept, self.clear_counters)
        # Detail of a producer-lane error wins over one on the link in the same cycle.
        pp = self.producer.payload
        pe = self.producer.valid & self.producer.ready & (pp.addr >= cfg.mem_depth_lines)
        m.d.comb += [err_addr.eq(Mux(pe, pp.addr, self.ingress.payload.addr)), err_ingress.eq(~pe)]
        Sticky(m, self.err, Cat(self.err_addr, self.err_ingress), clear=self.clear, events=events,
               detail_value=Cat(err_addr, err_ingress))
        count_event(m, self.remote_sent, self.remote.valid & self.remote.ready, self.clear_counters)
        m.d.comb += self.busy.eq(Cat(*busy).any())
        return m


designs.register("t3_addrmap", lambda cfg: AddressMap(cfg=cfg))
