"""Cycle model of the DRAM memory controller: the timing scoreboard of the RTL.

The controller (docs/memory.md) holds up to ``queue_depth`` requests and schedules them
over the banks of one HBM2 pseudo-channel (:class:`contract.dram.DramTiming`) with an
FR-FCFS policy. This model is the specification the RTL controller must match cycle for
cycle: for every request the cycle it is accepted, the cycle its column command issues
and the cycle it completes (a READ: its response handshake; a STORE or UPDATE: its
column command). Data is not modelled here: same-line requests issue in arrival order,
so the memory contents are those of the in-order golden model
(:class:`sim_models.nmc_model.ComputeMemoryModel`).

One cycle, all decisions on the state at the start of the cycle (registers):

1. **Input.** ``ready`` while fewer than ``queue_depth`` requests wait for their column
   command; the request accepted in cycle ``c`` can be scheduled from ``c + 1``. A READ
   gets the next read sequence number ``seq`` on acceptance.
2. **Age cap.** The oldest waiting request is *urgent* once it has waited ``age_cap``
   cycles or more since its acceptance. Then no other request of its bank issues a column
   command, its bank may be precharged although other requests hit the open row, its row
   command goes first whenever its timing allows, and once its row is open no other
   column command may issue that would delay its own (one that starts a spacing or bus
   turnaround constraint on it lasting beyond the cycle its timing already allows it:
   :meth:`DramControllerModel.spares`). Everything else goes on, so the age cap bounds
   the wait without serialising the controller.
3. **Column command** (RD, WR or UPD; at most one). A bank's candidate is its oldest
   waiting request whose row is open in the bank (a row hit); among the candidates whose
   timing allows the command this cycle, the oldest issues. Same-line requests have the
   same bank and row, so they issue in arrival order. A RD also needs a return slot:
   ``seq - head < return_slots`` where ``head`` is the oldest unanswered READ's ``seq``.
4. **Row command** (ACT or PRE; at most one, on HBM2's separate row bus). For each bank
   with waiting requests, its oldest waiting request ``e``: a closed bank is activated
   for ``e``'s row; an open bank whose row differs is precharged, but only when none of
   its waiting requests hits the open row (row hits first). Among the candidates whose
   timing allows the command, the one whose ``e`` is oldest issues.
5. **Response.** READ responses leave in acceptance order from a return buffer of
   ``return_slots`` lines (slot ``seq mod return_slots``): the READ with ``seq == head``
   is presented once its data is complete (``t_cl + 1`` cycles after its column
   command) and leaves on the handshake. STORE and UPDATE complete with their column
   command.

Timing constraints (cycles, :class:`contract.dram.DramTiming`): a column command needs
its row open for ``t_rcd`` (RD) or ``t_rcd_wr`` (WR, UPD) since the ACT, ``t_ccd_s``
since any column command and ``t_ccd_l`` since one in its bank group, ``t_rmw`` since an
UPDATE to its bank; a RD needs ``t_cwl + 1 + t_wtr_l`` (same group) / ``t_wtr_s`` (any
group) since a WR or UPD; a WR or UPD needs ``t_rtw`` since any RD. A PRE needs
``t_ras`` since the bank's ACT, ``t_rtp`` since its last RD, ``t_cwl + 1 + t_wr`` since
its last WR, ``t_rmw + t_wr`` since its last UPD. An ACT needs ``t_rp`` since the bank's
PRE, ``t_rrd_s`` since any ACT and ``t_rrd_l`` since one in its group, and at most four
ACTs in any ``t_faw`` cycles.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from contract.dram import MAPPINGS, DramAddress, DramTiming, decode, row_hash
from contract.dram_bounds import return_slots, starvation_bound
from contract.spec import ConfigError, Op

__all__ = ["DramRequest", "DramResult", "DramStats", "DramControllerModel", "return_slots",
           "starvation_bound", "simulate", "peak_random_row_rate", "throughput", "encode",
           "rotating_random_rows", "random_requests"]

_NEVER = -(1 << 30)     # "long ago": every constraint against it is met


@dataclass(frozen=True)
class DramRequest:
    """One request offered to the controller from cycle ``offer`` on (valid stays high
    until accepted; requests are accepted in list order)."""
    op: Op
    addr: int
    offer: int = 0


@dataclass
class DramResult:
    """Per request: ``accept`` (handshake cycle), ``issue`` (its column command) and
    ``done`` (READ: response handshake; STORE/UPDATE: = ``issue``)."""
    accept: int
    issue: int
    done: int


@dataclass
class DramStats:
    """Counts over one run (``cycles``: the last cycle anything completed, + 1)."""
    cycles: int = 0
    reads: int = 0
    writes: int = 0
    updates: int = 0
    activates: int = 0
    precharges: int = 0
    urgent_cycles: int = 0
    occupancy_sum: int = 0          # sum over cycles of the entries held (mean = / cycles)

    @property
    def row_hit_ratio(self) -> float:
        """Column commands that needed no ACT of their own: 1 - ACTs / column commands."""
        cols = self.reads + self.writes + self.updates
        return 1.0 - self.activates / cols if cols else 0.0


@dataclass
class _Entry:
    index: int                       # position in the request list (= arrival order)
    op: Op
    where: DramAddress
    accept: int
    seq: int = -1                    # READs: read sequence number (response order)
    issued: int | None = None


@dataclass
class _Bank:
    open_row: int | None = None
    act: int = _NEVER
    pre: int = _NEVER
    rd: int = _NEVER
    wr: int = _NEVER
    upd: int = _NEVER


@dataclass
class _Bus:
    col: int = _NEVER
    rd: int = _NEVER
    wr: int = _NEVER                 # last WR or UPD (both drive write data)
    act: int = _NEVER
    acts: list[int] = field(default_factory=list)     # last four ACT cycles


class DramControllerModel:
    """The controller's state and its one-cycle step (see the module doc)."""

    def __init__(self, timing: DramTiming, *, queue_depth: int):
        if not isinstance(timing, DramTiming):
            raise ConfigError(f"DramControllerModel: timing={timing!r}: must be a DramTiming")
        if not isinstance(queue_depth, int) or isinstance(queue_depth, bool) \
                or not 1 <= queue_depth <= 1024:
            raise ConfigError(f"DramControllerModel: queue_depth={queue_depth!r}: must be an "
                              "integer in [1, 1024]")
        self.t = timing
        self.depth = queue_depth
        self.slots = return_slots(timing, queue_depth)
        self.waiting: list[_Entry] = []          # no column command yet, oldest first
        self.returning: dict[int, _Entry] = {}   # issued READs by seq, not yet answered
        self.next_seq = 0                        # seq of the next accepted READ
        self.head = 0                            # seq of the oldest unanswered READ
        self.banks = [_Bank() for _ in range(timing.banks)]
        self.group_col = [_NEVER] * timing.bank_groups
        self.group_wr = [_NEVER] * timing.bank_groups
        self.group_act = [_NEVER] * timing.bank_groups
        self.bus = _Bus()
        self.stats = DramStats()

    @property
    def occupancy(self) -> int:
        """Requests waiting for their column command (what MCA watches)."""
        return len(self.waiting)

    # ---- timing rules ------------------------------------------------------------------
    def column_ready(self, e: _Entry) -> int:
        """The first cycle the column timing allows ``e``'s command (its return slot aside)."""
        t, b, g = self.t, self.banks[e.where.bank], e.where.group
        ready = [b.act + (t.t_rcd if e.op == Op.READ else t.t_rcd_wr),
                 self.bus.col + t.t_ccd_s, self.group_col[g] + t.t_ccd_l, b.upd + t.t_rmw]
        if e.op == Op.READ:
            ready += [self.group_wr[g] + t.write_to_read_same, self.bus.wr + t.write_to_read_other]
        else:
            ready.append(self.bus.rd + t.t_rtw)
        return max(ready)

    def slot_free(self, e: _Entry) -> bool:
        """A READ has its return slot (``seq - head < return_slots``); others need none."""
        return e.op != Op.READ or e.seq - self.head < self.slots

    def column_ok(self, e: _Entry, c: int) -> bool:
        return self.slot_free(e) and c >= self.column_ready(e)

    def precharge_ok(self, bank: int, c: int) -> bool:
        t, b = self.t, self.banks[bank]
        return c >= b.act + t.t_ras and c >= b.rd + t.t_rtp \
            and c >= b.wr + t.write_to_precharge and c >= b.upd + t.update_to_precharge

    def activate_ok(self, bank: int, group: int, c: int) -> bool:
        t, b = self.t, self.banks[bank]
        if c < b.pre + t.t_rp or c < self.bus.act + t.t_rrd_s or c < self.group_act[group] + t.t_rrd_l:
            return False
        return len(self.bus.acts) < 4 or c >= self.bus.acts[-4] + t.t_faw

    # ---- one cycle ---------------------------------------------------------------------
    def _hits(self, e: _Entry) -> bool:
        return self.banks[e.where.bank].open_row == e.where.row

    def urgent_slack(self, e: _Entry, c: int) -> int:
        """Cycles from ``c`` until the column timing allows ``e`` (0: now); 0 also for a
        READ without a free return slot (its wait depends on the response sink)."""
        return max(0, self.column_ready(e) - c) if self.slot_free(e) else 0

    def spares(self, e: _Entry, urgent: _Entry, slack: int) -> bool:
        """Would a column command of ``e`` (another bank) now leave the urgent request's
        earliest column cycle, ``slack`` cycles away, where it is? Each constraint the
        command starts on it (command spacing, bus turnaround) must end by then."""
        t, same_group = self.t, e.where.group == urgent.where.group
        delays = [t.t_ccd_s] + ([t.t_ccd_l] if same_group else [])
        if e.op == Op.READ and urgent.op != Op.READ:
            delays.append(t.t_rtw)
        elif e.op != Op.READ and urgent.op == Op.READ:
            delays.append(t.write_to_read_same if same_group else t.write_to_read_other)
        return max(delays) <= slack

    def _pick_column(self, urgent: _Entry | None, c: int) -> _Entry | None:
        slack = None
        if urgent is not None and self._hits(urgent):
            if self.column_ok(urgent, c):
                return urgent
            slack = self.urgent_slack(urgent, c)
        seen: set[int] = set()
        for e in self.waiting:                  # oldest first
            bank = e.where.bank
            if bank in seen or not self._hits(e):
                continue
            seen.add(bank)                      # the bank's oldest row hit is its candidate
            if urgent is not None and bank == urgent.where.bank:
                continue
            if slack is not None and not self.spares(e, urgent, slack):
                continue
            if self.column_ok(e, c):
                return e
        return None

    def _row_command(self, e: _Entry, c: int, *, force: bool, hit_pending: set[int]):
        b = self.banks[e.where.bank]
        if b.open_row is None:
            return ("act", e) if self.activate_ok(e.where.bank, e.where.group, c) else None
        if b.open_row != e.where.row and (force or e.where.bank not in hit_pending):
            return ("pre", e) if self.precharge_ok(e.where.bank, c) else None
        return None

    def _pick_row(self, urgent: _Entry | None, c: int):
        oldest: dict[int, _Entry] = {}
        hit_pending: set[int] = set()
        for e in self.waiting:
            oldest.setdefault(e.where.bank, e)
            if self._hits(e):
                hit_pending.add(e.where.bank)
        if urgent is not None:
            cmd = self._row_command(urgent, c, force=True, hit_pending=hit_pending)
            if cmd is not None:
                return cmd
        for bank, e in oldest.items():          # dict order = oldest first
            if urgent is not None and bank == urgent.where.bank:
                continue
            cmd = self._row_command(e, c, force=False, hit_pending=hit_pending)
            if cmd is not None:
                return cmd
        return None

    def step(self, c: int, offered: DramRequest | None, index: int, resp_ready: bool
             ) -> tuple[bool, _Entry | None, _Entry | None]:
        """Advance one cycle ``c``. ``offered`` is the request presented on the input
        (``index`` its position), ``resp_ready`` the response sink's ready. Returns
        (input accepted, entry whose column command issued, READ entry answered)."""
        t = self.t
        self.stats.occupancy_sum += len(self.waiting)
        first = self.waiting[0] if self.waiting else None
        urgent = first if first is not None and c - first.accept >= t.age_cap else None
        if urgent is not None:
            self.stats.urgent_cycles += 1
        col = self._pick_column(urgent, c)
        row = self._pick_row(urgent, c)
        head = self.returning.get(self.head)
        answered = head if head is not None and c >= head.issued + t.read_latency \
            and resp_ready else None
        accept = offered is not None and len(self.waiting) < self.depth

        # ---- registers update at the end of the cycle ----------------------------------
        if col is not None:
            self._issue_column(col, c)
        if row is not None:
            self._issue_row(*row, c)
        if answered is not None:
            del self.returning[self.head]
            self.head += 1
        if accept:
            e = _Entry(index, offered.op, decode(t, offered.addr), c)
            if e.op == Op.READ:
                e.seq, self.next_seq = self.next_seq, self.next_seq + 1
            self.waiting.append(e)
        return accept, col, answered

    def _issue_column(self, e: _Entry, c: int) -> None:
        b, g = self.banks[e.where.bank], e.where.group
        e.issued = c
        self.waiting.remove(e)
        self.bus.col = c
        self.group_col[g] = c
        if e.op == Op.READ:
            b.rd = self.bus.rd = c
            self.returning[e.seq] = e
            self.stats.reads += 1
            return
        self.bus.wr = self.group_wr[g] = c
        if e.op == Op.UPDATE:
            b.upd = c
            self.stats.updates += 1
        else:
            b.wr = c
            self.stats.writes += 1

    def _issue_row(self, kind: str, e: _Entry, c: int) -> None:
        b, g = self.banks[e.where.bank], e.where.group
        if kind == "act":
            b.open_row, b.act = e.where.row, c
            self.bus.act = self.group_act[g] = c
            self.bus.acts = (self.bus.acts + [c])[-4:]
            self.stats.activates += 1
        else:
            b.open_row, b.pre = None, c
            self.stats.precharges += 1


def simulate(timing: DramTiming, requests: Sequence[DramRequest], *, queue_depth: int,
             resp_ready: Callable[[int], bool] | None = None, max_cycles: int = 10_000_000
             ) -> tuple[list[DramResult], DramStats]:
    """Run ``requests`` (offered in list order, each from its ``offer`` cycle) through a
    fresh controller; ``resp_ready(c)`` is the response sink's ready in cycle ``c``
    (default: always). Returns one :class:`DramResult` per request and the stats."""
    reqs = list(requests)
    for i, r in enumerate(reqs):
        if not isinstance(r.op, Op) and r.op not in tuple(Op):
            raise ConfigError(f"simulate: request {i}: op={r.op!r}: must be a contract.spec.Op")
        if not isinstance(r.addr, int) or r.addr < 0:
            raise ConfigError(f"simulate: request {i}: addr={r.addr!r}: must be a line address >= 0")
    model = DramControllerModel(timing, queue_depth=queue_depth)
    results: list[DramResult | None] = [None] * len(reqs)
    accepts: list[int] = [0] * len(reqs)
    nxt, done, c = 0, 0, 0
    while done < len(reqs):
        if c >= max_cycles:
            raise RuntimeError(f"simulate: {len(reqs) - done} requests unfinished after {c} cycles")
        offered = reqs[nxt] if nxt < len(reqs) and reqs[nxt].offer <= c else None
        accepted, issued, answered = model.step(c, offered, nxt, True if resp_ready is None
                                                else bool(resp_ready(c)))
        if accepted:
            accepts[nxt] = c
            nxt += 1
        if issued is not None and issued.op != Op.READ:
            results[issued.index] = DramResult(accepts[issued.index], c, c)
            done += 1
        if answered is not None:
            results[answered.index] = DramResult(accepts[answered.index], answered.issued, c)
            done += 1
        c += 1
    model.stats.cycles = c
    return [r for r in results if r is not None], model.stats


def peak_random_row_rate(timing: DramTiming, queue_depth: int, op: Op = Op.READ) -> float:
    """Lines per cycle the timing allows when every access (of ``op``) opens a new row in
    a random bank (one access per activation): the smallest of the ACT rate limits
    (tRRD_S, four per tFAW), the row bus (a PRE and an ACT per access), each bank's row
    cycle (tRAS + tRP over all banks) and the queue's concurrency (Little's law: a request
    holds its queue entry from its acceptance to its column command, for a row miss at
    least tRP + tRCD (tRCD_WR for a STORE or UPDATE) + 2 cycles: accepted, PRE the next
    cycle, ACT tRP later, the column command tRCD after that; the return buffer, not the
    queue, holds it until its data returns)."""
    t = timing
    rcd = t.t_rcd if op == Op.READ else t.t_rcd_wr
    bounds = [1.0 / t.t_rrd_s, 4.0 / t.t_faw, 0.5, t.banks / (t.t_ras + t.t_rp),
              queue_depth / (t.t_rp + rcd + 2), 1.0]
    return min(bounds)


# ---- request generators (tests, benches) -------------------------------------------------

def encode(timing: DramTiming, *, bank: int, row: int, col: int) -> int:
    """The line address of ``bank`` (``group * banks_per_group + bank in group``), ``row``
    and ``col`` under ``timing.mapping`` (the inverse of :func:`contract.dram.decode`)."""
    widths = timing.field_bits
    fields = {"bg": bank // timing.banks_per_group, "bank": bank % timing.banks_per_group,
              "col": col, "row": row}
    if not 0 <= bank < timing.banks or not 0 <= col < timing.row_lines or row < 0:
        raise ConfigError(f"encode: bank={bank}, row={row}, col={col}: out of range "
                          f"({timing.banks} banks, {timing.row_lines} lines per row)")
    if timing.bank_xor:       # decode XORs the folded row in: undo it
        h = row_hash(timing, row)
        fields["bg"] ^= h & (timing.bank_groups - 1)
        fields["bank"] ^= h >> widths["bg"]
    addr, shift = 0, 0
    for name in MAPPINGS[timing.mapping]:
        addr |= fields[name] << shift
        if name != "row":
            shift += widths[name]
    return addr


def rotating_random_rows(timing: DramTiming, n: int, op: Op, seed: int, *, rows: int = 1024
                         ) -> list[DramRequest]:
    """``n`` requests, each opening a random row (never the row its bank had last, so
    every access misses) in a random column, the banks taken in turn (group first), so
    the rate is bound by the timing, not by bank conflicts of a random draw."""
    rng = random.Random(seed)
    last: dict[int, int] = {}
    out = []
    for i in range(n):
        group = i % timing.bank_groups
        bank = group * timing.banks_per_group \
            + (i // timing.bank_groups) % timing.banks_per_group
        col, row = rng.randrange(timing.row_lines), rng.randrange(rows)
        while rows > 1 and row == last.get(bank):
            row = rng.randrange(rows)
        last[bank] = row
        out.append(DramRequest(op, encode(timing, bank=bank, row=row, col=col)))
    return out


def random_requests(timing: DramTiming, rng: random.Random, n: int, *, rows: int,
                    hot_rows: int = 3, hot_lines: int = 6, hot_line_prob: float = 0.25,
                    hit_prob: float = 0.6, ops: Sequence[Op] = tuple(Op),
                    gap_prob: float = 0.3, max_gap: int = 6) -> list[DramRequest]:
    """``n`` random requests of ``ops`` that mix row hits, row misses and same-line reuse:
    with probability ``hot_line_prob`` one of ``hot_lines`` fixed lines, else with
    probability ``hit_prob`` a random column of one of ``hot_rows`` (bank, row) pairs
    (mostly row hits), else a random bank, row (< ``rows``) and column. Offer cycles
    leave a random gap (1..``max_gap`` cycles) before a request with probability
    ``gap_prob``."""
    def anywhere():
        return rng.randrange(timing.banks), rng.randrange(rows)
    hot = [anywhere() for _ in range(hot_rows)]
    lines = [encode(timing, bank=b, row=r, col=rng.randrange(timing.row_lines))
             for b, r in (anywhere() for _ in range(hot_lines))]
    out, offer = [], 0
    for _ in range(n):
        if rng.random() < gap_prob:
            offer += rng.randint(1, max_gap)
        if rng.random() < hot_line_prob:
            addr = rng.choice(lines)
        else:
            bank, row = rng.choice(hot) if rng.random() < hit_prob else anywhere()
            addr = encode(timing, bank=bank, row=row, col=rng.randrange(timing.row_lines))
        out.append(DramRequest(rng.choice(list(ops)), addr, offer))
    return out
