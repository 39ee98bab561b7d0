"""Compute-enhanced memory: line storage plus a near-memory ALU next to the DRAM banks.

:class:`ComputeMemory` executes READ, STORE and UPDATE requests (:class:`hw.layouts.Op`)
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

Dependent UPDATEs run at one per L cycles, by design: the golden model rounds after
every addition, in program order (``x_k = RNE(x_(k-1) + d_k)``), so each addition must
start from the previous rounded sum; it is bypassed from the ALU output into the next
operand the cycle it exists, the shortest loop an L-stage adder allows. Pre-combining
or partial sums would change the rounding (docs/nmc.md, "Dependent UPDATEs").
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, stream
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from contract import latency
from contract.spec import OP_BITS, T3Config

from . import designs, layouts
from .layouts import Op
from .component import T3Component
from .fp import FloatAdder

__all__ = ["NearMemoryAlu", "ComputeMemory", "same_line_update_bubble", "resp_fifo_depth"]


def same_line_update_bubble(cfg: T3Config) -> int:
    """Idle ``req`` cycles a :class:`ComputeMemory` forces between an UPDATE and the next
    UPDATE to the same line with an overlapping mask when they arrive back to back:
    L - 1 (L = the ALU's latency). In general an UPDATE accepted ``d`` cycles after such a
    predecessor waits ``max(0, L - d)`` cycles. No other request pair ever stalls
    (READ/STORE after UPDATE, UPDATE after STORE, disjoint masks, other lines: 0)."""
    return latency.nmc_alu(cfg) - 1


def resp_fifo_depth(cfg: T3Config) -> int:
    """Response FIFO lines of a :class:`ComputeMemory`: a READ holds a credit for
    L + 2 cycles (accept to pop), so L + 3 credits sustain one READ per cycle."""
    return latency.nmc_alu(cfg) + 3


def _merge_lanes(base, new, sel, *, elem_bits: int, lanes: int) -> Value:
    """Per lane ``i``: ``new[i]`` where ``sel[i]`` else ``base[i]`` (lines of ``lanes``
    elements of ``elem_bits``)."""
    base, new, sel = Value.cast(base), Value.cast(new), Value.cast(sel)
    return Cat(*(Mux(sel[i], new[i * elem_bits:(i + 1) * elem_bits],
                     base[i * elem_bits:(i + 1) * elem_bits]) for i in range(lanes)))


class NearMemoryAlu(T3Component):
    """The near-memory ALU: ``result = a + b`` lane by lane, ``latency`` cycles later.

    One :class:`hw.fp.FloatAdder` of ``cfg.dtype`` with ``cfg.fp_adder_stages`` stages per
    lane; fully pipelined (one line per cycle), never stalls. Latency:
    :func:`contract.latency.nmc_alu` (``cfg.fp_adder_stages``) cycles.

    Parameters
    ----------
    cfg : T3Config
        ``dtype`` (the adders' format), ``line_bytes`` (-> ``lanes``), ``fp_adder_stages``.

    Attributes
    ----------
    a, b : In(cfg.line_bits)
        Raw lines of operands (lane ``i`` = bits ``[i*elem_bits, (i+1)*elem_bits)``).
    valid : In(1)
        ``a``/``b`` hold an addition this cycle.
    result : Out(cfg.line_bits)
        Lane-wise sum, ``latency`` cycles after ``a``/``b``.
    result_valid : Out(1)
        ``valid`` delayed by ``latency`` cycles.
    """

    def __init__(self, *, cfg: T3Config):
        super().__init__(cfg, lambda cfg: {
            "a": In(cfg.line_bits), "b": In(cfg.line_bits), "valid": In(1),
            "result": Out(cfg.line_bits), "result_valid": Out(1)})

    @property
    def lanes(self) -> int:
        return self.cfg.lanes

    @property
    def latency(self) -> int:
        """Cycles from ``a``/``b`` to ``result`` (:func:`contract.latency.nmc_alu`)."""
        return latency.nmc_alu(self.cfg)

    def elaborate(self, platform):
        m = Module()
        eb = self.cfg.elem_bits
        for i in range(self.lanes):
            add = FloatAdder(self.cfg.dtype, stages=self.cfg.fp_adder_stages)
            assert add.latency == self.latency
            m.submodules[f"lane{i}"] = add
            lo, hi = i * eb, (i + 1) * eb
            m.d.comb += [add.a.eq(self.a[lo:hi]), add.b.eq(self.b[lo:hi]),
                         add.valid.eq(self.valid), self.result[lo:hi].eq(add.result)]
            if i == 0:
                m.d.comb += self.result_valid.eq(add.result_valid)
        return m


@dataclass(frozen=True)
class _StageWrite:
    """The write stage's storage write of this cycle (reaches the storage at the edge)."""
    enable: Value
    addr: Value
    mask: Value
    data: Value


class ComputeMemory(T3Component):
    """Line storage with in-place READ / STORE / UPDATE, in program order, 1 request/cycle.

    Latency: :func:`contract.latency.compute_memory` (L + 2, L = ``cfg.fp_adder_stages``)
    cycles from a READ's acceptance on ``req`` to its data on ``resp`` (no backpressure);
    see :attr:`same_line_update_bubble` for the one request pair that stalls.

    Parameters
    ----------
    cfg : T3Config
        ``dtype``, ``line_bytes`` (-> ``lanes``), ``mem_depth_lines``, ``fp_adder_stages``.

    Attributes
    ----------
    req : In(stream.Signature(hw.layouts.memory_request(cfg)))
        ``{op, addr, mask, data}``; ``mask`` bit ``i`` enables lane ``i`` of a STORE or
        UPDATE (READ ignores it). ``ready`` depends combinationally on ``valid``'s payload
        (``op``/``addr``/``mask``), as the stream rules allow.
    resp : Out(stream.Signature(hw.layouts.memory_response(cfg)))
        One ``{data}`` per READ, in request order; backpressure is absorbed by a FIFO of
        :attr:`resp_fifo_depth` lines with credit-based admission, so no response is lost.
    error : Out(1)
        Sticky until reset: set when a request with an invalid op (3) or an address
        ``>= mem_depth_lines`` is consumed (it has no effect and no response), or if a
        response ever met a full FIFO (impossible by construction; checked anyway).
    error_op : Out(OP_BITS)
        ``op`` of the first invalid request since reset (for the CSR status); plain bits,
        not an :class:`hw.layouts.Op`: it may hold the encoding no member has.
    error_addr : Out(cfg.addr_bits)
        ``addr`` of that request.
    busy : Out(1)
        A request is in flight or a response is waiting.
    """

    def __init__(self, *, cfg: T3Config):
        super().__init__(cfg, lambda cfg: {
            "req": In(stream.Signature(layouts.memory_request(cfg))),
            "resp": Out(stream.Signature(layouts.memory_response(cfg))),
            "error": Out(1),
            "error_op": Out(OP_BITS),
            "error_addr": Out(cfg.addr_bits),
            "busy": Out(1),
        })

    # ---- derived values --------------------------------------------------------------
    @property
    def lanes(self) -> int:
        return self.cfg.lanes

    @property
    def depth_lines(self) -> int:
        return self.cfg.mem_depth_lines

    @property
    def storage_bits(self) -> int:
        """Bits of line storage (``mem_depth_lines * line_bits``)."""
        return self.cfg.mem_depth_lines * self.cfg.line_bits

    @property
    def alu_latency(self) -> int:
        """Cycles through the near-memory ALU, L (:func:`contract.latency.nmc_alu`)."""
        return latency.nmc_alu(self.cfg)

    @property
    def pipeline_stages(self) -> int:
        """Stage registers after acceptance: ``s[0]`` (operand) .. ``s[L]`` (write)."""
        return self.alu_latency + 1

    @property
    def latency(self) -> int:
        """Cycles from the cycle a READ is accepted on ``req`` to the cycle its data is
        valid on ``resp`` (no backpressure): L + 2 (L stages, the write stage, the FIFO;
        :func:`contract.latency.compute_memory`)."""
        return latency.compute_memory(self.cfg)

    @property
    def same_line_update_bubble(self) -> int:
        """See :func:`same_line_update_bubble` (L - 1)."""
        return same_line_update_bubble(self.cfg)

    @property
    def resp_fifo_depth(self) -> int:
        """See :func:`resp_fifo_depth` (L + 3)."""
        return resp_fifo_depth(self.cfg)

    # ---- design decisions a broken variant overrides (verif/formal/mutants.py) ---------

    def _update_hazard(self, req, unfinished) -> Value:
        """``req`` is an UPDATE that must wait: an older UPDATE to its line with an
        overlapping mask is in one of the ``unfinished`` stages (s[0..L-2]). That UPDATE
        will still be inside the ALU next cycle, so its sum cannot reach ``req``'s operand."""
        hazard = Const(0)
        for st in unfinished:
            hazard = hazard | (st.valid & (st.op == Op.UPDATE) & (st.addr == req.addr)
                               & (st.mask & req.mask).any())
        return hazard & (req.op == Op.UPDATE)

    def _forward_stores(self, operand, addr, in_flight) -> Value:
        """``operand`` (line ``addr`` as the storage and the write stage have it) with the
        STOREs to ``addr`` still in the ``in_flight`` stages (s[1..L-1]) merged in, the
        oldest first: they are older than the UPDATE in s[0] but not written yet."""
        # Lane by lane, so each stage's Mux takes the previous stage's lane value itself
        # (merging whole lines would slice the previous stage's Cat, which the Verilog
        # backend re-emits per slice: lanes ** stages cells, 2 MB of Verilog at 6 stages).
        eb = self.cfg.elem_bits
        lane = [operand[i * eb:(i + 1) * eb] for i in range(self.lanes)]
        for st in reversed(in_flight):
            hit = st.valid & (st.op == Op.STORE) & (st.addr == addr)
            lane = [Mux(hit & st.mask[i], st.line[i * eb:(i + 1) * eb], lane[i])
                    for i in range(self.lanes)]
        return Cat(*lane)

    def _snoop(self, line, addr, write: _StageWrite) -> Value:
        """``line`` of ``addr`` with this cycle's ``write`` applied: the storage takes the
        write at the clock edge, so the operand read and every READ's carried line would
        miss it otherwise."""
        hit = write.enable & (write.addr == addr)
        return self._merge(line, write.data, Mux(hit, write.mask, 0))

    def _merge(self, base, new, sel) -> Value:
        return _merge_lanes(base, new, sel, elem_bits=self.cfg.elem_bits, lanes=self.lanes)

    # ---- hardware --------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        L, lanes = self.alu_latency, self.lanes

        m.submodules.storage = storage = Memory(shape=unsigned(cfg.line_bits),
                                                depth=cfg.mem_depth_lines, init=[])
        wr = storage.write_port(granularity=cfg.elem_bits)
        rd = storage.read_port(transparent_for=(wr,))
        m.submodules.alu = alu = NearMemoryAlu(cfg=cfg)
        m.submodules.resp_fifo = fifo = SyncFIFO(width=cfg.line_bits, depth=self.resp_fifo_depth)

        stage_layout = data.StructLayout({"valid": 1, "op": Op, "addr": cfg.addr_bits,
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
        write = _StageWrite(enable=w_writes, addr=w_st.addr, mask=w_st.mask, data=w_data)

        # ---- acceptance ----------------------------------------------------------------
        req = self.req.payload
        good = Signal()
        addr_ok = (req.addr < cfg.mem_depth_lines) if cfg.mem_depth_lines < (1 << cfg.addr_bits) \
            else Const(1)
        m.d.comb += good.eq(Cat(*(req.op == op for op in Op)).any() & addr_ok)

        # An UPDATE needs, in s[0], the sums of all older UPDATEs to its lanes of the line
        hazard = self._update_hazard(req, s[:L - 1])

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
        snooped = Signal(cfg.line_bits)
        m.d.comb += snooped.eq(self._snoop(rd.data, a_st.addr, write))
        operand = self._forward_stores(snooped, a_st.addr, s[1:L])
        a_operand = Signal(cfg.line_bits)
        m.d.comb += [a_operand.eq(operand), alu.a.eq(a_operand), alu.b.eq(a_st.line),
                     alu.valid.eq(a_st.valid & (a_st.op == Op.UPDATE))]

        # ---- advance: a READ carries its line, which snoops every write it overtakes ---
        for k in range(L):
            cur, nxt = s[k], s[k + 1]
            line = a_operand if k == 0 else self._snoop(cur.line, cur.addr, write)
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
