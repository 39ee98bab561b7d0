"""ClosedLoopGemm (hw/env/gemm_producer.py) in the Amaranth simulator.

A Python model of the block's rules (:class:`GemmModel`, written from the docstring's
wave rules, not from the RTL) runs in lock step with the block: every cycle both see the
same inputs -- a fake memory answering READs in order after random delays (it drives
``reads_done``), seeded random ``ready`` stalls on ``out`` and random ``valid`` gaps on
``stores``/``waves`` for the whole run -- and every output (``out`` valid and payload,
``stores.ready``, ``waves.ready``) must agree; the counters are compared at the end, with
the model and with what the testbench measured itself (READ latencies from its own
memory, compute cycles from K x T, wave durations). Independently of the model: with no
READs a wave takes exactly K*T + lines cycles; no store of a wave leaves before its last
READ is answered plus one step of compute; ``enable`` = 0 is a wire.
"""

import gc
import random
from collections import deque

import pytest

from hw import layouts
from hw.env.gemm_producer import ClosedLoopGemm
from contract.spec import COUNTER_BITS, ConfigError, Op, T3Config
from tests.amaranth_util import run

CFG = T3Config(line_bytes=8, mem_depth_lines=256, regions=4, ring_devices=2)
WRAP = 1 << COUNTER_BITS
FIELDS = {name: f.width for name, f in layouts.producer_request(CFG)}


class GemmModel:
    """The block's behaviour, one call per cycle (see the ClosedLoopGemm docstring).

    Wave state is kept as plain totals: READs issued/answered in the wave, steps
    finished, compute cycles left in the running step, stores released."""

    def __init__(self, *, k, t, outstanding, base, lines, enable, max_outstanding, count_bits):
        self.k, self.t, self.enable = max(k, 1), t, enable
        self.out_max = max(outstanding, 1)
        assert self.out_max <= max_outstanding
        self.base, self.window = base, max(lines, 1)
        self.stamp_mod = 1 << count_bits
        self.phase = "idle"
        self.wave = None                    # (lines, reads) of the running wave
        self.issued_w = self.answered_w = self.steps = self.left = self.released = 0
        self.answered = 0                   # READs counted answered since reset
        self.stamps = deque()
        self.offset = 0
        self.now = 0
        self.c = dict(reads_issued=0, waves_done=0, stall_cycles=0, compute_cycles=0,
                      read_latency_sum=0, read_latency_max=0, store_cycles=0)

    def cycle(self, *, stores_valid, stores_payload, waves_valid, waves_payload, out_ready,
              reads_done):
        """The outputs of this cycle for these inputs; then the state moves to the next."""
        pop = (reads_done - self.answered) % WRAP != 0 and len(self.stamps) > 0
        res = dict(out_valid=0, out_payload=None, stores_ready=0, waves_ready=0,
                   busy=int(self.phase != "idle" or len(self.stamps) > 0))
        if not self.enable:
            res.update(out_valid=stores_valid, out_payload=stores_payload if stores_valid else None,
                       stores_ready=out_ready)
            self._answer(pop)
            self.now += 1
            return res
        lines, reads = self.wave or (0, 0)
        total = self.k * reads
        answered_now = self.answered_w + pop
        phase = self.phase
        storing = phase == "store" or (phase == "run" and self.t == 0 and answered_now >= total)
        read_valid = (phase == "run" and self.issued_w < total
                      and len(self.stamps) < self.out_max)
        if storing and self.released < lines:
            assert not read_valid
            res.update(out_valid=stores_valid, out_payload=stores_payload, stores_ready=out_ready)
        elif read_valid:
            addr = (self.base + self.offset % self.window) % (1 << CFG.addr_bits)
            res.update(out_valid=1, out_payload=dict(op=int(Op.READ), addr=addr, wf_id=0, data=0))
        # compute: a step starts once the previous one ended and its READs are all answered
        if phase == "run" and self.t > 0:
            if self.left == 0 and answered_now < (self.steps + 1) * reads:
                self.c["stall_cycles"] += 1
            else:
                if self.left == 0:
                    self.left = self.t
                self.c["compute_cycles"] += 1
                self.left -= 1
                if self.left == 0:
                    self.steps += 1
                    if self.steps == self.k:
                        self.phase = "store"
        elif phase == "run" and not storing:
            self.c["stall_cycles"] += 1
        wave_end = False
        if storing:
            self.c["store_cycles"] += 1
            if res["stores_ready"] and stores_valid:
                self.released += 1
                wave_end = self.released == lines
            wave_end = wave_end or lines == 0
        if wave_end:
            self.c["waves_done"] += 1
            self.phase = "idle"
        res["waves_ready"] = int(phase == "idle" or wave_end)
        if read_valid and out_ready:
            self.issued_w += 1
            self.c["reads_issued"] += 1
            self.stamps.append(self.now)
            self.offset = self.offset % self.window + 1
        self._answer(pop)
        if not res["out_valid"]:
            res["out_payload"] = None
        if waves_valid and res["waves_ready"]:
            self.wave = (waves_payload["lines"], waves_payload["reads"])
            self.phase = "run"
            self.issued_w = self.answered_w = self.steps = self.left = self.released = 0
        self.now += 1
        return res

    def _answer(self, pop):
        if pop:
            lat = (self.now - self.stamps.popleft()) % self.stamp_mod
            self.answered += 1
            self.answered_w += 1
            self.c["read_latency_sum"] = (self.c["read_latency_sum"] + lat) % WRAP
            self.c["read_latency_max"] = max(self.c["read_latency_max"], lat)


class Env:
    """The testbench side: stores and waves sources with random gaps, ``out`` sink with
    random stalls, and a memory answering the READs in order, each after a random delay
    (at least one cycle, at most one answer counted per cycle)."""

    def __init__(self, rng, stores, waves, *, gap, stall, max_delay):
        self.rng, self.gap, self.stall, self.max_delay = rng, gap, stall, max_delay
        self.stores, self.waves = list(stores), list(waves)
        self.si = self.wi = 0
        self.s_held = self.w_held = False
        self.answers = []                   # answer cycle of READ j (reads_done > j from it)
        self.accepts = []                   # acceptance cycle of READ j
        self._done = 0                      # answers counted by the cycle last asked

    def answered_by(self, cycle):
        """READs answered in or before ``cycle`` (asked for non-decreasing cycles)."""
        while self._done < len(self.answers) and self.answers[self._done] <= cycle:
            self._done += 1
        return self._done

    def reads_done(self, cycle):
        return self.answered_by(cycle) % WRAP

    def inputs(self, cycle):
        if not self.s_held and self.si < len(self.stores):
            self.s_held = self.rng.random() >= self.gap
        if not self.w_held and self.wi < len(self.waves):
            self.w_held = self.rng.random() >= self.gap
        return dict(
            stores_valid=int(self.s_held),
            stores_payload=self.stores[self.si] if self.s_held else self.stores[0],
            waves_valid=int(self.w_held),
            waves_payload=self.waves[self.wi] if self.w_held else self.waves[0],
            out_ready=int(self.rng.random() >= self.stall),
            reads_done=self.reads_done(cycle))

    def commit(self, cycle, inp, out, stores_ready, waves_ready):
        """Record this cycle's transfers; returns ('read'|'store'|None, payload)."""
        if inp["stores_valid"] and stores_ready:
            self.si += 1
            self.s_held = False
        if inp["waves_valid"] and waves_ready:
            self.wi += 1
            self.w_held = False
        if not (out["valid"] and inp["out_ready"]):
            return None, None
        if out["payload"]["op"] == int(Op.READ):
            self.accepts.append(cycle)
            prev = self.answers[-1] if self.answers else -1
            self.answers.append(max(cycle + self.rng.randint(1, self.max_delay), prev + 1))
            return "read", out["payload"]
        return "store", out["payload"]


def _payload(p) -> dict:
    return {name: int(getattr(p, name)) for name in FIELDS}


def _hw(p: dict) -> dict:
    """A payload dict as the simulator takes it (the opcode as the enum)."""
    return {**p, "op": Op(p["op"])}


def random_stores(rng, n):
    return [dict(op=int(rng.choice([Op.STORE, Op.UPDATE])),
                 **{f: rng.getrandbits(w) for f, w in FIELDS.items() if f != "op"})
            for _ in range(n)]


def run_lockstep(*, seed, n_waves, k, t, outstanding, base, lines, max_outstanding=8,
                 count_bits=24, gap=0.3, stall=0.3, max_delay=12, min_lines=1, max_lines=5,
                 max_reads=4,
                 enable=1, model=True, deadline=1500):
    """Run the block (and the model in lock step if ``model``) on random waves; returns
    what was seen. Asserts on the first disagreement, naming the cycle."""
    rng = random.Random(seed)
    waves = [dict(lines=rng.randint(min_lines, max_lines), reads=rng.randint(0, max_reads))
             for _ in range(n_waves)]
    stores = random_stores(rng, sum(w["lines"] for w in waves))
    dut = ClosedLoopGemm(cfg=CFG, count_bits=count_bits, max_outstanding=max_outstanding)
    env = Env(rng, stores, waves, gap=gap, stall=stall, max_delay=max_delay)
    mdl = GemmModel(k=k, t=t, outstanding=outstanding, base=base, lines=lines, enable=enable,
                    max_outstanding=max_outstanding, count_bits=count_bits)
    seen = dict(events=[], takes=[], compute_at_first_store=[], in_flight_max=0,
                counters=None, busy_end=None, waves=waves, stores=stores, env=env, model=mdl)

    firsts = {sum(w["lines"] for w in waves[:i]) for i in range(len(waves))}

    async def bench(ctx):
        for name, v in dict(enable=enable, k_steps=k, step_cycles=t, outstanding=outstanding,
                            read_base=base, read_lines=lines).items():
            ctx.set(getattr(dut, name), v)
        cycle = idle = 0
        while idle < 30:
            inp = env.inputs(cycle)
            ctx.set(dut.stores.valid, inp["stores_valid"])
            ctx.set(dut.stores.payload, _hw(inp["stores_payload"]))
            ctx.set(dut.waves.valid, inp["waves_valid"])
            ctx.set(dut.waves.payload, inp["waves_payload"])
            ctx.set(dut.out.ready, inp["out_ready"])
            ctx.set(dut.reads_done, inp["reads_done"])
            valid = ctx.get(dut.out.valid)
            out = dict(valid=valid, payload=_payload(ctx.get(dut.out.payload)) if valid else None)
            s_ready, w_ready = ctx.get(dut.stores.ready), ctx.get(dut.waves.ready)
            if model:
                exp = mdl.cycle(**inp)
                got = dict(out_valid=valid, out_payload=out["payload"], stores_ready=s_ready,
                           waves_ready=w_ready, busy=ctx.get(dut.busy))
                assert got == exp, f"cycle {cycle}: block {got} != model {exp}"
            if inp["waves_valid"] and w_ready:
                seen["takes"].append(cycle)
            kind, p = env.commit(cycle, inp, out, s_ready, w_ready)
            if kind is not None:
                seen["events"].append((cycle, kind, p))
                if kind == "store" and env.si - 1 in firsts:    # a wave's first store
                    seen["compute_at_first_store"].append((cycle, ctx.get(dut.compute_cycles)))
            in_flight = len(env.accepts) - env.answered_by(cycle)
            seen["in_flight_max"] = max(seen["in_flight_max"], in_flight)
            done = env.si == len(stores) and in_flight == 0 \
                and (not enable or env.wi == len(waves))
            idle = idle + 1 if done else 0
            await ctx.tick()
            cycle += 1

        seen["counters"] = {n: ctx.get(getattr(dut, n)) for n in mdl.c}
        seen["busy_end"] = ctx.get(dut.busy)
        seen["cycles"] = cycle

    run(dut, bench, deadline_cycles=deadline)     # the clock runs on to the deadline
    assert seen["counters"] is not None, f"the run did not finish in {deadline} cycles"
    return seen


def _check_against_measurements(seen, *, k, t, outstanding):
    """The checks that need no model: order and payload of the stores, READ count and
    latencies from the testbench's own memory, compute cycles = sum K*T, in-flight
    bound, wave durations = stall + compute + store cycles, no store before the wave's
    last READ is answered plus a step."""
    K = max(k, 1)
    env, waves, c = seen["env"], seen["waves"], seen["counters"]
    stores = [p for _, kind, p in seen["events"] if kind == "store"]
    assert stores == seen["stores"], "stores must leave in order, unchanged"
    assert c["reads_issued"] == len(env.accepts) == sum(K * w["reads"] for w in waves)
    lat = [a - s for s, a in zip(env.accepts, env.answers)]
    assert c["read_latency_sum"] == sum(lat) % WRAP
    assert c["read_latency_max"] == max(lat, default=0)
    assert c["waves_done"] == len(waves)
    assert c["compute_cycles"] == K * t * len(waves)
    assert seen["in_flight_max"] <= max(outstanding, 1)
    assert seen["busy_end"] == 0
    # per wave: the READs issued between its take and its end belong to it
    store_cycles = [cy for cy, kind, _ in seen["events"] if kind == "store"]
    ends, firsts, n = [], [], 0
    for w in waves:
        firsts.append(store_cycles[n])
        n += w["lines"]
        ends.append(store_cycles[n - 1])
    assert sum(e - tk for e, tk in zip(ends, seen["takes"])) == \
        c["stall_cycles"] + c["compute_cycles"] + c["store_cycles"]
    j = 0
    for i, w in enumerate(waves):
        nr = K * w["reads"]
        for s in env.accepts[j:j + nr]:
            assert seen["takes"][i] < s < firsts[i], f"wave {i}: a READ outside its wave"
        if nr:
            last_answer = max(env.answers[j:j + nr])
            assert firsts[i] >= last_answer + t, \
                f"wave {i}: first store at {firsts[i]}, last READ answered {last_answer}"
        assert firsts[i] > seen["takes"][i] + K * t
        j += nr
    assert [cc for _, cc in seen["compute_at_first_store"]] == \
        [K * t * (i + 1) for i in range(len(waves))], "a store left before its compute ended"


RANDOM_CASES = [
    # seed, k, t, outstanding, base, lines, max_outstanding
    (1, 3, 2, 2, 10, 5, 8),
    (2, 1, 1, 1, 0, 1, 8),
    (3, 4, 0, 3, 250, 9, 8),       # free compute; the window wraps the address space
    (4, 0, 3, 0, 7, 0, 2),         # k_steps 0, outstanding 0, read_lines 0 behave as 1
    (5, 2, 5, 8, 100, 3, 8),       # outstanding = max_outstanding
    (6, 5, 1, 64, 31, 200, 64),
]


@pytest.mark.parametrize("seed,k,t,outstanding,base,lines,max_outstanding", RANDOM_CASES)
def test_lockstep_with_model_and_measurements(seed, k, t, outstanding, base, lines,
                                              max_outstanding):
    seen = run_lockstep(seed=seed, n_waves=12, k=k, t=t, outstanding=outstanding, base=base,
                        lines=lines, max_outstanding=max_outstanding)
    assert seen["counters"] == seen["model"].c
    _check_against_measurements(seen, k=k, t=t, outstanding=outstanding)
    reads = [p["addr"] for _, kind, p in seen["events"] if kind == "read"]
    window = max(lines, 1)
    assert reads == [(base + i % window) % 256 for i in range(len(reads))]
    assert all(p["wf_id"] == 0 and p["data"] == 0 for _, kind, p in seen["events"]
               if kind == "read")


@pytest.mark.parametrize("seed", range(100, 116))
def test_lockstep_random_configurations(seed):
    """Runtime inputs, FIFO capacity, stall and gap rates and memory delays all drawn."""
    rng = random.Random(seed)
    max_outstanding = rng.choice([2, 4, 8, 64])
    knobs = dict(k=rng.randint(0, 5), t=rng.randint(0, 6),
               outstanding=rng.randint(0, max_outstanding), base=rng.getrandbits(8),
               lines=rng.randint(0, 300))
    seen = run_lockstep(seed=seed, n_waves=rng.randint(1, 10), max_outstanding=max_outstanding,
                        count_bits=rng.choice([8, 24, 32]), gap=rng.random() / 2,
                        stall=rng.random() / 2, max_delay=rng.randint(1, 30),
                        max_lines=rng.randint(1, 8), max_reads=rng.randint(0, 6), **knobs)
    assert seen["counters"] == seen["model"].c
    _check_against_measurements(seen, k=knobs["k"], t=knobs["t"], outstanding=knobs["outstanding"])


def test_lockstep_empty_waves():
    """Descriptors with lines = 0 (outside the spec's lines >= 1): no store released,
    the wave ends in its first store-phase cycle; still in lock step with the model."""
    seen = run_lockstep(seed=31, n_waves=12, k=2, t=1, outstanding=2, base=0, lines=4,
                        min_lines=0, max_lines=2)
    assert any(w["lines"] == 0 for w in seen["waves"])
    assert seen["counters"] == seen["model"].c
    assert seen["counters"]["waves_done"] == 12
    assert [p for _, kind, p in seen["events"] if kind == "store"] == seen["stores"]


def test_contention_slows_the_gemm():
    """The point of the block: the same waves take longer when memory answers slower,
    and the extra time is stall cycles."""
    fast, slow = (run_lockstep(seed=9, n_waves=8, k=3, t=2, outstanding=4, base=0, lines=16,
                               gap=0.0, stall=0.0, max_delay=d, max_reads=6, model=False)
                  for d in (1, 40))
    for s in (fast, slow):
        _check_against_measurements(s, k=3, t=2, outstanding=4)
    assert slow["counters"]["stall_cycles"] > fast["counters"]["stall_cycles"] + 100
    assert slow["cycles"] - fast["cycles"] == \
        slow["counters"]["stall_cycles"] - fast["counters"]["stall_cycles"]


@pytest.mark.parametrize("k,t", [(3, 4), (1, 1), (5, 0)])
def test_no_reads_wave_takes_k_times_t_plus_lines(k, t):
    """reads = 0, nothing stalls: wave i's last store leaves K*T + lines_i cycles after
    the previous wave's (the first wave's descriptor is taken in cycle 0)."""
    rng = random.Random(k * 10 + t)
    waves = [dict(lines=rng.randint(1, 7), reads=0) for _ in range(6)]
    stores = random_stores(rng, sum(w["lines"] for w in waves))
    dut = ClosedLoopGemm(cfg=CFG)
    last = []

    async def bench(ctx):
        for name, v in dict(enable=1, k_steps=k, step_cycles=t, outstanding=4,
                            read_lines=4).items():
            ctx.set(getattr(dut, name), v)
        ctx.set(dut.out.ready, 1)
        si = wi = 0
        for cycle in range(sum(k * t + w["lines"] for w in waves) + 10):
            ctx.set(dut.waves.valid, int(wi < len(waves)))
            ctx.set(dut.waves.payload, waves[min(wi, len(waves) - 1)])
            ctx.set(dut.stores.valid, int(si < len(stores)))
            ctx.set(dut.stores.payload, _hw(stores[min(si, len(stores) - 1)]))
            assert not (ctx.get(dut.out.valid) and ctx.get(dut.out.payload.op) == Op.READ)
            if ctx.get(dut.waves.ready) and wi < len(waves):
                wi += 1
            if ctx.get(dut.stores.ready) and si < len(stores):
                si += 1
                if si == sum(w["lines"] for w in waves[:len(last) + 1]):
                    last.append(cycle)
            await ctx.tick()

    run(dut, bench, deadline_cycles=sum(k * t + w["lines"] for w in waves) + 12)
    expect, at = [], 0
    for w in waves:
        at += k * t + w["lines"]
        expect.append(at)
    assert last == expect


def test_disabled_is_a_wire():
    rng = random.Random(11)
    stores = random_stores(rng, 60)
    dut = ClosedLoopGemm(cfg=CFG)
    got, broken = [], []

    async def bench(ctx):
        for name, v in dict(enable=0, k_steps=2, step_cycles=3, outstanding=4,
                            read_lines=4).items():
            ctx.set(getattr(dut, name), v)
        ctx.set(dut.waves.valid, 1)
        ctx.set(dut.waves.payload, dict(lines=3, reads=2))
        si, held = 0, False
        for cycle in range(300):
            held = held or (si < len(stores) and rng.random() < 0.6)
            ready = int(rng.random() < 0.6)
            ctx.set(dut.stores.valid, int(held))
            ctx.set(dut.stores.payload, _hw(stores[min(si, len(stores) - 1)]))
            ctx.set(dut.out.ready, ready)
            v = ctx.get(dut.out.valid)
            if v != held or ctx.get(dut.stores.ready) != ready or ctx.get(dut.waves.ready):
                broken.append(cycle)
            if v and ready:
                got.append(_payload(ctx.get(dut.out.payload)))
                si += 1
                held = False
            await ctx.tick()
        for n in ("reads_issued", "waves_done", "stall_cycles", "compute_cycles",
                  "store_cycles", "read_latency_sum", "busy"):
            assert ctx.get(getattr(dut, n)) == 0, n

    run(dut, bench, deadline_cycles=302)
    assert broken == []
    assert got == stores


def test_outstanding_one_serialises_the_reads():
    """outstanding = 1: each READ is presented only from the cycle after the previous
    one is counted answered."""
    seen = run_lockstep(seed=21, n_waves=4, k=2, t=1, outstanding=1, base=0, lines=8,
                        gap=0.0, stall=0.0, max_delay=5, max_reads=4, model=False)
    env = seen["env"]
    for prev_answer, acc in zip(env.answers, env.accepts[1:]):
        assert acc >= prev_answer + 1


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_bad_parameters():
    with pytest.raises(ConfigError, match=r"ClosedLoopGemm: cfg="):
        ClosedLoopGemm(cfg={"line_bytes": 8})
    for bad in (0, 1, 3, 48, 2048, True, 4.0):
        with pytest.raises(ConfigError, match=r"ClosedLoopGemm: max_outstanding="):
            ClosedLoopGemm(cfg=CFG, max_outstanding=bad)
    for bad in (7, 33, False):
        with pytest.raises(ConfigError, match=r"ClosedLoopGemm: count_bits="):
            ClosedLoopGemm(cfg=CFG, count_bits=bad)
    gc.collect()        # the half-built components warn when collected: here, not later


def test_verilog_elaborates_and_lints(tmp_path):
    from flow.lint import lint
    from flow.verilog import generate
    path = generate(ClosedLoopGemm(cfg=T3Config()), "gemm_producer", tmp_path)
    ok, msg = lint(path, "gemm_producer")
    assert ok, msg
