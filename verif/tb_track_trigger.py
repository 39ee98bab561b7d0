"""cocotb bench of the TrackTrigger unit (one device of a ring) against the golden ring.

``golden_device``: the unit is programmed through its CSR bus from the sim_models
programming; its producer port replays the device's GEMM store trace; its ingress port
replays what the previous device sends it (REMOTE producer stores and DMA packets, as the
golden ring model predicts); the memory is :class:`ComputeMemoryModel` applying the
``mem`` requests in order and answering READs on ``mem_resp``. Random idle cycles and
backpressure on every stream. Checks: the egress packets are exactly the golden
DMA packets (each once, per tile in line order, golden addresses and data) plus the
REMOTE stores; the final memory equals the golden memory bit for bit; the CSR counters
and flags agree with the golden fires.

Causality the real ring guarantees and a replayed ingress does not: an all-gather STORE
into a tile this device itself sent during the reduce-scatter must not overwrite it
before the DMA read it. The bench holds such a STORE until the device has emitted the
tile's reduce-scatter packets.

The tracker table is a cache over backing counters (hw/tracker_table.py): the bench
records the order in which requests reach memory and feeds the tracked ones to the cache
model (sim_models.tracker_cache); the unit's TRACKER_HITS/MISSES/FILLS/SPILLS must be the
model's. ``producer_delay`` starts the producer late, so the previous device's half of
every tile (the link half) arrives first and a whole chunk of tiles is live at once: with
a chunk of 8,192 WF tiles against 256 entries nearly every tile is spilled and filled
back.

``misuse_flags``: every error flag raised on purpose, read and cleared through the CSR
bus; then more live tiles than table entries (no flag, every tile fires once).

Each test has its own parameters (verif/test_track_trigger.py) and runs only when the run
selects it by name (``tb_params(test=...)`` fails otherwise, verif/runner.py).

The expected link traffic (what a device sends: REMOTE stores and its fired tiles' DMA
packets) comes from the model, sim_models.link_traffic; this bench only packs it.
"""

from __future__ import annotations

from collections import Counter

import cocotb
from cocotb.triggers import RisingEdge

from contract import regmap
from contract.gemm import GemmSpec
from contract.program import DeviceProgram, Region, wf_id
from contract.spec import (FireOp, Op, ProducerAction, T3Config, link_packet_fields,
                           memory_request_fields, memory_response_fields,
                           producer_request_fields)
from sim_models.golden import run_ring
from sim_models.link_traffic import LinkPacket, link_traffic, tracked_requests
from sim_models.nmc_model import ComputeMemoryModel
from sim_models.tracker_cache import TrackerCacheModel
from sim_models.workload import make_workload
from verif import coverage
from verif.csr_driver import CsrMaster
from verif.pacing import optional_random_pauses
from verif.runner import tb_params
from verif.streams import TB, Struct, pack_line, unpack_line


class Bench(TB):
    """One TrackTrigger: CSR bus master, producer and ingress sources, the memory (sink
    of ``mem`` applying requests to :class:`ComputeMemoryModel`, source of ``mem_resp``
    answering READs) and the egress sink; every stream paused at random with
    probability ``bp`` (seeded per stream)."""

    def __init__(self, dut, cfg: T3Config, bp: float):
        super().__init__(dut)
        self.cfg, self.bp = cfg, bp
        self.prod = Struct(producer_request_fields(cfg))
        self.link = Struct(link_packet_fields(cfg))
        self.memreq = Struct(memory_request_fields(cfg))
        self.memresp = Struct(memory_response_fields(cfg))
        self.mem = ComputeMemoryModel(cfg)
        self.applied: list[tuple[int, int]] = []      # (op, addr) of every memory request
        self.csr = CsrMaster(self.clock, dut, cfg)
        for prefix in ("producer", "ingress", "mem_resp"):
            getattr(dut, f"{prefix}__valid").value = 0
        for prefix in ("mem", "egress"):
            getattr(dut, f"{prefix}__ready").value = 0
        # the memory model here has no request queue: an empty one for the MCA threshold
        # (undriven, Icarus reads it as X and MCA holds communication until starvation)
        dut.queue_level.value = 0

    def _pauses(self, stream: str):
        return optional_random_pauses(self.rng(stream), self.bp)

    def _streams(self) -> None:
        """Stream drivers start after reset (outputs are X before the first clock)."""
        self.producer = self.source("producer", pauses=self._pauses("producer"))
        self.ingress = self.source("ingress", pauses=self._pauses("ingress"))
        self.resp = self.source("mem_resp", pauses=self._pauses("mem_resp"))
        self.mem_sink = self.sink("mem", pauses=self._pauses("mem"), on_item=self._apply)
        self.egress = self.sink("egress", pauses=self._pauses("egress"))

    def line(self, word: int):
        return unpack_line(word, self.cfg.elem_bits, self.cfg.lanes)

    def _apply(self, word: int) -> None:
        r = self.memreq.unpack(word)
        self.applied.append((r["op"], r["addr"]))
        out = self.mem.apply(r["op"], r["addr"], r["mask"], self.line(r["data"]))
        if r["op"] == Op.READ:
            self.resp.send_nowait(self.memresp.pack(data=pack_line(out, self.cfg.elem_bits)))

    def packet(self, p: LinkPacket) -> dict[str, int]:
        """A model packet as the link payload's fields."""
        return dict(op=int(p.op), dest=p.dest, addr=p.addr, wf_id=p.wf_id,
                    data=pack_line(p.data, self.cfg.elem_bits))

    async def start(self) -> None:
        await self.reset()
        self._streams()
        coverage.watch(self.clk, coverage.unit_probes(self.dut))
        ident = await self.csr.read_fields("ID")
        assert ident == {"version": regmap.VERSION, "magic": regmap.ID_MAGIC}, ident


def cache_model(cfg: T3Config, program: DeviceProgram, applied) -> TrackerCacheModel:
    """The tracker cache model fed with this device's tracked requests in the order they
    reached memory: an UPDATE (phase 0) or STORE (phase 1) into a region that counts that
    phase (contract.program: the address map's classification of both lanes)."""
    model = TrackerCacheModel(cfg)
    for op, addr in applied:
        if op == Op.READ:
            continue
        _, region = program.region_of(addr)
        is_store = op == Op.STORE
        if region is None or region.contribs(is_store) == 0:
            continue
        wf = region.tile_of_addr(cfg, addr)
        model.access(region.tile(cfg, wf).origin, int(is_store),
                     region.threshold(cfg, wf, is_store))
    return model


@cocotb.test()
@coverage.saving("track_trigger")
async def golden_device(dut):
    P = tb_params(test="golden_device")
    hw_cfg = T3Config.from_dict(P["cfg"])
    g = GemmSpec.from_dict(P["gemm"])
    cfg = hw_cfg.replace(ring_devices=g.devices)      # same widths except the device field
    wl = make_workload(cfg, g, fuse_allgather=bool(P.get("fuse_allgather", True)))
    res = run_ring(cfg, wl.programs, wl.traces)
    d = P["device"]
    n = g.devices
    prev = (d - 1) % n
    assert wl.programs[prev].next_device == d, "the golden ring's device before d sends to d"
    b = Bench(dut, hw_cfg, P["bp"])
    await b.start()
    await b.csr.program(wl.programs[d])
    rng = b.rng("ingress-order")

    # expected egress: REMOTE producer stores of this device + its DMA packets (sim_models)
    tr = wl.traces[d]
    sent = link_traffic(wl.programs, wl.traces, res, d)
    my_fires = [[b.packet(p) for p in tile] for tile in sent.dma]
    expect = Counter(tuple(sorted(b.packet(p).items())) for p in sent.remote + sent.dma_packets)
    n_expect = sum(expect.values())

    # ingress: previous device's remote stores and DMA packets, randomly merged (each in
    # order); all-gather STOREs into a tile this device fires in the reduce-scatter wait
    # until the device has sent that tile (see the module doc).
    received = link_traffic(wl.programs, wl.traces, res, prev)
    remote_in = [b.packet(p) for p in received.remote]
    dma_flat = [b.packet(p) for p in received.dma_packets]
    rs_sent = {f.wf_id: {(f.wf_id, a) for a in f.dest_addrs}
               for f in res.fires[d] if f.phase == 0 and f.op != FireOp.NONE}
    seen = set()

    def gate_ok(pkt) -> bool:
        if pkt["op"] != Op.STORE or pkt["wf_id"] not in rs_sent:
            return True
        return rs_sent[pkt["wf_id"]] <= seen

    order = ["r"] * len(remote_in) + ["d"] * len(dma_flat)
    rng.shuffle(order)
    n_ingress = len(order)

    producer_items = [b.prod.pack(op=int(tr.op[i]), addr=int(tr.addr[i]), wf_id=int(tr.wf_id[i]),
                                  data=pack_line(tr.data[i], cfg.elem_bits))
                      for i in range(len(tr))]
    delay = int(P.get("ingress_delay", 0))
    producer_delay = int(P.get("producer_delay", 0))
    ri = di = 0
    got = []
    limit = 200 * (len(tr) + n_ingress + n_expect) + 2000 + producer_delay
    for cyc in range(limit):
        if cyc == producer_delay:
            b.producer.send_nowait(producer_items)
        for w in b.egress.items[len(got):]:
            p = b.link.unpack(w)
            got.append(p)
            seen.add((p["wf_id"], p["addr"]))
        # keep the ingress queue short so that gating acts on the packet at the link head;
        # `ingress_delay`: the link starts late, so the producer runs ahead (table fills)
        while (ri + di) < n_ingress and b.ingress.pending < 2 and cyc >= delay:
            src = order[ri + di]
            if src == "r" and ri == len(remote_in):
                src = "d"
            if src == "d" and (di == len(dma_flat) or not gate_ok(dma_flat[di])):
                if ri == len(remote_in):
                    break
                src = "r"           # the held DMA packet lets remote stores overtake it
            if src == "r":
                b.ingress.send_nowait(b.link.pack(**remote_in[ri]))
                ri += 1
            else:
                b.ingress.send_nowait(b.link.pack(**dma_flat[di]))
                di += 1
        if len(got) >= n_expect and ri + di == n_ingress and cyc > producer_delay \
                and not b.producer.pending \
                and not b.ingress.pending:
            break
        await RisingEdge(b.clk)
    else:
        raise AssertionError(f"timeout: {len(got)}/{n_expect} egress packets, ingress {ri + di}/"
                             f"{n_ingress}, producer {b.producer.accepted}/{len(tr)}; status "
                             f"{await b.csr.read_fields('STATUS')} err {await b.csr.read_fields('ERR')}")
    run_cycles = cyc
    # drain: requests accepted on ingress may still wait in the tracker lanes (under MCA
    # the link lane yields to compute); wait until the unit reports idle
    for _ in range(200):
        st = await b.csr.read_fields("STATUS")
        if not st["busy"]:
            break
    else:
        raise AssertionError(f"unit still busy after draining: {st}")
    await b.cycles(30)
    got = [b.link.unpack(w) for w in b.egress.items]
    have = Counter(tuple(sorted(p.items())) for p in got)
    extra, missing = have - expect, expect - have
    assert not extra and not missing, f"egress differs: {sum(extra.values())} unexpected " \
        f"(e.g. {next(iter(extra), None)}), {sum(missing.values())} missing (e.g. {next(iter(missing), None)})"
    # every tile's packets in TileGeometry.addresses() order
    pos = {(p["op"], p["wf_id"], p["addr"]): i for i, p in enumerate(got)}
    for f in my_fires:
        idx = [pos[(p["op"], p["wf_id"], p["addr"])] for p in f]
        assert idx == sorted(idx), f"tile {f[0]['wf_id']:#x}: lines out of order"
    # memory bit-exact against the golden ring
    diff = (b.mem.mem != res.memories[d]).any(axis=1).nonzero()[0]
    assert len(diff) == 0, (f"{len(diff)} memory lines differ from golden: lines {list(diff)}; "
                            f"first: got {b.mem.mem[diff[0]]}, want {res.memories[d][diff[0]]}")
    # CSR view
    err = await b.csr.read_fields("ERR")
    assert not any(err.values()), f"error flags set: {err}"
    st = await b.csr.read_fields("STATUS")
    assert st["occupancy"] == 0 and st["busy"] == 0, st
    cnt = {}
    for k in regmap.COUNTERS:
        try:
            cnt[k] = (await b.csr.read_fields(k.upper()))[k]
        except ValueError:
            raise AssertionError(f"counter {k} reads X: {b.csr.resp.items[-1]}") from None
    tracked = tracked_requests(wl.programs[d], res.fires[d])
    model = cache_model(cfg, wl.programs[d], b.applied)
    cache = {k: cnt[f"tracker_{k}"] for k in ("hits", "misses", "fills", "spills")}
    assert cache == {k: model.counts[k] for k in cache}, \
        f"tracker hits/misses/fills/spills {cache}, cache model says {model.counts}"
    assert cache["hits"] + cache["misses"] == tracked, (cache, tracked)
    if P.get("expect_spill"):
        assert cache["spills"] > 0, "no tile was spilled: more live tiles than entries never happened"
        assert model.peak_live > cfg.tracker_entries, model.peak_live
    assert model.peak_live >= int(P.get("expect_live", 0)), \
        f"only {model.peak_live} tiles live at once, want {P['expect_live']}"
    want = {"producer_reqs": len(tr), "ingress_reqs": n_ingress, "remote_sent": len(sent.remote),
            "tracked_reqs": tracked, "fires": len(res.fires[d]), "dma_tiles": len(res.fires[d]),
            "dma_lines": sum(len(f) for f in my_fires)}
    for k, v in want.items():
        assert cnt[k] == v, f"counter {k}: {cnt[k]}, golden says {v}"
    b.log.info("device %d of %d: %d producer reqs, %d ingress, %d egress, %d fires in %d cycles "
               "(bp=%.2f); stall_cycles=%d; %.3f producer reqs/cycle; tracker %s, peak %d "
               "live tiles (%d entries)", d, n, len(tr), n_ingress, n_expect, len(res.fires[d]),
               run_cycles, b.bp, cnt["stall_cycles"], len(tr) / max(1, run_cycles - producer_delay),
               cache, model.peak_live, cfg.tracker_entries)


@cocotb.test()
@coverage.saving("track_trigger-errors")
async def misuse_flags(dut):
    """Each error flag, its detail register, the irq output and write-1-to-clear."""
    P = tb_params(test="misuse_flags")
    cfg = T3Config.from_dict(P["cfg"])
    assert cfg.mem_depth_lines < (1 << cfg.addr_bits), "needs a non power-of-two depth"
    b = Bench(dut, cfg, 0.0)
    await b.start()
    region = Region(base=0, limit=64, producer=ProducerAction.TRACKED, update_contribs=1,
                    update_fire=FireOp.NONE, store_contribs=0, pitch=8, outer_extent=8,
                    inner_extent=8, tile_outer=2, tile_inner=2, tile_outer0=1, tile_inner0=1)
    prog = DeviceProgram(device=0, next_device=1, regions=(region,))
    await b.csr.program(prog)
    flags = list(regmap.ERROR_FLAGS)

    async def expect_flag(name, *, addr=None, key=None):
        await b.cycles(20)
        err = await b.csr.read_fields("ERR")
        assert err == {f: int(f == name) for f in flags}, f"{name}: ERR={err}"
        assert int(dut.irq.value) == 1
        if addr is not None:
            assert (await b.csr.read_fields("ERR_ADDR"))["err_addr"] == addr
        if key is not None:
            k = await b.csr.read_fields("ERR_KEY")
            assert (k["err_wf_id"], k["err_phase"]) == key, k
        await b.csr.write_fields("ERR", **{name: 1})
        err = await b.csr.read_fields("ERR")
        assert not any(err.values()), f"{name} not cleared: {err}"
        assert int(dut.irq.value) == 0
        coverage.cover(f"error.{name}")

    def prod(op, addr, wf=0):
        return b.prod.pack(op=op, addr=addr, wf_id=wf, data=0)

    async def wait_idle(what: str, reads: int = 4000) -> dict:
        """Poll STATUS until nothing is in flight and no kick waits; return it."""
        for _ in range(reads):
            st = await b.csr.read_fields("STATUS")
            if not st["busy"] and not st["kick_pending"]:
                return st
        raise AssertionError(f"unit still busy after {reads} STATUS reads ({what}): {st}")

    wf = wf_id(cfg, 1, 1)
    tile = list(region.tile(cfg, wf).addresses())
    await b.producer.send(prod(Op.UPDATE, cfg.mem_depth_lines + 3))
    await expect_flag("addr_range", addr=cfg.mem_depth_lines + 3)
    # a READ is a misuse only on the link (a producer READ is background GEMM traffic:
    # local, untracked; hw/addrmap.py)
    await b.ingress.send(b.link.pack(op=int(Op.READ), dest=0, addr=5, wf_id=0, data=0))
    await expect_flag("bad_op", addr=5)
    await b.producer.send(prod(Op.UPDATE, 0, wf_id(cfg, 0, 0)))
    await expect_flag("tile_outside", key=(wf_id(cfg, 0, 0), 0))
    await b.producer.send(prod(Op.STORE, tile[0], wf))
    await expect_flag("threshold_zero", key=(wf, 1))
    await b.producer.send([prod(Op.UPDATE, a, wf) for a in tile] + [prod(Op.UPDATE, tile[0], wf)])
    await expect_flag("refire", key=(wf, 0))
    await b.csr.write_fields("CMD", clear_history=1)
    # count_over: 3 of 4 counted, then the region loses its last row, so the tile is
    # clipped to 1 row (threshold 2 lines; its first line, i.e. its counter, unchanged)
    wf2 = wf_id(cfg, 2, 2)
    tile2 = list(region.tile(cfg, wf2).addresses())
    await b.producer.send([prod(Op.UPDATE, a, wf2) for a in tile2[:3]])
    await b.cycles(10)
    assert (await b.csr.read_fields("STATUS"))["occupancy"] == 1
    smaller = Region(**{**region.__dict__, "outer_extent": 3})
    await b.csr.program(DeviceProgram(device=0, next_device=1, regions=(smaller,)))
    await b.producer.send(prod(Op.UPDATE, tile2[3], wf2))
    # clipped, wf2 is a 1x2 tile (threshold 2): count 4 > 2
    await expect_flag("count_over", key=(wf2, 0))
    assert (await b.csr.read_fields("STATUS"))["occupancy"] == 0
    assert (await b.csr.read_fields("FIRES"))["fires"] == 2

    # counter_range: a tracked tile whose first line has no backing counter (this build's
    # tracker_counters covers only the lower half of memory)
    half = cfg.tracker_counter_slots // 2
    assert half + 16 <= cfg.mem_depth_lines, "needs a backing store smaller than the memory"
    high = Region(base=half, limit=half + 16, producer=ProducerAction.TRACKED, update_contribs=1,
                  update_fire=FireOp.NONE, store_contribs=0, pitch=8, outer_extent=2,
                  inner_extent=8, tile_outer=1, tile_inner=2)
    await b.csr.program(DeviceProgram(device=0, next_device=1, regions=(high,)))
    await b.producer.send(prod(Op.UPDATE, half + 2, wf_id(cfg, 0, 1)))
    await expect_flag("counter_range", key=(wf_id(cfg, 0, 1), 0))

    # no sizing cliff: 64 tiles live at once against the table's entries (the first line
    # of every tile from the producer, then the rest from the link): no flag, every tile
    # fires once, live tiles spilled to the backing counters and filled back. The fired
    # tiles are sent as UPDATEs: long DMA work for kick_overflow below.
    big = Region(base=0, limit=256, producer=ProducerAction.TRACKED, update_contribs=1,
                 update_fire=FireOp.UPDATE, store_contribs=0, pitch=16, outer_extent=16,
                 inner_extent=16, tile_outer=2, tile_inner=2)
    await b.csr.program(DeviceProgram(device=0, next_device=1, regions=(big,)))
    await b.csr.write_fields("CMD", clear_history=1, clear_counters=1)
    keys = [wf_id(cfg, o, i) for o in range(big.tiles_outer) for i in range(big.tiles_inner)]
    assert len(keys) > 2 * cfg.tracker_entries, "the case needs more live tiles than entries"
    lines = {k: list(big.tile(cfg, k).addresses()) for k in keys}
    await b.producer.send([prod(Op.UPDATE, lines[k][0], k) for k in keys])

    def link_update(k, addr):
        return b.link.pack(op=int(Op.UPDATE), dest=0, addr=addr, wf_id=k, data=0)
    await b.ingress.send([link_update(k, a) for k in keys for a in lines[k][1:]])
    st = await wait_idle("the live tiles")
    assert st["occupancy"] == 0, f"tiles left live: {st}"
    err = await b.csr.read_fields("ERR")
    assert not any(err.values()), f"error flags set with many live tiles: {err}"
    assert (await b.csr.read_fields("FIRES"))["fires"] == len(keys)
    spills = (await b.csr.read_fields("TRACKER_SPILLS"))["tracker_spills"]
    assert spills >= len(keys) - cfg.tracker_entries, spills

    # kick_overflow (from an idle DMA engine): whole-region kicks (256 READs each) queue
    # up in the DMA engine until one stays pending; one more kick then is not taken and
    # raises the flag. A kick is pending for a cycle even when the queue has room, and
    # STATUS is sampled when its read is accepted: wait a few cycles before reading it.
    kick = dict(kick=1, kick_phase=0, kick_region=0)
    for taken in range(1, cfg.dma_queue_depth + 4):
        await b.csr.write_fields("DMA_KICK", **kick)
        await b.cycles(4)
        if (await b.csr.read_fields("STATUS"))["kick_pending"]:
            break
    else:
        raise AssertionError(f"DMA_KICK never stayed pending after {taken} kicks")
    await b.csr.write_fields("DMA_KICK", **kick)
    await expect_flag("kick_overflow")
    await wait_idle("the kicked regions")
    assert (await b.csr.read_fields("KICKS"))["kicks"] == taken, "the overflowing kick was taken"
