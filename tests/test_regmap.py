"""The register map (contract.regmap), its generated document and the Csr block built
from it: program a device through the bus and read every register back."""

import random
from pathlib import Path

import pytest

from hw.csr import Csr
from contract import regmap
from contract.program import DeviceProgram, Region
from contract.spec import ConfigError, FireOp, ProducerAction, T3Config
from tests.amaranth_util import run

REPO = Path(__file__).resolve().parent.parent
CFG = T3Config(line_bytes=8, mem_depth_lines=1000, regions=3, tracker_entries=16,
               wf_outer_bits=6, wf_inner_bits=6, count_bits=10, ring_devices=8)


def test_doc_is_up_to_date():
    doc = (REPO / "docs" / "regmap.md").read_text()
    assert doc == regmap.render_markdown(), \
        "docs/regmap.md is stale: run `python -m contract.regmap > docs/regmap.md`"


def test_map_is_consistent():
    regs = regmap.registers(T3Config())
    addrs = [r.addr for r in regs]
    assert len(addrs) == len(set(addrs))
    names = [f.name for r in regs if r.region is None for f in r.fields]
    assert len(names) == len(set(names)), "global field names must be unique (they name ports)"
    assert set(regmap.ERROR_FLAGS) == {f.name for f in regmap.reg(T3Config(), "ERR").fields}


def test_map_too_big_for_the_bus_is_a_config_error():
    with pytest.raises(ConfigError, match="csr_addr_bits=8"):
        regmap.registers(T3Config(regions=64, csr_addr_bits=8))


def test_bad_values_are_config_errors():
    with pytest.raises(ConfigError, match="tile_outer0=64"):
        regmap.field_value(CFG, "tile_outer0", 64)       # wf_outer_bits = 6
    bad = Region(base=0, limit=900, producer=ProducerAction.TRACKED, update_contribs=1,
                 pitch=30, outer_extent=30, inner_extent=30, tile_outer=30, tile_inner=40)
    with pytest.raises(ConfigError, match="count_bits"):   # validated before any write
        regmap.program_writes(CFG, DeviceProgram(device=0, next_device=1, regions=(bad,)))


def _bus(ctx, dut, addr, write=0, wdata=0):
    async def go():
        ctx.set(dut.bus.req.valid, 1)
        ctx.set(dut.bus.req.payload, {"addr": addr, "write": write, "wdata": wdata})
        ctx.set(dut.bus.resp.ready, 1)
        await ctx.tick().until(dut.bus.req.ready)
        ctx.set(dut.bus.req.valid, 0)
        _, _, v, d = await ctx.tick().sample(dut.bus.resp.valid, dut.bus.resp.payload.rdata)
        while not v:
            _, _, v, d = await ctx.tick().sample(dut.bus.resp.valid, dut.bus.resp.payload.rdata)
        return d
    return go()


def test_program_through_bus_and_read_back():
    rng = random.Random(31)
    regions = (
        Region(base=0, limit=64, producer=ProducerAction.TRACKED, update_contribs=2,
               update_fire=FireOp.UPDATE, store_contribs=1, store_fire=FireOp.STORE, dest_base=500,
               pitch=8, outer_extent=8, inner_extent=8, tile_outer=4, tile_inner=2,
               tile_outer0=3, tile_inner0=5),
        Region(base=100, limit=120, producer=ProducerAction.REMOTE, remote_base=700,
               store_contribs=1, store_fire=FireOp.STORE, dest_base=800, pitch=4, outer_extent=5,
               inner_extent=4, tile_outer=5, tile_inner=4),
    )
    prog = DeviceProgram(device=5, next_device=6, regions=regions)
    writes = regmap.program_writes(CFG, prog)
    dut = Csr(cfg=CFG)
    got = {}

    async def bench(ctx):
        ctx.set(dut.status.fires, 0xDEADBEEF)
        ctx.set(dut.status.occupancy, 7)
        ctx.set(dut.errors.refire, 1)
        for a, v in writes:
            await _bus(ctx, dut, a, 1, v)
        got["regions"] = [{k: int(getattr(ctx.get(dut.regions[i]), k)) for k in
                           regmap.region_values(CFG, None)} for i in range(CFG.regions)]
        got["ctrl"] = ctx.get(dut.ctrl)
        got["read"] = {a: await _bus(ctx, dut, a) for a, _ in writes}
        got["id"] = await _bus(ctx, dut, regmap.reg(CFG, "ID").addr)
        got["fires"] = await _bus(ctx, dut, regmap.reg(CFG, "FIRES").addr)
        got["status"] = await _bus(ctx, dut, regmap.reg(CFG, "STATUS").addr)
        got["unmapped"] = await _bus(ctx, dut, 0xFFF)
        got["cfg1"] = await _bus(ctx, dut, regmap.reg(CFG, "CFG1").addr)
        # w1c: writing 1 to ERR.refire pulses err_clear.refire for one cycle
        ctx.set(dut.bus.req.valid, 1)
        ctx.set(dut.bus.req.payload, {"addr": regmap.reg(CFG, "ERR").addr, "write": 1,
                                  "wdata": 1 << list(regmap.ERROR_FLAGS).index("refire")})
        await ctx.tick().until(dut.bus.req.ready)
        ctx.set(dut.bus.req.valid, 0)
        pulses = []
        for _ in range(3):
            _, _, p = await ctx.tick().sample(dut.err_clear.refire)
            pulses.append(p)
        got["pulses"] = pulses
        got["err"] = await _bus(ctx, dut, regmap.reg(CFG, "ERR").addr)

    run(dut, bench, deadline_cycles=5000)
    for i in range(CFG.regions):
        want = regmap.region_values(CFG, regions[i] if i < len(regions) else None)
        assert got["regions"][i] == want, f"region {i}"
    assert (got["ctrl"].enable, got["ctrl"].device, got["ctrl"].next_device) == (1, 5, 6)
    assert got["read"] == dict(writes)
    assert got["id"] == (regmap.ID_MAGIC << 16) | regmap.VERSION
    assert got["fires"] == 0xDEADBEEF
    assert regmap.decode(regmap.reg(CFG, "STATUS"), got["status"])["occupancy"] == 7
    assert got["unmapped"] == 0
    assert regmap.decode(regmap.reg(CFG, "CFG1"), got["cfg1"])["cfg_tracker_entries"] == 16
    assert sum(got["pulses"]) == 1
    assert regmap.decode(regmap.reg(CFG, "ERR"), got["err"])["refire"] == 1   # the flag lives in the block
