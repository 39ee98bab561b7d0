"""The register block (hw/csr.py) in the Amaranth simulator against a Python model of the
register map built from contract.regmap (not from the block): read values at the
documented snapshot cycle, writes, w1c/w1p pulses, unmapped addresses, the response
latency of contract.latency, back-to-back requests with random idle and response stalls.

Every cycle the hardware inputs (``status``, ``errors``) take new random values, so a read
that sampled them one cycle early or late returns a different word; every cycle the
block's outputs (``ctrl``, ``regions``, ``pulse``, ``err_clear``) are compared with the
model's."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Shape, Value
from amaranth.lib import data

from contract import latency, regmap
from contract.spec import DEFAULT_CONFIG, T3Config
from hw.csr import Csr
from tests.amaranth_util import run

SMALL = T3Config(line_bytes=8, mem_depth_lines=1000, regions=3, tracker_entries=16,
                 wf_outer_bits=6, wf_inner_bits=6, count_bits=10, ring_devices=8,
                 csr_addr_bits=9)


class RegisterModel:
    """The register map as software sees it, from contract.regmap alone: ``rw`` storage
    from its reset values, ``const`` fields read their reset value, ``w1p`` fields read
    0, ``ro``/``w1c`` fields read the hardware's value; a write sets the ``rw`` fields
    and pulses the ``w1p``/``w1c`` fields with the written bits; an unmapped address
    reads 0 and ignores writes."""

    def __init__(self, cfg: T3Config):
        self.cfg = cfg
        self.regs = {r.addr: r for r in regmap.registers(cfg)}
        self.rw = {(r.region, f.name): f.reset for r in self.regs.values()
                   for f in r.fields if f.access == "rw"}

    def read(self, addr: int, hw: dict[str, int]) -> int:
        """The word at ``addr``; ``hw``: the ``ro`` and ``w1c`` field values."""
        r = self.regs.get(addr)
        if r is None:
            return 0
        word = 0
        for f in r.fields:
            v = {"const": f.reset, "w1p": 0}.get(f.access)
            if v is None:
                v = self.rw[r.region, f.name] if f.access == "rw" else hw[f.name]
            word |= v << f.lsb
        return word

    def write(self, addr: int, wdata: int) -> dict[str, int]:
        """Apply a write; return the ``w1p``/``w1c`` pulses it raises (field -> bits)."""
        r = self.regs.get(addr)
        pulses = {}
        for f in () if r is None else r.fields:
            bits = (wdata >> f.lsb) & ((1 << f.width) - 1)
            if f.access == "rw":
                self.rw[r.region, f.name] = bits
            elif f.access in ("w1p", "w1c"):
                pulses[f.name] = bits
        return pulses

    def ctrl(self) -> dict[str, int]:
        return {name: v for (region, name), v in self.rw.items() if region is None}

    def regions(self) -> list[dict[str, int]]:
        return [{name: v for (region, name), v in self.rw.items() if region == i}
                for i in range(self.cfg.regions)]


def packed(port, value) -> int:
    """``value`` (field -> raw bits, or a list of those for an array port) as the bits of
    ``port``'s layout; absent fields are 0. Raw bits, not ``layout.const``: a field of an
    enum shape may hold any bit pattern (a written ACTION.update_fire of 3)."""
    def pack(layout, v):
        if isinstance(layout, data.ArrayLayout):
            w = Shape.cast(layout.elem_shape).width
            return sum(pack(layout.elem_shape, e) << (i * w) for i, e in enumerate(v))
        return sum(v.get(name, 0) << f.offset for name, f in layout)
    return pack(port.shape(), value)


def random_fields(rng: random.Random, port) -> dict[str, int]:
    return {name: rng.getrandbits(f.width) for name, f in port.shape()}


def requests(cfg: T3Config, rng: random.Random, count: int) -> list[dict[str, int]]:
    """Reads of every register (reset values) first, then ``count`` random accesses:
    mapped and unmapped addresses, reads and writes of random words (w1p/w1c included)."""
    addrs = sorted(r.addr for r in regmap.registers(cfg))
    unmapped = [a for a in range(1 << cfg.csr_addr_bits) if a not in set(addrs)]
    out = [{"addr": a, "write": 0, "wdata": 0} for a in addrs]
    for _ in range(count):
        a = rng.choice(addrs) if rng.random() < 0.85 else rng.choice(unmapped)
        out.append({"addr": a, "write": int(rng.random() < 0.5), "wdata": rng.getrandbits(32)})
    return out


def simulate(cfg: T3Config, reqs, *, seed: int, idle: float, stall: float) -> dict:
    """Drive ``reqs`` one at a time (a request presented with probability 1 - ``idle``
    per cycle and held until accepted; the response stream not ready with probability
    ``stall``); record per cycle the hardware inputs, acceptances, responses and the
    block's outputs."""
    rng = random.Random(seed)
    dut = Csr(cfg=cfg)
    tr = {"hw": [], "accept": [], "first_valid": [], "resp": [], "ctrl": [], "regions": [],
          "pulse": [], "err_clear": []}
    ports = {k: Value.cast(getattr(dut, k)) for k in ("ctrl", "regions", "pulse", "err_clear")}

    async def bench(ctx):
        queue, cycle, presented, waiting = list(reqs), 0, False, False
        while queue or presented or waiting:
            hw = {**random_fields(rng, dut.status), **random_fields(rng, dut.errors)}
            ctx.set(dut.status, {k: hw[k] for k, _ in dut.status.shape()})
            ctx.set(dut.errors, {k: hw[k] for k, _ in dut.errors.shape()})
            if not presented and queue and rng.random() >= idle:
                ctx.set(dut.bus.req.payload, queue.pop(0))
                presented = True
            ctx.set(dut.bus.req.valid, int(presented))
            ctx.set(dut.bus.resp.ready, int(rng.random() >= stall))
            _, _, rv, rr, pv, pr, data, *outs = await ctx.tick().sample(
                dut.bus.req.valid, dut.bus.req.ready, dut.bus.resp.valid, dut.bus.resp.ready,
                dut.bus.resp.payload.rdata, *ports.values())
            tr["hw"].append(hw)
            for k, v in zip(ports, outs):
                tr[k].append(v)
            if pv and waiting and len(tr["first_valid"]) < len(tr["accept"]):
                tr["first_valid"].append(cycle)
            if pv and pr:
                tr["resp"].append((cycle, data))
                waiting = False
            if rv and rr:
                tr["accept"].append(cycle)
                presented, waiting = False, True
            cycle += 1
            assert cycle < 50 * len(reqs) + 100, "the register block stopped answering"

    run(dut, bench, deadline_cycles=100 * len(reqs) + 1000)
    tr["dut"] = dut
    return tr


def check(cfg: T3Config, reqs, tr, *, sample: int = latency.CSR_SAMPLE,
          lat: int = latency.CSR) -> None:
    """Replay ``reqs`` on :class:`RegisterModel`: the request accepted in cycle t reads
    the hardware inputs of cycle t + ``sample``; its response is first valid in cycle
    t + ``lat``, in which its write has changed the outputs and raised its pulses."""
    dut, model = tr["dut"], RegisterModel(cfg)
    assert len(tr["accept"]) == len(tr["resp"]) == len(reqs)
    for i in range(1, len(reqs)):       # one in flight: accepted once the last is answered
        assert tr["accept"][i] >= tr["resp"][i - 1][0], i
    effects = {}                        # cycle -> (ctrl, regions, pulse, err_clear) from then on
    for req, t, t_valid, (_, data) in zip(reqs, tr["accept"], tr["first_valid"], tr["resp"]):
        assert t_valid == t + lat, (req, t, t_valid)
        want = 0 if req["write"] else model.read(req["addr"], tr["hw"][t + sample])
        assert data == want, f"{req}: read {data:#x}, model {want:#x} (accepted in cycle {t})"
        pulses = model.write(req["addr"], req["wdata"]) if req["write"] else {}
        effects[t + lat] = (model.ctrl(), model.regions(),
                            {k: v for k, v in pulses.items() if hasattr(dut.pulse, k)},
                            {k: v for k, v in pulses.items() if hasattr(dut.err_clear, k)})
    state = (RegisterModel(cfg).ctrl(), RegisterModel(cfg).regions())
    for c in range(len(tr["hw"])):
        ctrl, regions, pulse, clear = effects.get(c, (*state, {}, {}))
        state = (ctrl, regions)
        assert tr["ctrl"][c] == packed(dut.ctrl, ctrl), f"ctrl in cycle {c}"
        assert tr["regions"][c] == packed(dut.regions, regions), f"regions in cycle {c}"
        assert tr["pulse"][c] == packed(dut.pulse, pulse), f"pulse in cycle {c}"
        assert tr["err_clear"][c] == packed(dut.err_clear, clear), f"err_clear in cycle {c}"


@pytest.mark.parametrize("cfg,count,seed", [(SMALL, 400, 1), (SMALL, 400, 2),
                                            (DEFAULT_CONFIG, 200, 3)],
                         ids=["small-1", "small-2", "default-3"])
def test_random_accesses_match_the_model(cfg, count, seed):
    reqs = requests(cfg, random.Random(seed), count)
    tr = simulate(cfg, reqs, seed=seed, idle=0.3, stall=0.4)
    check(cfg, reqs, tr)
    assert max(b - a for a, b in zip(tr["accept"], tr["accept"][1:])) > latency.CSR  # stalls seen
    # the check is sharp: a block that sampled one cycle off, or answered one cycle
    # later, would fail it
    for wrong in ({"sample": latency.CSR_SAMPLE - 1}, {"sample": latency.CSR_SAMPLE + 1},
                  {"lat": latency.CSR + 1}):
        with pytest.raises(AssertionError):
            check(cfg, reqs, tr, **wrong)


def test_back_to_back_without_stalls_one_access_per_latency():
    """Request always valid, response always ready: each response exactly
    contract.latency.CSR cycles after its request, the next request accepted in the
    cycle that response is taken."""
    reqs = requests(SMALL, random.Random(5), 200)
    tr = simulate(SMALL, reqs, seed=5, idle=0.0, stall=0.0)
    check(SMALL, reqs, tr)
    assert [c for c, _ in tr["resp"]] == [t + latency.CSR for t in tr["accept"]]
    assert tr["accept"][1:] == [c for c, _ in tr["resp"][:-1]]
    assert tr["dut"].latency == latency.CSR


def test_w1p_and_w1c_pulse_once_and_read_zero_or_the_flag():
    """Directed: CMD.clear_counters and ERR flags written 1 pulse for exactly one cycle;
    writing 0 pulses nothing; reading CMD returns 0, reading ERR the flags' inputs."""
    cmd, err = regmap.reg(SMALL, "CMD"), regmap.reg(SMALL, "ERR")
    f = {x.name: x for x in cmd.fields}
    reqs = [{"addr": cmd.addr, "write": 1, "wdata": 1 << f["clear_counters"].lsb},
            {"addr": cmd.addr, "write": 1, "wdata": 0},
            {"addr": err.addr, "write": 1, "wdata": (1 << len(err.fields)) - 1},
            {"addr": cmd.addr, "write": 0, "wdata": 0},
            {"addr": err.addr, "write": 0, "wdata": 0}]
    tr = simulate(SMALL, reqs, seed=7, idle=0.5, stall=0.5)
    check(SMALL, reqs, tr)
    dut = tr["dut"]
    clear_bit = packed(dut.pulse, {"clear_counters": 1})
    assert [c for c, p in enumerate(tr["pulse"]) if p & clear_bit] == [tr["accept"][0] + latency.CSR]
    all_flags = packed(dut.err_clear, {n: 1 for n in regmap.ERROR_FLAGS})
    assert [c for c, p in enumerate(tr["err_clear"]) if p] == [tr["accept"][2] + latency.CSR]
    assert tr["err_clear"][tr["accept"][2] + latency.CSR] == all_flags
    assert tr["resp"][3][1] == 0
