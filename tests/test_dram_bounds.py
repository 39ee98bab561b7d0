"""The starvation bound of the DRAM controller (contract/dram_bounds.py) on its cycle model
(sim_models/dram.py; the RTL is cycle-exact with it, tests/test_dram_amaranth.py), over
long adversarial random runs: row conflicts on few banks, bursts of row hits, all ops,
the queue kept full, the response sink always ready (the bound's condition).

Checked every cycle: the oldest request, once urgent, issues within ``U``
(``urgent_service_bound``); every request issues within ``B`` of its acceptance
(``starvation_bound``). The formal harness (verif/formal/dram.py) checks both on the RTL
to a bounded depth; these runs go much longer."""

from __future__ import annotations

import os
import random

import pytest

from contract.dram import DramTiming
from contract.dram_bounds import starvation_bound, urgent_service_bound
from contract.spec import Op
from sim_models.dram import DramControllerModel, DramRequest, encode

from tests.test_dram_amaranth import FAST
from verif.formal.dram import CFG as FORMAL_CFG, TIMING as FORMAL_TIMING

SETUPS = [
    ("formal", FORMAL_TIMING, FORMAL_CFG.mem_queue_depth),
    ("fast_q4", FAST, 4),
    ("hbm2_q16_cap16", DramTiming(age_cap=16), 16),
]


def adversarial(timing: DramTiming, rng: random.Random, n: int) -> list[DramRequest]:
    """Requests crowding two or three banks: row conflicts, runs of row hits to one row
    (which FR-FCFS prefers), same-line repeats, every op."""
    banks = rng.sample(range(timing.banks), min(timing.banks, rng.choice([2, 3])))
    out = []
    while len(out) < n:
        bank, row = rng.choice(banks), rng.randrange(4)
        run = rng.choice([1, 1, 2, 8, 24])
        for _ in range(run):
            col = rng.randrange(timing.row_lines)
            out.append(DramRequest(rng.choice(list(Op)), encode(timing, bank=bank, row=row,
                                                                 col=col)))
    return out[:n]


@pytest.mark.parametrize("name, timing, queue", SETUPS, ids=[s[0] for s in SETUPS])
def test_waits_stay_within_the_bounds(name, timing, queue):
    seed = int(os.environ.get("T3_SEED") or random.randrange(1 << 30))
    print(f"seed={seed}")
    rng = random.Random(seed)
    U, B = urgent_service_bound(timing), starvation_bound(timing, queue)
    worst_u = worst_b = 0
    for _ in range(20):
        reqs = adversarial(timing, rng, 1500)
        model = DramControllerModel(timing, queue_depth=queue)
        accept: dict[int, int] = {}
        nxt, c, urgent_since, done = 0, 0, None, 0
        while done < len(reqs):
            head = model.waiting[0] if model.waiting else None
            urgent = head is not None and c - head.accept >= timing.age_cap
            if urgent and urgent_since is None:
                urgent_since = c
            offered = reqs[nxt] if nxt < len(reqs) else None
            acc, col, _ = model.step(c, offered, nxt, True)
            if acc:
                accept[nxt] = c
                nxt += 1
            if col is not None:
                done += 1
                worst_b = max(worst_b, c - accept[col.index])
                if col is head and urgent_since is not None:
                    worst_u = max(worst_u, c - urgent_since)
            if col is head and head is not None:
                urgent_since = None
            c += 1
            assert urgent_since is None or c - urgent_since <= U + 1
    print(f"{name}: longest urgent service {worst_u} (U = {U}), longest wait {worst_b} "
          f"(B = {B})")
    assert worst_u <= U and worst_b <= B
    assert worst_u > 0, "the age cap never acted"
