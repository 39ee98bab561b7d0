"""Fast contention model of one DRAM channel shared by a GEMM and T3's communication.

The analytic stand-in for the cycle harness :mod:`sim_models.perf.contention_sim` (its
ground truth; ``tests/test_perf_contention.py`` holds the two within 10% of cycles on all
24 stored rows, GEMM and whole run). Used by the sublayer model for T3 (plain round-robin arbitration) and
T3-MCA; docs/system_model.md, "Contention", has the derivation.

Service physics, all from the DRAM timing (:class:`contract.dram.DramTiming`, the RTL
controller's), in channel cycles per request (line):

* a READ or a STORE streaming or in 4-line fetches: ``t_ccd_s`` (= 1, one burst);
* an UPDATE: it holds its bank ``t_rmw`` cycles and a sequential stream comes back to a
  bank every :func:`sequential_bank_rotation` lines (derived from the address map: 4 =
  bank_groups on the RTL controller's default mapping, with or without ``bank_xor``),
  so ``t_rmw / 4``;
  a memory whose UPDATE is interface-bound (the paper's GPU: ``t3.nmc_update_cost``)
  passes ``update_cost`` to :func:`service`;
* a change of direction on the data bus (a read after a write or the reverse) costs the
  turnaround ``T = (t_rtw + t_cwl + 1 + t_wtr_s) / 2`` on average (the two directions);
* a row conflict between the communication's streams (:func:`cross_stream_conflict`,
  from :func:`contract.dram.decode` on the streams' actual region bases: the share of
  lines whose bank the other stream holds open on another row): each conflicting bank
  switches rows every ``Q / (streams x rotation)`` lines (the queue's entries spread
  over the streams and the banks a window walks), a switch costing the bank
  ``precharge wait + t_rp + activate-to-column`` (:func:`conflict_cost`), i.e.
  ``streams x switch / Q`` cycles per request; 0 under the default mapping's bank XOR,
  which folds every row bit into the bank index.

The requests of the two streams mix in the controller's queue. With both streams
offering, the data bus changes direction on a fraction ``p`` of the requests; round-robin
interleaves the streams one for one, so ``p = 2 f_r f_w`` (``f_r``, ``f_w``: read and
write shares of the mix: the chance that two consecutive requests differ), divided by
the run length FR-FCFS forms (:data:`RR_RUN`, or :data:`RR_RUN_PURE` when the
communication goes one way only; the communication alone, all row hits, is reordered
over the whole queue: run ``Q``, the queue depth); MCA admits
communication in runs while compute is idle, up to the queue threshold, so ``p`` is
divided by the run length ``thr``. Capacity ``C = 1 / (s + p T + k)`` lines per cycle,
``s`` the mix's mean service time, ``k`` the row-conflict cycles per request (the
communication's share of the mix times its conflict cost).

Sharing (offered rates ``d_g`` of the GEMM, ``d_c`` of communication, lines per cycle):

* ``rr``: when the two fit (``d_g + d_c <= C``) each gets its demand; otherwise
  max-min fair by requests (round-robin alternates whenever both wait): the smaller
  demand is served when below ``C / 2``, the other gets the rest. The GEMM is a closed
  loop of ``outstanding`` lines: its reads also wait ``W = RR_WAIT u / (1 - u)`` cycles
  behind the communication's bursts (``u``: the channel time the communication takes),
  so it completes at most ``d_g / (1 + d_g W / outstanding)`` (Little's law);
* ``mca``: the GEMM gets ``min(d_g, C - floor)``, ``floor = min(d_c, 1 / (limit + 1))``
  (the starvation limit); communication gets ``max(floor, min(C - gemm, room))``, but
  no more than it offers; ``room``: Little's law on the queue above the GEMM's own
  entries (a random-row read holds one :data:`GEMM_RESIDENCE` cycles, a posted
  sequential write its service time, a communication request :data:`COMM_RESIDENCE`).

A GEMM served below its demand slows in proportion (its rate is its memory rate: a
closed loop of CUs waiting for their operands). :func:`timeline` turns the two phases
(both streams, then the survivor alone) into completion cycles for a harness scenario.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.dram import DramTiming, decode

__all__ = ["Service", "service", "capacity", "share", "timeline", "Prediction", "RR_RUN",
           "RR_RUN_PURE", "RR_WAIT", "RR_U_MAX", "LINES_PER_FETCH", "GEMM_OUTSTANDING_LINES",
           "predict_scenario", "agreement_rows", "sequential_bank_rotation",
           "GEMM_RESIDENCE", "COMM_RESIDENCE", "QUEUE_DEPTH", "cross_stream_conflict",
           "conflict_cost"]

#: round-robin's extra GEMM read wait per unit of u / (1 - u) (u: the channel time the
#: communication takes), cycles: tile bursts of row hits go first under FR-FCFS and a
#: row-miss read waits behind them and behind the compute stream's own queue (fitted on
#: the ground truth, whose GEMM read latency confirms the closed-loop law, e.g. 85 ->
#: 668 cycles at intensity 0.3 (d30-ru-p109): docs "Contention"); u is capped at
#: RR_U_MAX, beyond which the capacity split rules
RR_WAIT = 650.0
RR_U_MAX = 0.9
#: the GEMM's closed-loop population per channel: 80 CUs x one 128-byte L2 line
#: (4 lines of 32 B) in flight each, as contention_sim.paper_like
LINES_PER_FETCH = 4
GEMM_OUTSTANDING_LINES = 80 * LINES_PER_FETCH
#: Fitted on the ground truth (contention_ground_truth.json; docs/system_model.md,
#: "Contention"; refitted on the ground truth measured with DramTiming.bank_xor folding
#: every row bit, under which the harness's DMA READ and incoming UPDATE streams use
#: different banks: their row conflicts, which RR_RUN used to absorb (1.45), are now the
#: derived conflict term, 0 here), not derived: the mean run of same-direction requests
#: FR-FCFS forms out
#: of a round-robin mix (the controller skips candidates the turnaround blocks, so runs
#: are longer than the one-for-one interleave) when the communication mixes both
#: directions itself (RR_RUN: DMA READs + incoming UPDATEs) and when it goes one way
#: only (RR_RUN_PURE: stage 1's UPDATEs; the ready row-hit writes issue back to back
#: while the GEMM's row-miss reads wait for their activation); the cycles a random-row
#: GEMM read and a communication request hold a queue entry under MCA (row miss: tRP +
#: tRCD + 2 = 15 at least, plus the queue ahead; a tile burst of UPDATEs: 4 per bank,
#: t_rmw each). A posted sequential GEMM write (a row hit) holds its entry for its
#: service time (derived, not fitted).
#: Refitted 2026-12-03 (RR_RUN_PURE 2.0 -> 2.5, RR_WAIT 700 -> 650) on the ground truth
#: re-measured after the controller's urgent-rule fix (docs/memory.md "Scheduling"),
#: under which a one-way communication stream keeps issuing while an urgent GEMM
#: read waits for its turnaround.
RR_RUN = 3.0
RR_RUN_PURE = 2.5
GEMM_RESIDENCE = 30.0
COMM_RESIDENCE = 40.0
#: the controller queue's entries (the harness's ContentionScenario.queue_depth and the
#: paper hardware's t3.mem_queue_depth, both the RTL's default)
QUEUE_DEPTH = 16


@dataclass(frozen=True)
class Service:
    """Per-request channel cycles from the timing (module doc)."""
    read: float
    write: float
    update: float
    turnaround: float


def sequential_bank_rotation(t: DramTiming) -> int:
    """Lines a sequential stream issues before it comes back to the bank of its first line
    (from :func:`contract.dram.decode`, so it follows ``t.mapping`` and ``t.bank_xor``:
    the XOR term is constant within a row, so it permutes the banks a row window walks
    without changing how often one recurs); 1 when consecutive lines share a bank."""
    first = decode(t, 0).bank
    for k in range(1, t.banks * t.row_lines + 1):
        if decode(t, k).bank == first:
            return k
    return t.banks * t.row_lines        # pragma: no cover (every mapping repeats a bank)


_PRECHARGE_WAIT = {"READ": lambda t: t.t_rtp, "STORE": lambda t: t.write_to_precharge,
                   "UPDATE": lambda t: t.update_to_precharge}
_ACT_TO_COLUMN = {"READ": lambda t: t.t_rcd, "STORE": lambda t: t.t_rcd_wr,
                  "UPDATE": lambda t: t.t_rcd_wr}


def cross_stream_conflict(t: DramTiming, bases: "list[int] | tuple[int, ...]") -> float:
    """Share of the lines of sequential streams starting at line addresses ``bases``
    (walked side by side, line ``i`` of each) that land in a bank another stream uses at
    the same step, in another row (:func:`contract.dram.decode`, so it follows
    ``t.mapping`` and ``t.bank_xor``). Sampled over one full walk of the banks
    (``banks x row_lines`` lines); 0 for one stream or none. Dimensionless, 0..1."""
    bases = list(bases)
    if len(bases) < 2:
        return 0.0
    n = t.banks * t.row_lines
    hit = 0
    for i in range(n):
        where = [decode(t, b + i) for b in bases]
        for k, w in enumerate(where):
            if any(o.bank == w.bank and o.row != w.row for j, o in enumerate(where) if j != k):
                hit += 1
    return hit / (n * len(bases))


def conflict_cost(t: DramTiming, ops: "list[str] | tuple[str, ...]", *,
                  queue_depth: int = QUEUE_DEPTH) -> float:
    """Channel cycles per request that streams of ``ops`` (one sequential stream each)
    lose when they all conflict in their banks: a bank switches rows every
    ``queue_depth / (streams x rotation)`` lines (its share of the queue per stream), the
    switch taking the mean precharge wait after the last access (``t_rtp`` after a READ,
    ``update_to_precharge`` after an UPDATE, ``write_to_precharge`` after a STORE) +
    ``t_rp`` + the mean activate-to-column (``t_rcd`` / ``t_rcd_wr``); the ``rotation``
    banks of a window switch in parallel: ``streams x switch / queue_depth``."""
    if not isinstance(queue_depth, int) or queue_depth < 1:
        raise ValueError(f"queue_depth={queue_depth!r}: must be an integer >= 1")
    ops = list(ops)
    for op in ops:
        if op not in _PRECHARGE_WAIT:
            raise ValueError(f"op={op!r}: must be READ, STORE or UPDATE")
    if len(ops) < 2:
        return 0.0
    switch = t.t_rp + sum(_PRECHARGE_WAIT[o](t) + _ACT_TO_COLUMN[o](t) for o in ops) / len(ops)
    return len(ops) * switch / queue_depth


def service(t: DramTiming | None = None, *, update_cost: float | None = None) -> Service:
    """Per-request channel cycles for the timing ``t`` (default: the RTL controller's).

    ``update_cost`` (UPDATE interface time / a write's, dimensionless; None = derive it
    from the RTL controller's address map): a sequential UPDATE stream holds each bank
    ``t_rmw`` cycles and comes back to it after :func:`sequential_bank_rotation` lines, so
    an UPDATE costs ``max(t_ccd_s, t_rmw / rotation)`` cycles (the default mapping,
    with or without ``bank_xor``: rotation = bank_groups, 9 / 4; the ground truth's
    value); a memory whose UPDATE is interface-bound passes ``1.0`` (the sublayer
    model's ``t3.nmc_update_cost``, docs/system_model.md "Contention")."""
    t = t or DramTiming()
    if update_cost is not None and not update_cost >= 0:
        raise ValueError(f"update_cost={update_cost!r}: must be >= 0")
    update = (max(float(t.t_ccd_s), t.t_rmw / sequential_bank_rotation(t))
              if update_cost is None else update_cost * t.t_ccd_s)
    return Service(read=float(t.t_ccd_s), write=float(t.t_ccd_s), update=float(update),
                   turnaround=(t.t_rtw + t.write_to_read_other) / 2.0)


def _service_of(op: str, sv: Service) -> float:
    """Channel cycles of one request of ``op`` ("READ", "STORE" or "UPDATE")."""
    return {"READ": sv.read, "STORE": sv.write, "UPDATE": sv.update}[op]


def _mix(rates: dict[str, float], sv: Service) -> tuple[float, float, float]:
    """(total lines/cycle, mean service cycles, read share) of a mix {op: lines/cycle}."""
    tot = sum(rates.values())
    if tot <= 0:
        return 0.0, 1.0, 1.0
    s = (rates.get("READ", 0.0) * sv.read + rates.get("STORE", 0.0) * sv.write
         + rates.get("UPDATE", 0.0) * sv.update) / tot
    return tot, s, rates.get("READ", 0.0) / tot


def capacity(rates: dict[str, float], sv: Service, *, policy: str, threshold: int = 1,
             run: float = RR_RUN, conflict: float = 0.0) -> float:
    """Lines per cycle the channel serves for the mix ``rates`` (its shares matter, not
    its level) under ``policy`` (module doc); ``run``: the round-robin run length
    (:data:`RR_RUN`, :data:`RR_RUN_PURE`, or the queue depth for the communication
    alone); ``conflict``: row-conflict cycles per request of the mix (module doc)."""
    tot, s, fr = _mix(rates, sv)
    if tot <= 0:
        return 1.0 / sv.read
    p = 2.0 * fr * (1.0 - fr) / (max(1, threshold) if policy == "mca" else run)
    cost = s + p * sv.turnaround + conflict
    return 1.0 / cost if cost > 0 else float("inf")     # free UPDATEs only: no limit


def share(policy: str, gemm: dict[str, float], comm: dict[str, float], sv: Service, *,
          threshold: int, limit: int, outstanding: float = GEMM_OUTSTANDING_LINES,
          conflict: float = 0.0, queue_depth: int = QUEUE_DEPTH) -> tuple[float, float]:
    """Delivered (GEMM, communication) lines per cycle for offered mixes ``gemm`` and
    ``comm`` ({op: lines per cycle}; ``float('inf')`` totals are not allowed: a stream
    with a backlog offers what it would take alone, ``1 / service``). ``outstanding``:
    the GEMM's operand lines in flight at most (its CUs x lines per fetch; the closed
    loop's population); ``conflict``: row-conflict cycles per communication request
    (:func:`cross_stream_conflict` x :func:`conflict_cost`; 0 when its streams use
    different banks, as under the default bank XOR); ``queue_depth``: the controller's
    entries (the run length of the communication alone)."""
    if not outstanding > 0:
        raise ValueError(f"outstanding={outstanding!r}: must be > 0")
    if not conflict >= 0:
        raise ValueError(f"conflict={conflict!r}: must be >= 0")
    dg, dc = sum(gemm.values()), sum(comm.values())
    both = {k: gemm.get(k, 0.0) + comm.get(k, 0.0) for k in set(gemm) | set(comm)}
    if dc <= 0:
        return dg, 0.0
    if dg <= 0:
        return 0.0, dc
    k = conflict * dc / (dg + dc)           # conflict cycles per request of the mix
    if policy == "rr":
        one_way = comm.get("READ", 0.0) <= 0 or comm.get("READ", 0.0) >= dc
        C = capacity(both, sv, policy="rr", run=RR_RUN_PURE if one_way else RR_RUN,
                     conflict=k)
        if dg + dc <= C:
            g, c = dg, dc
        elif dc <= C / 2.0:
            g, c = C - dc, dc
        elif dg <= C / 2.0:
            g, c = dg, C - dg
        else:
            g, c = C / 2.0, C / 2.0
        # closed loop: a GEMM read waits RR_WAIT u / (1 - u) cycles more behind the
        # communication's requests (u: the channel time they take alone), and the
        # GEMM's outstanding lines complete that much more slowly
        u = min(RR_U_MAX, c / capacity({o: v / dc for o, v in comm.items()}, sv, policy="rr",
                                       run=queue_depth, conflict=conflict))
        wait = RR_WAIT * u / (1.0 - u)
        return min(g, dg / (1.0 + dg * wait / outstanding)), c
    if policy == "mca":
        C = capacity(both, sv, policy="mca", threshold=threshold, conflict=k)
        floor = min(dc, 1.0 / (limit + 1))
        g = min(dg, C - floor)
        # Little's law on the queue: communication holds at most what the threshold
        # leaves above the GEMM's own entries, each for its residence time: a random-row
        # operand READ GEMM_RESIDENCE, a posted sequential write (a row hit) its service
        held = gemm.get("READ", 0.0) * GEMM_RESIDENCE + sum(
            v * _service_of(op, sv) for op, v in gemm.items() if op != "READ")
        room = max(0.0, threshold - held) / COMM_RESIDENCE
        return g, min(dc, max(floor, min(C - g, room)))
    raise ValueError(f"policy={policy!r}: must be 'rr' or 'mca'")


@dataclass(frozen=True)
class Prediction:
    gemm_cycles: float
    comm_cycles: float


def timeline(*, gemm_lines: dict[str, float], gemm_alone_cycles: float,
             comm_lines_per_fire: dict[str, float], comm_period: float, comm_start: float,
             comm_fires: int, policy: str, threshold: int, limit: int,
             sv: Service | None = None,
             outstanding: float = GEMM_OUTSTANDING_LINES, conflict: float = 0.0,
             queue_depth: int = QUEUE_DEPTH) -> Prediction:
    """Completion cycles of a harness scenario: the GEMM (``gemm_lines`` per op, done in
    ``gemm_alone_cycles`` alone) and the communication (``comm_fires`` tiles of
    ``comm_lines_per_fire`` every ``comm_period`` from ``comm_start``). A fluid run:
    rates are constant between events (a stream finishes, arrivals stop), shared by
    :func:`share` while both are active (``conflict``, ``queue_depth``: as there)."""
    sv = sv or service()
    G = sum(gemm_lines.values())
    g_mix = {k: v / G for k, v in gemm_lines.items()} if G else {}
    dg = G / gemm_alone_cycles if gemm_alone_cycles > 0 else 0.0
    per_fire = sum(comm_lines_per_fire.values())
    c_mix = {k: v / per_fire for k, v in comm_lines_per_fire.items()} if per_fire else {}
    arrive = per_fire / comm_period if per_fire else 0.0
    arr_end = comm_start + comm_fires * comm_period       # fluid arrivals end
    Ctot = per_fire * comm_fires
    cap_c = capacity(c_mix, sv, policy="rr", run=queue_depth, conflict=conflict) \
        if per_fire else 1.0
    eps = 1e-6
    t, g_left, served = 0.0, float(G), 0.0
    g_end = None if G > 0 else 0.0
    c_end = None if Ctot > 0 else 0.0

    def rates(dc: float) -> tuple[float, float]:
        if g_end is None:
            return share(policy, {k: v * dg for k, v in g_mix.items()},
                         {k: v * dc for k, v in c_mix.items()}, sv, threshold=threshold,
                         limit=limit, outstanding=outstanding, conflict=conflict,
                         queue_depth=queue_depth)
        return 0.0, min(dc, cap_c)

    for _ in range(1000):
        if g_end is not None and c_end is not None:
            break
        comm_on = c_end is None and t >= comm_start
        arrived = min(Ctot, max(0.0, (t - comm_start) * arrive))
        backlog = arrived - served
        arriving = t < arr_end - eps
        g_rate, c_rate = dg if g_end is None else 0.0, 0.0
        backlogged = False
        if comm_on:
            if arriving and backlog <= eps:
                g_rate, c_rate = rates(arrive)
                if c_rate < arrive - eps:
                    g2, c2 = rates(cap_c)
                    if c2 > arrive + eps:
                        # sliding regime: offering its arrivals the stream falls behind,
                        # offering a backlog it catches up; the backlog stays at zero and
                        # the stream is served at its arrival rate, the GEMM at the
                        # matching interpolation of the two shares
                        w = (arrive - c_rate) / (c2 - c_rate)
                        g_rate, c_rate = g_rate + w * (g2 - g_rate), arrive
                    else:
                        backlogged = True
                        g_rate, c_rate = g2, c2
            else:
                backlogged = True
                g_rate, c_rate = rates(cap_c)
        events = []
        if g_end is None and g_rate > 0:
            events.append(g_left / g_rate)
        if t < comm_start:
            events.append(comm_start - t)
        if comm_on:
            if arriving:
                events.append(arr_end - t)
                if backlogged and c_rate > arrive:
                    events.append(backlog / (c_rate - arrive))
            elif c_rate > 0:
                events.append((Ctot - served) / c_rate)
        if not events:
            break
        dt = max(min(events), 1e-9)
        if g_end is None:
            g_left -= g_rate * dt
            if g_left <= eps * max(1.0, G):
                g_end = t + dt
        if comm_on:
            served = served + (arrive * dt if (arriving and not backlogged) else c_rate * dt)
            served = min(served, min(Ctot, (t + dt - comm_start) * arrive))
        t += dt
        if c_end is None and t >= arr_end - eps and served >= Ctot - eps * Ctot:
            c_end = t
    if Ctot:
        # the last tile fires at the start of the last period and drains at least alone
        c_end = max(c_end or t, comm_start + (comm_fires - 1) * comm_period + per_fire / cap_c)
    return Prediction(gemm_cycles=g_end or 0.0, comm_cycles=c_end)


def predict_scenario(scn, gemm_alone_cycles: float, threshold: int, policy: str,
                     sv: Service | None = None, timing: DramTiming | None = None
                     ) -> Prediction:
    """:func:`timeline` for a harness scenario (:class:`contention_sim.ContentionScenario`),
    given its GEMM's alone time and the threshold the harness derived (the same formula,
    :func:`contention_sim.mca_threshold`, from the same first stage); the communication's
    row conflicts from the harness's region bases (:data:`contention_sim.COMM_REGION_BASES`)
    decoded with ``timing`` (default: the controller's, as the harness runs it)."""
    from .contention_sim import COMM_REGION_BASES
    t = timing or DramTiming()
    sv = sv or service(t)
    ops = list(scn.comm_ops)
    conflict = cross_stream_conflict(t, [COMM_REGION_BASES[o] for o in ops]) \
        * conflict_cost(t, ops, queue_depth=scn.queue_depth)
    lines = {"READ": float(scn.agents * scn.fetches * scn.fetch_lines)}
    writes = float(scn.agents * (scn.fetches // scn.write_every) * scn.write_lines)
    if writes:
        lines[scn.write_op] = lines.get(scn.write_op, 0.0) + writes
    return timeline(gemm_lines=lines, gemm_alone_cycles=gemm_alone_cycles,
                    comm_lines_per_fire={op: float(scn.burst_lines) for op in scn.comm_ops},
                    comm_period=scn.comm_period, comm_start=scn.comm_start,
                    comm_fires=scn.comm_fires, policy=policy, threshold=threshold,
                    limit=scn.starvation_limit, sv=sv,
                    outstanding=scn.agents * scn.fetch_lines, conflict=conflict,
                    queue_depth=scn.queue_depth)


def agreement_rows(data: dict | None = None) -> list[dict]:
    """Model vs stored ground truth, one row per scenario and policy: cycles of the GEMM,
    of the communication and of the whole run (the later of the two), and the errors."""
    from .contention_sim import ContentionScenario, load_ground_truth
    data = data or load_ground_truth()
    out = []
    for r in data["rows"]:
        scn = ContentionScenario.from_dict(r["scenario"])
        for policy in ("rr", "mca"):
            m = r[policy]
            p = predict_scenario(scn, r["gemm_alone"]["gemm_cycles"], m["threshold"], policy)
            end_m = max(m["gemm_cycles"], m["comm_cycles"])
            end_p = max(p.gemm_cycles, p.comm_cycles)
            out.append({"scenario": scn.name, "policy": policy,
                        "intensity": r["gemm_alone"]["intensity"], "threshold": m["threshold"],
                        "gemm_alone": r["gemm_alone"]["gemm_cycles"],
                        "gemm_measured": m["gemm_cycles"], "gemm_model": round(p.gemm_cycles),
                        "gemm_error": p.gemm_cycles / m["gemm_cycles"] - 1,
                        "comm_measured": m["comm_cycles"], "comm_model": round(p.comm_cycles),
                        "comm_error": p.comm_cycles / m["comm_cycles"] - 1,
                        "end_measured": end_m, "end_model": round(end_p),
                        "end_error": end_p / end_m - 1})
    return out
