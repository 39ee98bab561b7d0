"""DRAM memory controller: FR-FCFS scheduling over the banks of one HBM2 pseudo-channel.

:class:`DramController` sits where the plain memory queue was: it holds up to
``cfg.mem_queue_depth`` requests, schedules row commands (ACT, PRE) and column commands
(RD, WR, UPD) under the timing of :class:`contract.dram.DramTiming`, and hands each
request to a :class:`hw.nmc.ComputeMemory` (storage + near-memory ALU) in the cycle of
its column command. It is cycle-exact with :class:`sim_models.dram.DramControllerModel`,
whose module docstring is the specification (one cycle, decisions on the registered
state at its start); docs/memory.md describes the timing set, the mapping and the cost.

Structure (Q = queue depth, one row and one column command per cycle)::

    req ─► waiting table (collapsing: position = age order, 0 = oldest)
             │  per entry: op, addr (-> bank/group/row), payload slot, age, read seq
             │  payload store (mask, data) indexed by slot
             ▼
    per entry: row hit? bank's oldest hit? bank's oldest? timing ok?      ┐ all from
    per bank / group / channel: timing down-counters -> RD/WR/ACT/PRE ok  ┘ registers
             ▼
    column picker (oldest ready candidate) ──► ComputeMemory.req (same cycle)
    row picker    (oldest ready ACT/PRE)   ──► bank state (open row)
             ▼
    ComputeMemory.resp ─► return buffer (slot = read seq mod slots) ─► resp, in order,
                          once t_cl + 1 cycles have passed since the RD

Every decision of a cycle depends only on registers (the waiting table, the bank state,
the timing counters, the return state); its effects are registered at the cycle's end.
Same-line requests share bank and row, and a bank's column candidate is its oldest row
hit, so they issue in arrival order: the memory contents are those of the in-order model
(:class:`sim_models.nmc_model.ComputeMemoryModel`). ComputeMemory never stalls: a bank
takes no column command for ``t_rmw >= fp_adder_stages`` cycles after an UPDATE (its
same-line UPDATE hazard), and its READ credits cover one READ per cycle.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from contract import latency
from contract.dram import MAPPINGS, DramTiming
from contract.dram_bounds import return_slots, starvation_bound, urgent_service_bound
from contract.spec import COUNTER_BITS, OP_BITS, ConfigError, T3Config

from . import designs, layouts
from .component import T3Component, check_cfg
from .layouts import Op
from .nmc import ComputeMemory

__all__ = ["DramController", "issue_probe", "row_probe"]


def issue_probe(cfg: T3Config) -> data.StructLayout:
    """The column-command probe: ``position`` is the issued request's place in the age
    order of the waiting requests (0 = the oldest), ``op`` its opcode."""
    return data.StructLayout({"valid": 1, "position": range(cfg.mem_queue_depth),
                              "op": Op})


def row_probe(timing: DramTiming) -> data.StructLayout:
    """The row-command probe: ``act`` 1 = ACT, 0 = PRE, of bank ``bank``
    (``group * banks_per_group + bank in group``)."""
    return data.StructLayout({"valid": 1, "act": 1, "bank": range(timing.banks)})


def _bits(n: int) -> int:
    """Bits of an index into ``n`` things (at least 1)."""
    return max(1, (n - 1).bit_length())


def _first(m: Module, reqs: list, name: str) -> list:
    """Priority pick: one-hot signals of the lowest-index true request (each a flat
    AND with the NOR of the requests before it: one logic level)."""
    out = []
    for i, r in enumerate(reqs):
        win = Signal(name=f"{name}{i}")
        m.d.comb += win.eq(r & ~Cat(*reqs[:i]).any() if i else r)
        out.append(win)
    return out


def _onehot_select(onehot: list, values: list, width: int) -> Value:
    """AND-OR multiplexer: the value whose one-hot bit is set (0 when none is)."""
    acc = Const(0, width)
    for sel, v in zip(onehot, values):
        acc = acc | Mux(sel, v, 0)
    return acc


def _index(values: list, idx: Value) -> Value:
    """``values[idx]`` as a tree of 2:1 multiplexers on the bits of ``idx`` (an index
    past the end gives the last value)."""
    level = list(values)
    for k in range(len(idx)):
        level = [Mux(idx[k], level[min(j + 1, len(level) - 1)], level[j])
                 for j in range(0, len(level), 2)]
    return level[0]


def _encode(onehot: list, width: int) -> Value:
    return _onehot_select(onehot, [Const(i, width) for i in range(len(onehot))], width)


class _Wait:
    """Down-counter for "``c >= last + t``" constraints: loaded with ``t - 1`` (the
    larger of that and what is left) at an event, decremented every cycle; the commands
    it holds back may issue while it is 0. Counters never loaded above 0 are constant."""

    def __init__(self, name: str, *ts: int):
        self.top = max([t - 1 for t in ts] + [0])
        self.cnt = Signal(range(self.top + 1), name=name) if self.top else None
        self.ok = (self.cnt == 0) if self.top else Const(1)

    def update(self, m: Module, events: list) -> None:
        """``events``: ``(condition, t)`` pairs of this cycle, at most one of them true
        (a counter watches one bank, group or channel, which takes at most one row and
        one column command per cycle, and never both: a row command needs the bank
        closed or missed, a column command a hit)."""
        if not self.top:
            return
        dec = Signal.like(self.cnt, name=f"{self.cnt.name}_dec")
        m.d.comb += dec.eq(Mux(self.cnt == 0, 0, self.cnt - 1))
        nxt = dec
        for cond, t in reversed(events):
            if t > 1:
                nxt = Mux(cond, Mux(dec < t - 1, t - 1, dec), nxt)
        m.d.sync += self.cnt.eq(nxt)


class DramController(T3Component):
    """DRAM controller with FR-FCFS scheduling, an age cap and in-order READ responses.

    Requests are accepted while fewer than ``cfg.mem_queue_depth`` wait for their column
    command. Each cycle at most one row command (ACT/PRE) and one column command
    (RD/WR/UPD) issue; the column command hands the request to the internal
    :class:`hw.nmc.ComputeMemory` in the same cycle. READ data returns through a buffer of
    :attr:`return_slots` lines and leaves on ``resp`` in acceptance order, at the earliest
    ``t_cl + 1`` cycles after its RD. Cycle-exact with
    :class:`sim_models.dram.DramControllerModel` (its docstring has the rules).

    Parameters (keyword-only)
    ----------
    cfg : T3Config
        ``mem_queue_depth`` (the waiting table), ``mem_depth_lines`` and the line format
        (ComputeMemory), ``fp_adder_stages``.
    timing : DramTiming
        Banks, address mapping, timing in cycles, age cap. It must satisfy
        ``timing.read_latency >= contract.latency.compute_memory(cfg)`` (READ data is back
        before its response is due) and ``timing.t_rmw >= cfg.fp_adder_stages`` (an
        UPDATE's bank is held until ComputeMemory's same-line UPDATE hazard is over);
        otherwise :class:`contract.spec.ConfigError`.

    Attributes
    ----------
    req : In(stream.Signature(hw.layouts.memory_request(cfg)))
        Requests ``{op, addr, mask, data}``; ``ready`` depends on registers only.
        An invalid op (3) is scheduled like a STORE and dropped by ComputeMemory
        (``mem_error``).
    resp : Out(stream.Signature(hw.layouts.memory_response(cfg)))
        One ``{data}`` per READ, in acceptance order.
    occupancy : Out(range(cfg.mem_queue_depth + 1))
        Requests waiting for their column command (what the MCA arbiter watches).
    activates, precharges, reads, writes, updates : Out(COUNTER_BITS)
        Commands issued (wrapping). ``writes`` counts WR commands (STOREs and invalid ops).
    urgent_cycles : Out(COUNTER_BITS)
        Cycles in which the oldest request was urgent (waited ``age_cap`` or more).
    occupancy_sum : Out(COUNTER_BITS)
        Sum of ``occupancy`` over all cycles (mean occupancy = / cycles).
    busy : Out(1)
        A request waits, a READ is unanswered, or ComputeMemory is busy.
    error : Out(1)
        Sticky: ComputeMemory refused an issued request, or its READ data did not arrive
        when expected. Impossible by construction (the tests and the formal harness
        check it stays 0).
    mem_error, mem_error_op, mem_error_addr : Out(1), Out(2), Out(cfg.addr_bits)
        ComputeMemory's ``error`` / ``error_op`` / ``error_addr`` (invalid op or address).
    issue : Out(issue_probe(cfg))
        Probe of this cycle's column command: ``valid``, ``position`` (the request's place
        in the age order of the waiting requests, 0 = oldest), ``op``.
    row_cmd : Out(row_probe(timing))
        Probe of this cycle's row command: ``valid``, ``act`` (1 ACT, 0 PRE), ``bank``.
    """

    def __init__(self, *, cfg: T3Config, timing: DramTiming):
        cfg = check_cfg("DramController", cfg)
        if not isinstance(timing, DramTiming):
            raise ConfigError(f"DramController: timing={timing!r}: must be a "
                              "contract.dram.DramTiming")
        need = latency.compute_memory(cfg)
        if timing.read_latency < need:
            raise ConfigError(
                f"DramController: timing.read_latency={timing.read_latency} (t_cl + 1): must "
                f"be >= {need}, ComputeMemory's READ latency (fp_adder_stages + 2), so READ "
                "data is back before its response is due")
        if timing.t_rmw < cfg.fp_adder_stages:
            raise ConfigError(
                f"DramController: timing.t_rmw={timing.t_rmw}: must be >= "
                f"cfg.fp_adder_stages={cfg.fp_adder_stages}, so ComputeMemory's same-line "
                "UPDATE hazard never stalls an issued UPDATE")
        self._timing = timing
        super().__init__(cfg, {
            "req": In(stream.Signature(layouts.memory_request(cfg))),
            "resp": Out(stream.Signature(layouts.memory_response(cfg))),
            "occupancy": Out(range(cfg.mem_queue_depth + 1)),
            **{name: Out(COUNTER_BITS) for name in self.COUNTERS},
            "busy": Out(1),
            "error": Out(1),
            "mem_error": Out(1),
            "mem_error_op": Out(OP_BITS),
            "mem_error_addr": Out(cfg.addr_bits),
            "issue": Out(issue_probe(cfg)),
            "row_cmd": Out(row_probe(timing)),
        })
        # the registers, built here so that a harness can name them before elaboration
        self._state = _State(self)

    #: the event counters, in the order of the model's DramStats
    COUNTERS = ("activates", "precharges", "reads", "writes", "updates", "urgent_cycles",
                "occupancy_sum")

    # ---- derived values --------------------------------------------------------------
    @property
    def timing(self) -> DramTiming:
        return self._timing

    @property
    def queue_depth(self) -> int:
        """Requests the waiting table holds (``cfg.mem_queue_depth``)."""
        return self.cfg.mem_queue_depth

    @property
    def return_slots(self) -> int:
        """Lines of the READ return buffer (:func:`contract.dram_bounds.return_slots`)."""
        return return_slots(self._timing, self.queue_depth)

    @property
    def latency(self) -> int:
        """Cycles from a READ's acceptance to its response when its row is open and the
        controller idle: the column command the next cycle, then ``t_cl + 1``."""
        return 1 + self._timing.read_latency

    @property
    def miss_latency(self) -> int:
        """The same for a READ to a closed bank: ACT the next cycle, RD ``t_rcd`` later."""
        return 1 + self._timing.t_rcd + self._timing.read_latency

    @property
    def starvation_bound(self) -> int:
        """Cycles from acceptance to the column command, at most, with ``resp.ready``
        always high (:func:`contract.dram_bounds.starvation_bound`)."""
        return starvation_bound(self._timing, self.queue_depth)

    @property
    def urgent_service_bound(self) -> int:
        """Cycles from the oldest request turning urgent to its column command, at most."""
        return urgent_service_bound(self._timing)

    @property
    def max_reads_outstanding(self) -> int:
        """READs accepted and not yet answered, at most: a full table plus a full return
        buffer (what a response router in front must be able to tag)."""
        return self.queue_depth + self.return_slots

    @property
    def return_buffer_bits(self) -> int:
        return self.return_slots * self.cfg.line_bits

    @property
    def payload_store_bits(self) -> int:
        """Mask and data of the waiting requests (the waiting table's wide part)."""
        return self.queue_depth * (self.cfg.lanes + self.cfg.line_bits)

    @property
    def storage_bits(self) -> int:
        """Line storage of the memory itself (ComputeMemory's)."""
        return self.cfg.mem_depth_lines * self.cfg.line_bits

    # ---- address fields --------------------------------------------------------------
    @property
    def _field_shifts(self) -> dict[str, tuple[int, int]]:
        """(shift, width) of each address field, the row last (at least 1 bit wide)."""
        widths = self._timing.field_bits
        out, shift = {}, 0
        for name in MAPPINGS[self._timing.mapping]:
            if name != "row":
                out[name] = (shift, widths[name])
                shift += widths[name]
        out["row"] = (shift, max(1, self.cfg.addr_bits - shift))
        return out

    def _fields(self, addr: Value) -> tuple[Value, Value, Value]:
        """(bank, group, row) of a line address, by ``timing.mapping``."""
        f = self._field_shifts
        padded = Cat(addr, Const(0, f["row"][0] + f["row"][1]))

        def get(name):
            shift, width = f[name]
            return padded[shift:shift + width]
        bg, bank, row = get("bg"), get("bank"), get("row")
        w = len(bg) + len(bank)
        if self._timing.bank_xor and w:   # contract.dram.row_hash: the folded row XORed in
            h = Const(0, w)
            for lo in range(0, len(row), w):
                h = h ^ row[lo:lo + w]
            bg, bank = bg ^ h[:len(bg)], bank ^ h[len(bg):]
        return Cat(bank, bg), bg, row

    # ---- design decisions a broken variant overrides (verif/formal/dram.py) ----------
    def _urgent(self, oldest) -> Value:
        """The age cap: the oldest waiting request (table entry ``oldest``) is urgent
        once it has waited ``age_cap`` cycles (its age saturates there)."""
        return oldest.valid & (oldest.age >= self._timing.age_cap)

    def _memory(self) -> ComputeMemory:
        """The storage + ALU the column commands hand their requests to. The schedule
        never looks at it (its ``ready`` and responses only feed ``error`` and the READ
        data), so the formal harness of the schedule replaces it by a stub."""
        return ComputeMemory(cfg=self.cfg)

    def _column_candidate(self, hit, older_hit) -> Value:
        """A request is its bank's column candidate when it hits the open row and no
        older request of the bank does (same-line requests thus issue in order)."""
        return hit & ~older_hit

    def _activate_to_read(self) -> int:
        """Cycles from an ACT to the first READ of its bank: ``t_rcd``."""
        return self._timing.t_rcd

    # ---- hardware --------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        m.submodules.memory = mem = self._memory()
        st = self._state
        m.submodules.payload_store = st.payload
        m.submodules.return_buffer = st.retbuf

        def part(name: str) -> Module:
            # one submodule per part: a simulator re-evaluates only the parts whose
            # inputs changed, and the parts follow the logic levels of a cycle
            m.submodules[name] = sub = Module()
            return sub
        self._entry_flags(part("entries"), st)
        self._pickers(part("pickers"), part("winners"), st)
        self._issue(part("issue"), st, mem)
        self._row_state(part("row_state"), st)
        self._timing_counters(part("timing"), st)
        self._table(part("table"), st)
        self._returns(part("returns"), st, mem)
        self._status(part("status"), st, mem)
        return m

    def _entry_flags(self, m: Module, st: "_State") -> None:
        """Per waiting entry, from the registers: its bank open, a row hit, same bank as
        each older entry; the age cap."""
        Q, q = self.queue_depth, st.q
        fields = [self._fields(e.addr) for e in q]
        st.bank = [f[0] for f in fields]          # address slices: no logic
        st.row = [f[2] for f in fields]
        st.hit = [Signal(name=f"hit{i}") for i in range(Q)]
        st.is_open = [Signal(name=f"open{i}") for i in range(Q)]
        for i, e in enumerate(q):
            bank_open = st.open.bit_select(st.bank[i], 1)
            m.d.comb += [st.is_open[i].eq(bank_open),
                         st.hit[i].eq(e.valid & bank_open
                                      & (_index(st.open_row, st.bank[i]) == st.row[i]))]
        # same[i][j], j < i: entries i and j are in the same bank
        st.same = [[Signal(name=f"same{i}_{j}") for j in range(i)] for i in range(Q)]
        for i in range(Q):
            for j in range(i):
                m.d.comb += st.same[i][j].eq(st.bank[i] == st.bank[j])
        m.d.comb += st.urgent.eq(self._urgent(q[0]))

    def _pickers(self, m: Module, winners: Module, st: "_State") -> None:
        """FR-FCFS: the column request of each bank's oldest row hit whose timing allows
        it, the row request (ACT/PRE) of each bank's oldest entry; the oldest of each
        wins (``winners``: the priority encoders)."""
        Q, q, hit, same, urgent = self.queue_depth, st.q, st.hit, st.same, st.urgent
        slack = self._urgent_slack(m, st)
        col_req = [Signal(name=f"col_req{i}") for i in range(Q)]
        row_req = [Signal(name=f"row_req{i}") for i in range(Q)]
        for i, e in enumerate(q):
            older_hit = Cat(*(hit[j] & same[i][j] for j in range(i))).any() if i else Const(0)
            ok = Mux(e.op == Op.READ,
                     st.rd_ok.bit_select(st.bank[i], 1) & self._slot_free(st, e),
                     st.wr_ok.bit_select(st.bank[i], 1))
            # the urgent entry's bank is reserved for it; once it hits, only commands
            # that do not delay its own may issue (DramControllerModel.spares)
            allowed = Const(1) if i == 0 else \
                ~(urgent & (same[i][0] | hit[0] & ~self._spares_urgent(st, i, slack)))
            m.d.comb += col_req[i].eq(self._column_candidate(hit[i], older_hit) & ok & allowed)

            first = e.valid & ~Cat(*same[i]).any() if i else e.valid
            pending = Cat(*(hit[j] & same[j][i] for j in range(i + 1, Q))).any() \
                if i + 1 < Q else Const(0)
            force = urgent if i == 0 else Const(0)
            is_open = st.is_open[i]
            act = first & ~is_open & st.act_ok.bit_select(st.bank[i], 1)
            pre = first & is_open & ~hit[i] & (force | ~pending) \
                & st.pre_ok.bit_select(st.bank[i], 1)
            m.d.comb += row_req[i].eq(act | pre)
        st.col_win = _first(winners, col_req, "col_win")
        st.row_win = _first(winners, row_req, "row_win")
        st.row_is_act = [~o for o in st.is_open]

    def _group(self, bank: Value) -> Value:
        """Bank group of a bank index (its high bits)."""
        return bank[_log2(self._timing.banks_per_group):]

    def _urgent_slack(self, m: Module, st: "_State") -> Signal:
        """Cycles until the column timing allows the oldest entry (0: now, or a READ
        without a free return slot): the largest of its bank's, its group's and the
        channel's timing counters that hold its kind of command back."""
        e, bank = st.q[0], st.bank[0]
        group = self._group(bank)

        def at(kind: str, table: list, idx: Value) -> list:
            # a counter never loaded above 0 is constant 0: no term
            return [_index([x[kind].cnt for x in table], idx)] if table[0][kind].top else []

        def one(w: _Wait) -> list:
            return [w.cnt] if w.top else []

        def largest(values: list) -> Value:
            acc = values[0] if values else Const(0, 1)
            for v in values[1:]:
                acc = Mux(v > acc, v, acc)
            return acc

        ch = st.channel
        common = [*at("col", st.groups, group), *one(ch["col"])]
        rd = largest([*at("rd", st.banks, bank), *at("rd", st.groups, group), *one(ch["rd"]),
                      *common])
        wr = largest([*at("wr", st.banks, bank), *one(ch["wr"]), *common])
        waits = [*st.banks[0].values(), *st.groups[0].values(), *ch.values()]
        slack = Signal(range(max(w.top for w in waits) + 1), name="urgent_slack")
        m.d.comb += slack.eq(Mux(e.op == Op.READ, Mux(self._slot_free(st, e), rd, 0), wr))
        return slack

    def _slot_free(self, st: "_State", e) -> Value:
        """A READ entry ``e`` has its return slot: ``seq - head < return_slots``."""
        return (e.seq - st.head)[:len(st.head)] < self.return_slots

    def _spares_urgent(self, st: "_State", i: int, slack: Value) -> Value:
        """Entry ``i``'s column command now would not delay the oldest entry's: every
        constraint it starts on it (command spacing, bus turnaround) ends within
        ``slack`` cycles (sim_models.dram.DramControllerModel.spares)."""
        t, q = self._timing, st.q
        same_group = self._group(st.bank[i]) == self._group(st.bank[0])
        i_rd, u_rd = q[i].op == Op.READ, q[0].op == Op.READ

        def fits(cycles: int) -> Value:
            return Const(cycles) <= slack
        turnaround = Mux(i_rd, u_rd | fits(t.t_rtw),
                         ~u_rd | Mux(same_group, fits(t.write_to_read_same),
                                     fits(t.write_to_read_other)))
        return fits(t.t_ccd_s) & (~same_group | fits(t.t_ccd_l)) & turnaround

    def _issue(self, m: Module, st: "_State", mem: ComputeMemory) -> None:
        """The column command: the picked entry goes to ComputeMemory this cycle."""
        q, win = st.q, st.col_win
        bb = _bits(self._timing.banks)
        ab = len(q[0].addr)
        sel_op = _onehot_select(win, [e.op.as_value() for e in q], OP_BITS)
        sel_addr = _onehot_select(win, [e.addr for e in q], ab)
        sel_slot = _onehot_select(win, [e.slot for e in q], len(q[0].slot))
        rd_port = st.payload_rd
        m.d.comb += [
            st.col_fire.eq(Cat(*win).any()),
            st.col_op.eq(sel_op),
            st.col_slot.eq(sel_slot),
            st.col_bank.eq(_onehot_select(win, st.bank, bb)),
            rd_port.addr.eq(sel_slot),
            mem.req.valid.eq(st.col_fire),
            mem.req.payload.op.eq(st.col_op),
            st.col_seq.eq(_onehot_select(win, [e.seq for e in q], len(st.col_seq))),
            mem.req.payload.addr.eq(sel_addr),
            mem.req.payload.mask.eq(rd_port.data.mask),
            mem.req.payload.data.eq(rd_port.data.data),
            self.issue.valid.eq(st.col_fire),
            self.issue.position.eq(_encode(win, len(self.issue.position))),
            self.issue.op.eq(st.col_op),
        ]
        is_read = st.col_op == Op.READ
        is_update = st.col_op == Op.UPDATE
        m.d.comb += [st.rd.eq(st.col_fire & is_read), st.upd.eq(st.col_fire & is_update),
                     st.wr.eq(st.col_fire & ~is_read & ~is_update)]

    def _row_state(self, m: Module, st: "_State") -> None:
        """The row command: open (ACT) or close (PRE) the picked entry's bank."""
        q, win = st.q, st.row_win
        bb = _bits(self._timing.banks)
        row_w = len(st.open_row[0])
        act = Signal()
        m.d.comb += [
            st.row_fire.eq(Cat(*win).any()),
            act.eq(_onehot_select(win, st.row_is_act, 1)),
            st.act.eq(st.row_fire & act),
            st.pre.eq(st.row_fire & ~act),
            st.row_bank.eq(_onehot_select(win, st.bank, bb)),
            self.row_cmd.valid.eq(st.row_fire),
            self.row_cmd.act.eq(act),
            self.row_cmd.bank.eq(st.row_bank),
        ]
        new_row = _onehot_select(win, st.row, row_w)
        for b in range(self._timing.banks):
            with m.If(st.act & (st.row_bank == b)):
                m.d.sync += [st.open[b].eq(1), st.open_row[b].eq(new_row)]
            with m.If(st.pre & (st.row_bank == b)):
                m.d.sync += st.open[b].eq(0)

    def _timing_counters(self, m: Module, st: "_State") -> None:
        """Update every timing counter with this cycle's commands; the per-bank ok flags
        the next cycle's decisions read."""
        t = self._timing
        wr_like = st.wr | st.upd
        col_group = st.col_bank >> _log2(t.banks_per_group)
        row_group = st.row_bank >> _log2(t.banks_per_group)
        for b, bank in enumerate(st.banks):
            act, pre = st.act & (st.row_bank == b), st.pre & (st.row_bank == b)
            here = st.col_bank == b
            rd, wr, upd = st.rd & here, st.wr & here, st.upd & here
            bank["rd"].update(m, [(act, self._activate_to_read()), (upd, t.t_rmw)])
            bank["wr"].update(m, [(act, t.t_rcd_wr), (upd, t.t_rmw)])
            bank["pre"].update(m, [(act, t.t_ras), (rd, t.t_rtp), (wr, t.write_to_precharge),
                                   (upd, t.update_to_precharge)])
            bank["act"].update(m, [(pre, t.t_rp)])
        for g, group in enumerate(st.groups):
            group["col"].update(m, [(st.col_fire & (col_group == g), t.t_ccd_l)])
            group["rd"].update(m, [(wr_like & (col_group == g), t.write_to_read_same)])
            group["act"].update(m, [(st.act & (row_group == g), t.t_rrd_l)])
        ch = st.channel
        ch["col"].update(m, [(st.col_fire, t.t_ccd_s)])
        ch["rd"].update(m, [(wr_like, t.write_to_read_other)])
        ch["wr"].update(m, [(st.rd, t.t_rtw)])
        ch["act"].update(m, [(st.act, t.t_rrd_s)])
        # four-activate window: the last four ACTs' remaining window, newest first
        faw = st.faw
        for k, w in enumerate(faw if faw[0].top else []):
            prev = Const(t.t_faw - 1) if k == 0 else faw[k - 1].cnt
            dec = Mux(w.cnt == 0, 0, w.cnt - 1)
            prev_dec = prev if k == 0 else Mux(prev == 0, 0, prev - 1)
            m.d.sync += w.cnt.eq(Mux(st.act, prev_dec, dec))

        # ok flags of the next cycle's decisions, one bit per bank
        for b, bank in enumerate(st.banks):
            g = st.groups[b // t.banks_per_group]
            m.d.comb += [
                st.rd_ok[b].eq(bank["rd"].ok & g["col"].ok & g["rd"].ok & ch["col"].ok
                               & ch["rd"].ok),
                st.wr_ok[b].eq(bank["wr"].ok & g["col"].ok & ch["col"].ok & ch["wr"].ok),
                st.act_ok[b].eq(bank["act"].ok & g["act"].ok & ch["act"].ok & faw[-1].ok),
                st.pre_ok[b].eq(bank["pre"].ok),
            ]

    def _table(self, m: Module, st: "_State") -> None:
        """The waiting table: accept at the tail, remove the issued entry (the younger
        ones move up one place), age every entry; the payload store and its free list."""
        Q, cap = self.queue_depth, self._timing.age_cap
        q, win = st.q, st.col_win
        accept = Signal()
        m.d.comb += [self.req.ready.eq(~q[-1].valid), accept.eq(self.req.valid & self.req.ready),
                     self.occupancy.eq(st.count)]
        # lowest free payload slot
        free_onehot = _first(m, [st.free[s] for s in range(Q)], "alloc")
        alloc = _encode(free_onehot, len(q[0].slot))
        wr = st.payload_wr
        m.d.comb += [wr.addr.eq(alloc), wr.en.eq(accept),
                     wr.data.mask.eq(self.req.payload.mask), wr.data.data.eq(self.req.payload.data)]
        freed = Mux(st.col_fire, Const(1, Q) << st.col_slot, 0)[:Q]
        taken = Mux(accept, Cat(*free_onehot), 0)
        m.d.sync += st.free.eq((st.free | freed) & ~taken)

        tail = Signal(range(Q + 1))
        m.d.comb += tail.eq(st.count - st.col_fire)
        m.d.sync += st.count.eq(tail + accept)
        is_read = self.req.payload.op == Op.READ
        with m.If(accept & is_read):
            m.d.sync += st.next_seq.eq(st.next_seq + 1)

        for i in range(Q):
            shift = Signal(name=f"shift{i}")      # an older entry issued: move up one
            m.d.comb += shift.eq(Cat(*win[:i + 1]).any())
            nxt = q[i + 1] if i + 1 < Q else None
            cur = q[i]

            def pick(field):
                here = Value.cast(getattr(cur, field))
                there = Value.cast(getattr(nxt, field)) if nxt is not None else 0
                return Mux(shift, there, here)
            age = pick("age")
            with m.If(accept & (tail == i)):
                m.d.sync += [cur.valid.eq(1), cur.op.eq(self.req.payload.op),
                             cur.addr.eq(self.req.payload.addr), cur.slot.eq(alloc),
                             cur.age.eq(1), cur.seq.eq(st.next_seq)]
            with m.Else():
                m.d.sync += [cur.valid.eq(pick("valid")), cur.op.eq(pick("op")),
                             cur.addr.eq(pick("addr")), cur.slot.eq(pick("slot")),
                             cur.age.eq(Mux(age == cap, age, age + 1)), cur.seq.eq(pick("seq"))]

    def _returns(self, m: Module, st: "_State", mem: ComputeMemory) -> None:
        """READ returns: a delay line from the RD (slot), ComputeMemory's data into the
        return buffer, the due flags, and the response of the oldest unanswered READ."""
        t = self._timing
        chain, slot_bits = st.chain, _log2(self.return_slots)
        m.d.sync += [chain[0].valid.eq(st.rd), chain[0].slot.eq(st.col_seq[:slot_bits])]
        for k in range(1, len(chain)):
            m.d.sync += chain[k].eq(chain[k - 1])
        arrive = chain[latency.compute_memory(self.cfg) - 1]   # its data is on mem.resp
        due = chain[t.read_latency - 2]       # its response may leave from next cycle
        wport, rport = st.retbuf_wr, st.retbuf_rd
        head_slot = st.head[:slot_bits]
        m.d.comb += [
            mem.resp.ready.eq(1),
            wport.addr.eq(arrive.slot), wport.data.eq(mem.resp.payload.data),
            wport.en.eq(mem.resp.valid),
            rport.addr.eq(head_slot),
            self.resp.valid.eq(st.due.bit_select(head_slot, 1)),
            self.resp.payload.data.eq(Mux(mem.resp.valid & (arrive.slot == head_slot),
                                          mem.resp.payload.data, rport.data)),
        ]
        answered = self.resp.valid & self.resp.ready
        with m.If(answered):
            m.d.sync += st.head.eq(st.head + 1)
        slots = self.return_slots
        cleared = Mux(answered, Const(1, slots) << head_slot, 0)[:slots]
        set_ = Mux(due.valid, Const(1, slots) << due.slot, 0)[:slots]
        m.d.sync += st.due.eq((st.due & ~cleared) | set_)
        m.d.comb += st.data_mismatch.eq(mem.resp.valid != arrive.valid)

    def _status(self, m: Module, st: "_State", mem: ComputeMemory) -> None:
        """Counters, busy, errors."""
        with m.If((mem.req.valid & ~mem.req.ready) | st.data_mismatch):
            m.d.sync += self.error.eq(1)
        m.d.comb += [self.mem_error.eq(mem.error), self.mem_error_op.eq(mem.error_op),
                     self.mem_error_addr.eq(mem.error_addr),
                     self.busy.eq((st.count != 0) | (st.head != st.next_seq) | mem.busy)]
        for name, inc in (("activates", st.act), ("precharges", st.pre), ("reads", st.rd),
                          ("writes", st.wr), ("updates", st.upd),
                          ("urgent_cycles", st.urgent), ("occupancy_sum", st.count)):
            ctr = getattr(self, name)
            m.d.sync += ctr.eq(ctr + inc)


def _log2(n: int) -> int:
    return (n - 1).bit_length()


class _State:
    """The controller's registers and the named wires between its parts."""

    def __init__(self, ctl: DramController):
        t, cfg, Q = ctl.timing, ctl.cfg, ctl.queue_depth
        slots = ctl.return_slots
        self.seq_bits = _log2(slots) + 1          # seq - head < 2 * slots always
        row_w = ctl._field_shifts["row"][1]
        entry = data.StructLayout({
            "valid": 1, "op": Op, "addr": cfg.addr_bits, "slot": range(Q),
            "age": range(t.age_cap + 1), "seq": self.seq_bits})
        # waiting table (position = age order) and its payload store
        self.q = [Signal(entry, name=f"q{i}") for i in range(Q)]
        self.count = Signal(range(Q + 1))
        self.free = Signal(Q, init=(1 << Q) - 1)
        self.payload = Memory(shape=data.StructLayout({"mask": cfg.lanes,
                                                       "data": cfg.line_bits}),
                              depth=Q, init=[])
        self.payload_wr = self.payload.write_port()
        self.payload_rd = self.payload.read_port(domain="comb")
        # banks: open row and timing
        self.open = Signal(t.banks)
        self.open_row = [Signal(row_w, name=f"open_row{b}") for b in range(t.banks)]
        self.banks = [{"rd": _Wait(f"b{b}_rd_wait", t.t_rcd, t.t_rmw),
                       "wr": _Wait(f"b{b}_wr_wait", t.t_rcd_wr, t.t_rmw),
                       "pre": _Wait(f"b{b}_pre_wait", t.t_ras, t.t_rtp, t.write_to_precharge,
                                    t.update_to_precharge),
                       "act": _Wait(f"b{b}_act_wait", t.t_rp)} for b in range(t.banks)]
        self.groups = [{"col": _Wait(f"g{g}_col_wait", t.t_ccd_l),
                        "rd": _Wait(f"g{g}_rd_wait", t.write_to_read_same),
                        "act": _Wait(f"g{g}_act_wait", t.t_rrd_l)} for g in range(t.bank_groups)]
        self.channel = {"col": _Wait("col_wait", t.t_ccd_s),
                        "rd": _Wait("rd_wait", t.write_to_read_other),
                        "wr": _Wait("wr_wait", t.t_rtw),
                        "act": _Wait("act_wait", t.t_rrd_s)}
        self.faw = [_Wait(f"faw{k}", t.t_faw) for k in range(4)]
        self.rd_ok, self.wr_ok = Signal(t.banks), Signal(t.banks)
        self.act_ok, self.pre_ok = Signal(t.banks), Signal(t.banks)
        # this cycle's commands
        self.urgent = Signal()
        self.col_fire, self.col_op = Signal(), Signal(Op)
        self.col_slot = Signal(range(Q))
        self.col_seq = Signal(self.seq_bits)
        self.col_bank = Signal(range(t.banks))
        self.rd, self.wr, self.upd = Signal(), Signal(), Signal()
        self.row_fire, self.act, self.pre = Signal(), Signal(), Signal()
        self.row_bank = Signal(range(t.banks))
        # READ returns
        self.next_seq = Signal(self.seq_bits)
        self.head = Signal(self.seq_bits)
        self.due = Signal(slots)
        self.data_mismatch = Signal()      # ComputeMemory's READ data not when expected
        depth = max(t.read_latency - 1, latency.compute_memory(cfg))
        self.chain = [Signal(data.StructLayout({"valid": 1, "slot": _log2(slots)}),
                             name=f"ret{k}") for k in range(depth)]
        self.retbuf = Memory(shape=unsigned(cfg.line_bits), depth=slots, init=[])
        self.retbuf_wr = self.retbuf.write_port()
        self.retbuf_rd = self.retbuf.read_port(domain="comb")


designs.register("t3_dram_controller",
                 lambda cfg: DramController(cfg=cfg, timing=cfg.dram))
