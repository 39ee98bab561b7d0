"""Fast contention model of one DRAM channel shared by a GEMM and T3's communication.

The analytic stand-in for the cycle harness :mod:`sim_models.perf.contention_sim` (its
ground truth; ``tests/test_perf_contention.py`` holds the two within 10% of cycles on the
stored scenarios). Used by the sublayer model for T3 (plain round-robin arbitration) and
T3-MCA; docs/system_model.md, "Contention", has the derivation.

Service physics, all from the DRAM timing (:class:`contract.dram.DramTiming`, the RTL
controller's), in channel cycles per request (line):

* a READ or a STORE streaming or in 4-line fetches: ``t_ccd_s`` (= 1, one burst);
* an UPDATE: it holds its bank ``t_rmw`` cycles and a sequential stream keeps one bank
  per bank group busy, so ``t_rmw / bank_groups``;
* a change of direction on the data bus (a read after a write or the reverse) costs the
  turnaround ``T = (t_rtw + t_cwl + 1 + t_wtr_s) / 2`` on average (the two directions).

The requests of the two streams mix in the controller's queue. With both streams
offering, the data bus changes direction on a fraction ``p`` of the requests; round-robin
interleaves the streams one for one, so ``p = 2 f_r f_w`` (``f_r``, ``f_w``: read and
write shares of the mix: the chance that two consecutive requests differ); MCA admits
communication in runs while compute is idle, up to the queue threshold, so ``p`` is
divided by the run length ``thr``. Capacity ``C = 1 / (s + p T)`` lines per cycle, ``s``
the mix's mean service time.

Sharing (offered rates ``d_g`` of the GEMM, ``d_c`` of communication, lines per cycle):

* ``rr``: when the two fit (``d_g + d_c <= C``) each gets its demand; otherwise
  max-min fair by requests (round-robin alternates whenever both wait): the smaller
  demand is served when below ``C / 2``, the other gets the rest;
* ``mca``: the GEMM gets ``min(d_g, C - floor)``, ``floor = min(d_c, 1 / (limit + 1))``
  (the starvation limit); communication gets ``max(floor, C - gemm)``, but no more
  than it offers.

A GEMM served below its demand slows in proportion (its rate is its memory rate: a
closed loop of CUs waiting for their operands). :func:`timeline` turns the two phases
(both streams, then the survivor alone) into completion cycles for a harness scenario.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.dram import DramTiming

__all__ = ["Service", "service", "capacity", "share", "timeline", "Prediction", "RR_RUN",
           "predict_scenario", "agreement_rows",
           "GEMM_RESIDENCE", "COMM_RESIDENCE"]

#: Measured on the ground truth (contention_ground_truth.json; docs/system_model.md,
#: "Contention"), not derived: the mean run of same-direction requests FR-FCFS forms out
#: of a round-robin mix (the controller skips candidates the turnaround blocks, so runs
#: are longer than the one-for-one interleave); the cycles a GEMM read and a
#: communication request hold a queue entry under MCA (row miss: tRP + tRCD + the
#: queue ahead; a tile burst of UPDATEs: 4 per bank, t_rmw each).
RR_RUN = 1.5
GEMM_RESIDENCE = 30.0
COMM_RESIDENCE = 35.0


@dataclass(frozen=True)
class Service:
    """Per-request channel cycles from the timing (module doc)."""
    read: float
    write: float
    update: float
    turnaround: float


def service(t: DramTiming | None = None) -> Service:
    t = t or DramTiming()
    return Service(read=float(t.t_ccd_s), write=float(t.t_ccd_s),
                   update=t.t_rmw / t.bank_groups,
                   turnaround=(t.t_rtw + t.write_to_read_other) / 2.0)


def _mix(rates: dict[str, float], sv: Service) -> tuple[float, float, float]:
    """(total lines/cycle, mean service cycles, read share) of a mix {op: lines/cycle}."""
    tot = sum(rates.values())
    if tot <= 0:
        return 0.0, 1.0, 1.0
    s = (rates.get("READ", 0.0) * sv.read + rates.get("STORE", 0.0) * sv.write
         + rates.get("UPDATE", 0.0) * sv.update) / tot
    return tot, s, rates.get("READ", 0.0) / tot


def capacity(rates: dict[str, float], sv: Service, *, policy: str, threshold: int = 1) -> float:
    """Lines per cycle the channel serves for the mix ``rates`` (its shares matter, not
    its level) under ``policy`` (module doc)."""
    tot, s, fr = _mix(rates, sv)
    if tot <= 0:
        return 1.0 / sv.read
    p = 2.0 * fr * (1.0 - fr) / (max(1, threshold) if policy == "mca" else RR_RUN)
    return 1.0 / (s + p * sv.turnaround)


def share(policy: str, gemm: dict[str, float], comm: dict[str, float], sv: Service, *,
          threshold: int, limit: int) -> tuple[float, float]:
    """Delivered (GEMM, communication) lines per cycle for offered mixes ``gemm`` and
    ``comm`` ({op: lines per cycle}; ``float('inf')`` totals are not allowed: a stream
    with a backlog offers what it would take alone, ``1 / service``)."""
    dg, dc = sum(gemm.values()), sum(comm.values())
    both = {k: gemm.get(k, 0.0) + comm.get(k, 0.0) for k in set(gemm) | set(comm)}
    if dc <= 0:
        return dg, 0.0
    if dg <= 0:
        return 0.0, dc
    if policy == "rr":
        C = capacity(both, sv, policy="rr")
        if dg + dc <= C:
            return dg, dc
        half = C / 2.0
        if dc <= half:
            return C - dc, dc
        if dg <= half:
            return dg, C - dg
        return half, half
    if policy == "mca":
        C = capacity(both, sv, policy="mca", threshold=threshold)
        floor = min(dc, 1.0 / (limit + 1))
        g = min(dg, C - floor)
        # Little's law on the queue: communication holds at most what the threshold
        # leaves above the GEMM's own entries, each for its residence time
        room = max(0.0, threshold - dg * GEMM_RESIDENCE) / COMM_RESIDENCE
        return g, min(dc, max(floor, min(C - g, room)))
    raise ValueError(f"policy={policy!r}: must be 'rr' or 'mca'")


@dataclass(frozen=True)
class Prediction:
    gemm_cycles: float
    comm_cycles: float


def timeline(*, gemm_lines: dict[str, float], gemm_alone_cycles: float,
             comm_lines_per_fire: dict[str, float], comm_period: float, comm_start: float,
             comm_fires: int, policy: str, threshold: int, limit: int,
             sv: Service | None = None) -> Prediction:
    """Completion cycles of a harness scenario: the GEMM (``gemm_lines`` per op, done in
    ``gemm_alone_cycles`` alone) and the communication (``comm_fires`` tiles of
    ``comm_lines_per_fire`` every ``comm_period`` from ``comm_start``). A fluid run:
    rates are constant between events (a stream finishes, arrivals stop), shared by
    :func:`share` while both are active."""
    sv = sv or service()
    G = sum(gemm_lines.values())
    g_mix = {k: v / G for k, v in gemm_lines.items()} if G else {}
    dg = G / gemm_alone_cycles if gemm_alone_cycles > 0 else 0.0
    per_fire = sum(comm_lines_per_fire.values())
    c_mix = {k: v / per_fire for k, v in comm_lines_per_fire.items()} if per_fire else {}
    arrive = per_fire / comm_period if per_fire else 0.0
    arr_end = comm_start + comm_fires * comm_period       # fluid arrivals end
    Ctot = per_fire * comm_fires
    cap_c = capacity(c_mix, sv, policy="rr") if per_fire else 1.0
    eps = 1e-6
    t, g_left, served = 0.0, float(G), 0.0
    g_end = None if G > 0 else 0.0
    c_end = None if Ctot > 0 else 0.0

    def rates(dc: float) -> tuple[float, float]:
        if g_end is None:
            return share(policy, {k: v * dg for k, v in g_mix.items()},
                         {k: v * dc for k, v in c_mix.items()}, sv, threshold=threshold,
                         limit=limit)
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
                    backlogged = True
            else:
                backlogged = True
            if backlogged:
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
                     sv: Service | None = None) -> Prediction:
    """:func:`timeline` for a harness scenario (:class:`contention_sim.ContentionScenario`),
    given its GEMM's alone time and the threshold the harness derived (the same formula,
    :func:`contention_sim.mca_threshold`, from the same first stage)."""
    lines = {"READ": float(scn.agents * scn.fetches * scn.fetch_lines)}
    writes = float(scn.agents * (scn.fetches // scn.write_every) * scn.write_lines)
    if writes:
        lines[scn.write_op] = lines.get(scn.write_op, 0.0) + writes
    return timeline(gemm_lines=lines, gemm_alone_cycles=gemm_alone_cycles,
                    comm_lines_per_fire={op: float(scn.burst_lines) for op in scn.comm_ops},
                    comm_period=scn.comm_period, comm_start=scn.comm_start,
                    comm_fires=scn.comm_fires, policy=policy, threshold=threshold,
                    limit=scn.starvation_limit, sv=sv)


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
