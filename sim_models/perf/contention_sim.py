"""Ground truth of the contention model: a cycle-level harness around the DRAM controller.

One HBM2 pseudo-channel (:class:`sim_models.dram.DramControllerModel`, the cycle model the
RTL controller matches; its semantics are used as they are) is fed by two streams
through the memory arbiter in front of its queue (a cycle copy of ``hw/arbiter.py``):

* **compute** -- a closed-loop GEMM: ``agents`` agents (CUs, or a CU's share of the
  channel), each one loop of: issue an operand fetch of ``fetch_lines`` READs (its
  outstanding reads), wait until all of them have returned, compute ``compute_cycles``;
  every ``write_every`` fetches it posts ``write_lines`` output lines (STORE, or UPDATE
  for T3's local partial sums), which wait in the compute stream but block nobody.
  Operand fetches read ``fetch_lines`` consecutive lines at a random aligned place of a
  large operand region (L2 misses land on random rows); output lines are written
  sequentially.
* **communication** -- tile-sized bursts: from ``comm_start`` on, every ``comm_period``
  cycles a tile fires and ``burst_lines`` requests of each op in ``comm_ops`` enter the
  communication stream (interleaved): the DMA's READs of the reduced tile and the
  neighbour's incoming UPDATEs (T3's reduce-scatter), each to its own sequential region.

Arbitration, one request per cycle into the controller (its queue takes one while it
holds fewer than ``queue_depth``):

* ``rr`` -- plain round-robin between the two streams when both have a request;
* ``mca`` -- compute first; a communication request only while compute has nothing to
  issue and the controller's occupancy is below the threshold; one that has waited
  ``starvation_limit`` cycles goes next, ahead of compute. The threshold is set at
  ``comm_start`` from the GEMM's intensity measured over the first stage (the cycles
  before ``comm_start``, when only the GEMM runs): :func:`mca_threshold`.

Everything is deterministic (seeded). :func:`run` returns the cycle the GEMM finished,
the cycle the last communication request completed and the stream statistics;
:func:`measure` runs a scenario under both policies plus each stream alone. The measured
table lives in ``contention_ground_truth.json`` with :func:`source_digest` of the sources
it came from (sim_models/dram.py, contract/dram.py, contract/dram_bounds.py, this file);
``python -m sim_models.perf.contention_sim`` regenerates it.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from contract.dram import DramTiming
from contract.spec import Op
from sim_models.dram import DramControllerModel, DramRequest

__all__ = ["ContentionScenario", "RunResult", "mca_threshold", "run", "measure", "SCENARIOS", "paper_like",
           "GROUND_TRUTH_FILE", "source_digest", "SOURCES", "load_ground_truth", "write_ground_truth",
           "COMM_REGION_BASES"]

_REPO = Path(__file__).resolve().parents[2]
GROUND_TRUTH_FILE = Path(__file__).with_name("contention_ground_truth.json")
#: the sources the ground truth depends on (the digest covers exactly these)
SOURCES = ("sim_models/dram.py", "contract/dram.py", "contract/dram_bounds.py",
           "sim_models/perf/contention_sim.py")

_OPERAND_BASE = 0
_OPERAND_LINES = 1 << 22          # 4 Mi lines = 8192 rows per bank: random fetches miss
_OUTPUT_BASE = 1 << 23
_DMA_BASE = 1 << 24
_INCOMING_BASE = 1 << 25
#: where each communication op's sequential stream starts (line address): the DMA's
#: READs of the reduced tiles and the neighbour's incoming UPDATEs (or STOREs); the fast
#: model derives the streams' bank conflicts from these (contention.cross_stream_conflict)
COMM_REGION_BASES: dict[str, int] = {"READ": _DMA_BASE, "UPDATE": _INCOMING_BASE,
                                     "STORE": _INCOMING_BASE}


def source_digest() -> str:
    """16 hex digits of SHA-256 over :data:`SOURCES` (the DRAM model, its timing, the
    controller's derived sizes and this harness)."""
    h = hashlib.sha256()
    for rel in SOURCES:
        h.update((_REPO / rel).read_bytes())
    return h.hexdigest()[:16]


def mca_threshold(intensity: float, queue_depth: int) -> int:
    """MCA's occupancy threshold from the GEMM's memory intensity ``intensity`` (requests
    per cycle it put into the controller during the first stage; the channel's peak is 1
    per cycle): ``thr = clamp(ceil(Q (1 - intensity)), 1, Q)``. The GEMM alone keeps a
    share ``intensity`` of the controller's slots busy; the threshold lets communication
    fill only the complementary share of the queue, so a GEMM read finds at most
    ``Q (1 - intensity)`` requests ahead of it, fewer the more memory-bound the GEMM is;
    the starvation limit keeps communication moving when the queue never drains that far."""
    rho = min(max(intensity, 0.0), 1.0)
    return int(min(queue_depth, max(1, math.ceil(queue_depth * (1.0 - rho) - 1e-9))))


@dataclass(frozen=True)
class ContentionScenario:
    """One contention run on one pseudo-channel (cycles are the controller's)."""
    name: str = "scenario"
    agents: int = 16
    fetch_lines: int = 2
    compute_cycles: int = 100
    jitter: float = 0.25              # compute time uniform in compute_cycles x [1 - j, 1 + j]
    fetches: int = 40                 # per agent
    write_every: int = 4              # fetches per posted output block
    write_lines: int = 2
    write_op: str = "STORE"           # or "UPDATE" (T3's local partial sums)
    comm_ops: tuple[str, ...] = ("READ", "UPDATE")
    burst_lines: int = 16             # per op per tile fire
    comm_period: int = 100            # cycles between tile fires
    comm_start: int = 500             # first fire (the first stage: GEMM alone before it)
    comm_fires: int = 30
    queue_depth: int = 16
    starvation_limit: int = 64
    threshold: int | None = None      # None: mca_threshold(first stage's intensity)
    seed: int = 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["comm_ops"] = list(self.comm_ops)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ContentionScenario":
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if "comm_ops" in kw:
            kw["comm_ops"] = tuple(kw["comm_ops"])
        return cls(**kw)


@dataclass
class RunResult:
    """``gemm_cycles``: the last agent's last compute done (0 if no GEMM);
    ``comm_cycles``: the last communication request completed (0 if none);
    ``threshold``: the MCA threshold used; ``intensity``: GEMM requests accepted per
    cycle before ``comm_start``; ``gemm_read_latency``: mean cycles from a GEMM read's
    entry into the compute stream to its response; ``comm_lines``: communication
    requests served."""
    gemm_cycles: int = 0
    comm_cycles: int = 0
    threshold: int = 0
    intensity: float = 0.0
    gemm_read_latency: float = 0.0
    comm_lines: int = 0
    gemm_requests: int = 0
    occupancy: float = 0.0
    starved_grants: int = 0
    stats: dict[str, Any] = field(default_factory=dict)


class _Arbiter:
    """Cycle copy of hw/arbiter.py's MemoryArbiter (grant held while not accepted,
    round-robin pointer moved on a grant, the communication wait counter)."""

    def __init__(self, policy: str, limit: int):
        if policy not in ("rr", "mca"):
            raise ValueError(f"policy={policy!r}: must be 'rr' or 'mca'")
        self.mca = policy == "mca"
        self.limit = max(1, limit)
        self.hold = self.hold_comm = self.last_comm = False
        self.wait = 0
        self.starved_grants = 0

    def pick(self, compute_valid: bool, comm_valid: bool, level: int, thr: int) -> bool | None:
        """The stream presented this cycle: True = comm, False = compute, None = none."""
        if self.hold:
            pick_comm = self.hold_comm
        elif self.mca:
            starved = comm_valid and self.wait + 1 >= self.limit
            pick_comm = comm_valid and (starved or (not compute_valid and level < thr))
        else:
            pick_comm = comm_valid and (not compute_valid or not self.last_comm)
        valid = comm_valid if pick_comm else compute_valid
        return (pick_comm if valid else None), pick_comm

    def update(self, pick_comm: bool, valid: bool, accepted: bool, compute_valid: bool,
               comm_valid: bool) -> None:
        fire = valid and accepted
        if fire and pick_comm and compute_valid and self.mca and not self.hold:
            self.starved_grants += 1
        self.hold = valid and not accepted
        self.hold_comm = pick_comm
        if fire:
            self.last_comm = pick_comm
        if (fire and pick_comm) or not comm_valid:
            self.wait = 0
        else:
            self.wait += 1


def run(scn: ContentionScenario, policy: str = "rr", *, gemm: bool = True, comm: bool = True,
        timing: DramTiming | None = None, max_cycles: int = 2_000_000) -> RunResult:
    """Run ``scn`` under ``policy`` ("rr" or "mca"); ``gemm``/``comm`` = False leaves that
    stream out (its alone time)."""
    t = timing or DramTiming()
    rng = random.Random(scn.seed)
    wake: dict[int, list[int]] = {}           # cycle -> agents whose compute ends then
    ctl = DramControllerModel(t, queue_depth=scn.queue_depth)
    arb = _Arbiter(policy, scn.starvation_limit)
    write_op = Op[scn.write_op]
    comm_ops = [Op[o] for o in scn.comm_ops]
    fetch_blocks = _OPERAND_LINES // scn.fetch_lines

    # compute stream: FIFO of (op, addr, agent or -1 for a posted write, entry cycle)
    compute: list[tuple[Op, int, int, int]] = []
    cq = 0                                    # head index into `compute`
    left = [scn.fetches if gemm else 0] * scn.agents   # fetches still to issue
    waiting = [0] * scn.agents                # reads outstanding of the current fetch
    done_fetches = [0] * scn.agents
    agent_done = [not gemm] * scn.agents
    out_ptr = 0
    lat_sum = lat_n = 0
    # communication stream
    comm_q: list[tuple[Op, int]] = []
    mq = 0
    fires_left = scn.comm_fires if comm else 0
    next_fire = scn.comm_start
    ptr = {Op[name]: base for name, base in COMM_REGION_BASES.items()}
    comm_total = scn.comm_fires * scn.burst_lines * len(comm_ops) if comm else 0
    comm_served = 0
    comm_end = 0
    gemm_end = 0
    thr = scn.threshold if scn.threshold is not None else scn.queue_depth
    accepted_gemm_before = 0
    # in-flight bookkeeping: controller index -> (is_comm, agent, entry cycle)
    tags: dict[int, tuple[bool, int, int]] = {}
    index = 0
    c = 0

    def start_fetch(a: int, now: int) -> None:
        base = _OPERAND_BASE + rng.randrange(fetch_blocks) * scn.fetch_lines
        for i in range(scn.fetch_lines):
            compute.append((Op.READ, base + i, a, now))
        waiting[a] = scn.fetch_lines
        left[a] -= 1

    def compute_time() -> int:
        j = scn.jitter
        return max(0, round(scn.compute_cycles * (1.0 + j * (2.0 * rng.random() - 1.0))))

    for a in range(scn.agents):               # agents start staggered over one compute time
        if left[a] > 0:
            at = rng.randrange(scn.compute_cycles + 1) if scn.jitter else 0
            if at == 0:
                start_fetch(a, 0)
            else:
                wake.setdefault(at, []).append(a)
                done_fetches[a] = -1          # no output block for the start-up wait
    gemm_reqs = 0
    while True:
        # tile fires
        while fires_left and c >= next_fire:
            for i in range(scn.burst_lines):
                for op in comm_ops:
                    comm_q.append((op, ptr[op]))
                    ptr[op] += 1
            fires_left -= 1
            next_fire += scn.comm_period
        if c == scn.comm_start:
            accepted_gemm_before = gemm_reqs
            if scn.threshold is None and scn.comm_start > 0:
                thr = mca_threshold(gemm_reqs / scn.comm_start, scn.queue_depth)
        compute_valid = cq < len(compute)
        comm_valid = mq < len(comm_q)
        level = ctl.occupancy
        sel, pick_comm = arb.pick(compute_valid, comm_valid, level, thr)
        offered = None
        if sel is True:
            op, addr = comm_q[mq]
            offered = DramRequest(op, addr)
        elif sel is False:
            op, addr, _, _ = compute[cq]
            offered = DramRequest(op, addr)
        accepted, issued, answered = ctl.step(c, offered, index, True)
        arb.update(pick_comm, sel is not None, accepted, compute_valid, comm_valid)
        if accepted:
            if sel is True:
                tags[index] = (True, -1, c)
                mq += 1
            else:
                op, addr, a, entry = compute[cq]
                tags[index] = (False, a, entry)
                cq += 1
                gemm_reqs += 1
            index += 1
        # completions
        for e in (issued, answered):
            if e is None or (e is issued and e.op == Op.READ):
                continue
            is_comm, a, entry = tags.pop(e.index)
            if is_comm:
                comm_served += 1
                comm_end = c + 1
            elif a >= 0:                       # a GEMM operand read answered
                lat_sum += c + 1 - entry
                lat_n += 1
                waiting[a] -= 1
                if waiting[a] == 0:
                    wake.setdefault(c + 1 + compute_time(), []).append(a)
                    done_fetches[a] += 1
        c += 1
        # agents whose compute ended: post writes, next fetch
        for a in wake.pop(c, ()):
            if done_fetches[a] < 0:
                done_fetches[a] = 0
            elif done_fetches[a] % scn.write_every == 0:
                for i in range(scn.write_lines):
                    compute.append((write_op, _OUTPUT_BASE + out_ptr, -1, c))
                    out_ptr += 1
            if left[a] > 0:
                start_fetch(a, c)
            else:
                agent_done[a] = True
                gemm_end = max(gemm_end, c)
        if all(agent_done) and cq == len(compute) and comm_served == comm_total \
                and not fires_left and not tags:
            break
        if c >= max_cycles:
            raise RuntimeError(f"{scn.name}: not done after {c} cycles")
    s = ctl.stats
    return RunResult(gemm_cycles=gemm_end, comm_cycles=comm_end, threshold=thr,
                     intensity=(accepted_gemm_before / scn.comm_start) if scn.comm_start else 0.0,
                     gemm_read_latency=lat_sum / lat_n if lat_n else 0.0,
                     comm_lines=comm_served, gemm_requests=gemm_reqs,
                     occupancy=s.occupancy_sum / max(1, c), starved_grants=arb.starved_grants,
                     stats={"cycles": c, "reads": s.reads, "writes": s.writes,
                            "updates": s.updates, "activates": s.activates,
                            "row_hit_ratio": round(s.row_hit_ratio, 4)})


def measure(scn: ContentionScenario, timing: DramTiming | None = None) -> dict[str, Any]:
    """Both policies plus each stream alone: ``{"gemm_alone", "comm_alone", "rr", "mca"}``
    (the alone runs: gemm_cycles / comm_cycles; the shared runs: gemm_cycles, comm_cycles,
    threshold, intensity, gemm_read_latency)."""
    out: dict[str, Any] = {}
    g = run(scn, "rr", comm=False, timing=timing)
    m = run(scn, "rr", gemm=False, timing=timing)
    out["gemm_alone"] = {"gemm_cycles": g.gemm_cycles, "intensity": round(g.intensity, 4),
                         "gemm_read_latency": round(g.gemm_read_latency, 2)}
    out["comm_alone"] = {"comm_cycles": m.comm_cycles}
    for policy in ("rr", "mca"):
        r = run(scn, policy, timing=timing)
        out[policy] = {"gemm_cycles": r.gemm_cycles, "comm_cycles": r.comm_cycles,
                       "threshold": r.threshold, "intensity": round(r.intensity, 4),
                       "gemm_read_latency": round(r.gemm_read_latency, 2),
                       "starved_grants": r.starved_grants}
    return out


def paper_like(name: str, demand: float, *, comm_ops: tuple[str, ...] = ("READ", "UPDATE"),
               comm_period: int = 109, cycles: int = 12_000, agents: int = 80,
               fetch_lines: int = 4, write_per_fetch: float = 0.5, seed: int = 1
               ) -> ContentionScenario:
    """A scenario shaped like one pseudo-channel of the paper's GPU (docs/system_model.md,
    "Contention"): ``agents`` CUs, each fetching one 128-byte L2 line (4 bursts) at a
    time, computing long enough for a GEMM read demand of ``demand`` lines per cycle
    (``compute = agents * fetch_lines / demand - 40``); posted UPDATEs of
    ``write_per_fetch`` lines per fetch; a 16-line tile of each communication op every
    ``comm_period`` cycles (109 = a 32 KiB tile over 64 channels at 150 GB/s)."""
    z = max(1, round(agents * fetch_lines / demand) - 40)
    fetches = max(2, round(cycles / (z + 40)))
    we = 4
    return ContentionScenario(
        name=name, agents=agents, fetch_lines=fetch_lines, compute_cycles=z, fetches=fetches,
        write_every=we, write_lines=max(0, round(write_per_fetch * we)), write_op="UPDATE",
        comm_ops=comm_ops, burst_lines=16, comm_period=comm_period, comm_start=z + 40,
        comm_fires=max(1, (cycles - z - 40) // comm_period), seed=seed)


#: the ground-truth scenarios: GEMM read demand low to high, the reduce-scatter's two
#: request mixes (stage 1: incoming UPDATEs only; later stages: DMA READs + incoming
#: UPDATEs) at the paper's link rate and at half of it
SCENARIOS: tuple[ContentionScenario, ...] = tuple(
    paper_like(f"d{int(d * 100):02d}-{'ru' if len(ops) == 2 else 'u'}-p{p}", d, comm_ops=ops,
               comm_period=p)
    for ops, p in ((("READ", "UPDATE"), 109), (("UPDATE",), 109), (("READ", "UPDATE"), 218))
    for d in (0.05, 0.15, 0.3, 0.45))


def write_ground_truth(path: Path = GROUND_TRUTH_FILE, scenarios=SCENARIOS) -> dict[str, Any]:
    """Measure every scenario (both policies, each stream alone) and store the table with
    :func:`source_digest`."""
    rows = []
    for s in scenarios:
        rows.append({"scenario": s.to_dict(), **measure(s)})
    data = {"about": "contention ground truth: sim_models/perf/contention_sim.py over the DRAM "
                     "controller's cycle model (sim_models/dram.py); regenerate with "
                     "`python -m sim_models.perf.contention_sim`",
            "source_digest": source_digest(), "sources": list(SOURCES), "rows": rows}
    Path(path).write_text(json.dumps(data, indent=1) + "\n")
    return data


def load_ground_truth(path: Path = GROUND_TRUTH_FILE) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


if __name__ == "__main__":           # pragma: no cover
    import sys
    import time
    t0 = time.time()
    d = write_ground_truth()
    for r in d["rows"]:
        print(r["scenario"]["name"], r["gemm_alone"], r["comm_alone"], r["rr"], r["mca"], flush=True)
    print(f"{len(d['rows'])} scenarios in {time.time() - t0:.1f} s", file=sys.stderr)
