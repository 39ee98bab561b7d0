"""Compute-enhanced memory: line storage plus a near-memory ALU next to the DRAM banks.

:class:`ComputeMemory` executes READ, STORE and UPDATE requests (:class:`contract.spec.Op`)
on ``cfg.mem_depth_lines`` lines of ``cfg.lanes`` elements, in program order, one request
per cycle. UPDATE is an atomic read-add-write per line done by :class:`NearMemoryAlu`
(one :class:`hw.fp.FloatAdder` per lane). The golden model is
:class:`sim_models.nmc_model.ComputeMemoryModel`; docs/nmc.md has the pipeline diagram,
the forwarding scheme and the one hazard that costs bubbles.

Pipeline (L = ``cfg.fp_adder_stages``; stage registers ``s[0]`` .. ``s[L]``)::

    accept  req fires; storage read port addressed (transparent to this cycle's write)
    s[0]    "A": operand = storage data, forwarded from the write in s[L] and from
            STOREs in s[1..L-1]; the ALU starts the UPDATE
    s[1..L-1]  in the ALU; a READ's line snoops the write in s[L] every cycle
    s[L]    "W": STORE/UPDATE write the masked lanes; a READ pushes its line into the
            response FIFO

Nothing stalls after acceptance (the FloatAdder has no enable), so the only stalls are
at ``req``: an UPDATE is held while an older UPDATE to the same line whose mask overlaps
is still in ``s[0..L-2]`` (its sum is not computed yet), and a READ is held while the
response FIFO has no free credit.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from contract.spec import OP_BITS, ConfigError, Op, T3Config

from . import designs, layouts
from .fp import FloatAdder

__all__ = ["NearMemoryAlu", "ComputeMemory"]


def _merge_lanes(base, new, sel, *, elem_bits: int, lanes: int) -> Value:
    """Per lane ``i``: ``new[i]`` where ``sel[i]`` else ``base[i]`` (lines of ``lanes``
    elements of ``elem_bits``)."""
    base, new, sel = Value.cast(base), Value.cast(new), Value.cast(sel)
    return Cat(*(Mux(sel[i], new[i * elem_bits:(i + 1) * elem_bits],
                     base[i * elem_bits:(i + 1) * elem_bits]) for i in range(lanes)))


class NearMemoryAlu(wiring.Component):
    """The near-memory ALU: ``result = a + b`` lane by lane, ``latency`` cycles later.

    One :class:`hw.fp.FloatAdder` of ``cfg.dtype`` with ``cfg.fp_adder_stages`` stages per
    lane; fully pipelined (one line per cycle), never stalls.

    Ports
    -----
    a, b : In(cfg.line_bits)     raw lines (lane ``i`` = bits ``[i*elem_bits, (i+1)*elem_bits)``)
    valid : In(1)                ``a``/``b`` hold an addition this cycle
    result : Out(cfg.line_bits)  lane-wise sum, ``latency`` cycles after ``a``/``b``
    result_valid : Out(1)        ``valid`` delayed by ``latency`` cycles
    """

    def __init__(self, *, cfg: T3Config):
        self._cfg = layouts.check_cfg("NearMemoryAlu", cfg)
        w = cfg.line_bits
        super().__init__({"a": In(w), "b": In(w), "valid": In(1),
                          "result": Out(w), "result_valid": Out(1)})

    @property
    def cfg(self) -> T3Config:
        return self._cfg

    @property
    def lanes(self) -> int:
        return self._cfg.lanes

    @property
    def latency(self) -> int:
        """Cycles from ``a``/``b`` to ``result`` (== ``cfg.fp_adder_stages``)."""
        return self._cfg.fp_adder_stages

    def elaborate(self, platform):
        m = Module()
        eb = self._cfg.elem_bits
        for i in range(self.lanes):
            add = FloatAdder(self._cfg.dtype, stages=self._cfg.fp_adder_stages)
            assert add.latency == self.latency
            m.submodules[f"lane{i}"] = add
            lo, hi = i * eb, (i + 1) * eb
            m.d.comb += [add.a.eq(self.a[lo:hi]), add.b.eq(self.b[lo:hi]),
                         add.valid.eq(self.valid), self.result[lo:hi].eq(add.result)]
            if i == 0:
                m.d.comb += self.result_valid.eq(add.result_valid)
        return m


class ComputeMemory(wiring.Component):
    """Line storage with in-place READ / STORE / UPDATE, in program order, 1 request/cycle.

    Parameters (keyword-only)
    ----------
    cfg : T3Config
        ``dtype``, ``line_bytes`` (-> ``lanes``), ``mem_depth_lines``, ``fp_adder_stages``.

    Ports
    -----
    req : In(stream of hw.layouts.memory_request(cfg))
        ``{op, addr, mask, data}``; ``mask`` bit ``i`` enables lane ``i`` of a STORE or
        UPDATE (READ ignores it). ``ready`` depends combinationally on ``valid``'s payload
        (``op``/``addr``/``mask``), as the stream rules allow.
    resp : Out(stream of hw.layouts.memory_response(cfg))
        one ``{data}`` per READ, in request order; backpressure is absorbed by a FIFO of
        :attr:`resp_fifo_depth` lines with credit-based admission, so no response is lost.
    error : Out(1)
        sticky until reset: set when a request with an invalid op (3) or an address
        ``>= mem_depth_lines`` is consumed (it has no effect and no response), or if a
        response ever met a full FIFO (impossible by construction; checked anyway).
    error_op, error_addr : Out(2), Out(cfg.addr_bits)
        ``op`` and ``addr`` of the first invalid request since reset (for the CSR status).
    busy : Out(1)
        a request is in flight or a response is waiting.
    """

    # Mutation hooks for the formal tests (verif/formal/nmc.py): a subclass that changes
    # one is deliberately broken and must be caught. Defaults = the design.
    _hazard_check = True         # hold an UPDATE behind an unfinished overlapping UPDATE
    _forward_stores = True       # operand stage forwards STOREs still in s[1..L-1]
    _snoop_writes = True         # operand / READ lines see the write stage's write

    def __init__(self, *, cfg: T3Config):
        self._cfg = layouts.check_cfg("ComputeMemory", cfg)
        super().__init__({
            "req": In(stream.Signature(layouts.memory_request(cfg))),
            "resp": Out(stream.Signature(layouts.memory_response(cfg))),
            "error": Out(1),
            "error_op": Out(OP_BITS),
            "error_addr": Out(cfg.addr_bits),
            "busy": Out(1),
        })

    # ---- derived values --------------------------------------------------------------
    @property
    def cfg(self) -> T3Config:
        return self._cfg

    @property
    def lanes(self) -> int:
        return self._cfg.lanes

    @property
    def depth_lines(self) -> int:
        return self._cfg.mem_depth_lines

    @property
    def storage_bits(self) -> int:
        """Bits of line storage (``mem_depth_lines * line_bits``)."""
        return self._cfg.mem_depth_lines * self._cfg.line_bits

    @property
    def alu_latency(self) -> int:
        """Cycles through the near-memory ALU (``cfg.fp_adder_stages``)."""
        return self._cfg.fp_adder_stages

    @property
    def pipeline_stages(self) -> int:
        """Stage registers after acceptance: ``s[0]`` (operand) .. ``s[L]`` (write)."""
        return self.alu_latency + 1

    @property
    def latency(self) -> int:
        """Cycles from the cycle a READ is accepted on ``req`` to the cycle its data is
        valid on ``resp`` (no backpressure): L + 2 (L stages, the write stage, the FIFO)."""
        return self.alu_latency + 2

    @property
    def same_line_update_bubble(self) -> int:
        """Idle ``req`` cycles forced between an UPDATE and the next UPDATE to the same
        line with an overlapping mask when they arrive back to back: L - 1. In general an
        UPDATE accepted ``d`` cycles after such a predecessor waits ``max(0, L - d)``
        cycles. No other request pair ever stalls (READ/STORE after UPDATE, UPDATE after
        STORE, disjoint masks, other lines: 0)."""
        return self.alu_latency - 1

    @property
    def resp_fifo_depth(self) -> int:
        """Response FIFO lines: a READ occupies a credit for L + 2 cycles (accept to pop),
        so L + 3 credits sustain one READ per cycle."""
        return self.alu_latency + 3

    # ---- hardware --------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        L, lanes, eb = self.alu_latency, self.lanes, cfg.elem_bits

        def merge(base, new, sel):
            return _merge_lanes(base, new, sel, elem_bits=eb, lanes=lanes)

        m.submodules.storage = storage = Memory(shape=unsigned(cfg.line_bits),
                                                depth=cfg.mem_depth_lines, init=[])
        wr = storage.write_port(granularity=eb)
        rd = storage.read_port(transparent_for=(wr,))
        m.submodules.alu = alu = NearMemoryAlu(cfg=cfg)
        m.submodules.resp_fifo = fifo = SyncFIFO(width=cfg.line_bits, depth=self.resp_fifo_depth)

        stage_layout = data.StructLayout({"valid": 1, "op": OP_BITS, "addr": cfg.addr_bits,
                                          "mask": lanes, "line": cfg.line_bits})
        s = [Signal(stage_layout, name=f"s{k}") for k in range(L + 1)]
        a_st, w_st = s[0], s[L]

        # ---- write stage s[L]: the one place storage changes ---------------------------
        w_writes = w_st.valid & (w_st.op != Op.READ)
        w_data = Signal(cfg.line_bits)
        m.d.comb += [
            w_data.eq(Mux(w_st.op == Op.UPDATE, alu.result, w_st.line)),
            wr.addr.eq(w_st.addr), wr.data.eq(w_data),
            wr.en.eq(Mux(w_writes, w_st.mask, 0)),
        ]

        def snoop(line, addr):
            """``line`` of ``addr`` with this cycle's write applied."""
            if not self._snoop_writes:
                return line
            hit = w_writes & (w_st.addr == addr)
            return merge(line, w_data, Mux(hit, w_st.mask, 0))

        # ---- acceptance ----------------------------------------------------------------
        req = self.req.payload
        good = Signal()
        addr_ok = (req.addr < cfg.mem_depth_lines) if cfg.mem_depth_lines < (1 << cfg.addr_bits) \
            else Const(1)
        m.d.comb += good.eq((req.op <= max(Op)) & addr_ok)

        # An UPDATE needs, in s[0], the sums of all older UPDATEs to its lanes of the line.
        # Those now in s[0..L-2] will still be inside the ALU next cycle: wait.
        hazard = Const(0)
        for st in s[:L - 1]:
            hazard = hazard | (st.valid & (st.op == Op.UPDATE) & (st.addr == req.addr)
                               & (st.mask & req.mask).any())
        hazard = hazard & (req.op == Op.UPDATE) if self._hazard_check else Const(0)

        # READ credits: a READ holds one from acceptance until its response is popped.
        credits_used = Signal(range(self.resp_fifo_depth + 1))
        is_read = req.op == Op.READ
        no_credit = is_read & (credits_used == self.resp_fifo_depth)
        m.d.comb += self.req.ready.eq(~good | ~(hazard | no_credit))
        accepted = self.req.valid & self.req.ready
        m.d.comb += rd.addr.eq(req.addr)

        m.d.sync += [a_st.valid.eq(accepted & good), a_st.op.eq(req.op), a_st.addr.eq(req.addr),
                     a_st.mask.eq(req.mask), a_st.line.eq(req.data)]
        resp_pop = self.resp.valid & self.resp.ready
        took_read = accepted & good & is_read
        with m.If(took_read & ~resp_pop):
            m.d.sync += credits_used.eq(credits_used + 1)
        with m.Elif(~took_read & resp_pop):
            m.d.sync += credits_used.eq(credits_used - 1)

        # ---- operand stage s[0]: forward every older write the storage has not seen ----
        # order of age: storage (incl. last cycle's write) < s[L] < s[L-1] < ... < s[1]
        operand = snoop(rd.data, a_st.addr)
        for st in reversed(s[1:L] if self._forward_stores else []):
            hit = st.valid & (st.op == Op.STORE) & (st.addr == a_st.addr)
            operand = merge(operand, st.line, Mux(hit, st.mask, 0))
        a_operand = Signal(cfg.line_bits)
        m.d.comb += [a_operand.eq(operand), alu.a.eq(a_operand), alu.b.eq(a_st.line),
                     alu.valid.eq(a_st.valid & (a_st.op == Op.UPDATE))]

        # ---- advance: a READ carries its line, which snoops every write it overtakes ---
        for k in range(L):
            cur, nxt = s[k], s[k + 1]
            line = a_operand if k == 0 else snoop(cur.line, cur.addr)
            m.d.sync += [nxt.valid.eq(cur.valid), nxt.op.eq(cur.op), nxt.addr.eq(cur.addr),
                         nxt.mask.eq(cur.mask),
                         nxt.line.eq(Mux(cur.op == Op.READ, line, cur.line))]

        # ---- responses -----------------------------------------------------------------
        push = w_st.valid & (w_st.op == Op.READ)
        m.d.comb += [fifo.w_data.eq(w_st.line), fifo.w_en.eq(push),
                     self.resp.valid.eq(fifo.r_rdy), self.resp.payload.data.eq(fifo.r_data),
                     fifo.r_en.eq(self.resp.ready)]

        # ---- status --------------------------------------------------------------------
        with m.If((accepted & ~good) | (push & ~fifo.w_rdy)):
            m.d.sync += self.error.eq(1)
        with m.If(accepted & ~good & ~self.error):
            m.d.sync += [self.error_op.eq(req.op), self.error_addr.eq(req.addr)]
        m.d.comb += self.busy.eq(Cat(*(st.valid for st in s)).any() | fifo.r_rdy
                                 | (credits_used != 0))
        return m


designs.register("t3_compute_memory", lambda cfg: ComputeMemory(cfg=cfg))
