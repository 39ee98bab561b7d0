"""Pipelined IEEE 754 floating-point adder: one lane of the near-memory ALU.

``FloatAdder`` adds two raw bit patterns of one format (fp16, bf16 or fp32, widths from
:data:`contract.spec.FORMATS`) with round to nearest even, gradual underflow, overflow
to infinity and IEEE signed zeros. Every NaN result is the format's canonical quiet NaN
(input payloads are not propagated), so the adder equals
:func:`sim_models.fparith.add_bits` bit for bit on every input pair.

The datapath is four combinational steps (see docs/fp.md)::

    align      unpack, order by magnitude, shift the smaller significand right into
               guard/round/sticky bits, classify NaN/infinity
    add        add or subtract the aligned significands
    normalise  1-bit right shift on carry-out, or leading-zero left shift limited by
               the exponent (gradual underflow)
    round      round to nearest even on the packed exponent|mantissa, overflow to
               infinity, special-value and signed-zero selection

``stages`` pipeline registers (1..4) cut this path; the result is always registered, so
``latency == stages`` cycles and one addition enters per cycle.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from contract.spec import DEFAULT_CONFIG, FORMATS, ConfigError, FloatFormat

__all__ = ["FloatAdder", "STAGE_CUTS"]

#: Extra low bits kept below the significand during alignment: guard, round, sticky.
#: Three suffice: a left shift of 2 or more only happens when at most one bit was
#: shifted out (exponent difference <= 1), so no sticky information is lost.
_GRS = 3

#: For each supported number of stages: the steps *after which* a pipeline register
#: sits, besides the output register that is always present. Chosen to balance the
#: steps' logic depth (alignment shifter | adder | leading-zero count + shifter | round).
STAGE_CUTS: dict[int, tuple[str, ...]] = {
    1: (),
    2: ("add",),
    3: ("align", "add"),
    4: ("align", "add", "normalise"),
}


def _leading_zeros(m: Module, value: Value, name: str) -> Signal:
    """Number of leading zero bits of ``value`` (its width when it is zero)."""
    width = len(value)
    lz = Signal(range(width + 1), name=name)
    m.d.comb += lz.eq(width)
    for i in range(width):           # ascending: the highest set bit is assigned last, wins
        with m.If(value[i]):
            m.d.comb += lz.eq(width - 1 - i)
    return lz


class FloatAdder(wiring.Component):
    """Fully pipelined floating-point adder: ``result = a + b`` after ``latency`` cycles.

    Latency: ``stages`` cycles (:func:`contract.latency.fp_adder` of a configuration is
    its ``fp_adder_stages``); one addition enters per cycle, it never stalls. Bit-exact
    to :func:`sim_models.fparith.add_bits` (docs/fp.md).

    Parameters
    ----------
    fmt : str or FloatFormat
        ``"fp16"``, ``"bf16"`` or ``"fp32"`` (a key of :data:`contract.spec.FORMATS`);
        positional or keyword.
    stages : int
        Keyword-only. Pipeline registers from inputs to result, 1..4 (default: the
        spec's ``fp_adder_stages``); :data:`STAGE_CUTS` says where they sit.

    Attributes
    ----------
    a, b : In(fmt.width)
        Raw operand bit patterns.
    valid : In(1)
        The operands are an addition to perform this cycle.
    result : Out(fmt.width)
        Raw bit pattern of ``a + b``, ``latency`` cycles after ``a``/``b``.
    result_valid : Out(1)
        ``result`` holds the sum of an addition (``valid`` delayed by ``latency``).
    """

    def __init__(self, fmt: str | FloatFormat = "fp16", *,
                 stages: int = DEFAULT_CONFIG.fp_adder_stages):
        if isinstance(fmt, FloatFormat):
            fmt = fmt.name
        if not isinstance(fmt, str) or fmt not in FORMATS:
            raise ConfigError(f"FloatAdder: fmt={fmt!r}: must be one of {', '.join(FORMATS)}")
        if isinstance(stages, bool) or not isinstance(stages, int) or stages not in STAGE_CUTS:
            raise ConfigError(f"FloatAdder: stages={stages!r}: must be an integer in "
                              f"[{min(STAGE_CUTS)}, {max(STAGE_CUTS)}]")
        self._fmt = FORMATS[fmt]
        self._stages = stages
        w = self._fmt.width
        super().__init__({
            "a": In(w), "b": In(w), "valid": In(1),
            "result": Out(w), "result_valid": Out(1),
        })

    @property
    def fmt(self) -> FloatFormat:
        return self._fmt

    @property
    def stages(self) -> int:
        return self._stages

    @property
    def latency(self) -> int:
        """Cycles from ``a``/``b``/``valid`` to ``result``/``result_valid``."""
        return self._stages

    # ---- pipeline plumbing ---------------------------------------------------------------
    def _after(self, m: Module, step: str, bundle: dict[str, Value]) -> dict[str, Signal]:
        """Hand ``bundle`` to the next step: through a register when a cut follows
        ``step``, else combinationally. Only ``valid`` has a reset; data registers are
        plain flip-flops (their value is don't-care while ``valid`` is 0)."""
        domain = "sync" if step in STAGE_CUTS[self._stages] else "comb"
        out = {}
        for key, v in bundle.items():
            v = Value.cast(v)
            s = Signal(v.shape(), name=f"{step}_{key}", reset_less=(key != "valid"))
            m.d[domain] += s.eq(v)
            out[key] = s
        return out

    # ---- datapath ------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        f = self._fmt
        E, M, W = f.exp_bits, f.man_bits, f.width
        P = M + 1                      # significand bits including the hidden bit
        A = P + _GRS                   # aligned significand: P bits + guard/round/sticky
        exp_ones = Const(f.exp_max, E)

        # ---- align -----------------------------------------------------------------------
        a, b = self.a, self.b
        # |a| vs |b|: IEEE encodings order by magnitude when read as unsigned integers.
        swap = Signal(name="swap")
        m.d.comb += swap.eq(b[:W - 1] > a[:W - 1])
        x = Signal(W, name="x")        # larger magnitude
        y = Signal(W, name="y")
        m.d.comb += [x.eq(Mux(swap, b, a)), y.eq(Mux(swap, a, b))]

        def unpack(v):
            exp, man = v[M:W - 1], v[:M]
            sub = exp == 0             # zero or subnormal: hidden bit 0, exponent 1
            return v[W - 1], Mux(sub, 1, exp), Cat(man, ~sub), exp == exp_ones, man != 0

        xs, xe, xsig, x_top, x_man = unpack(x)
        ys, ye, ysig, y_top, y_man = unpack(y)
        eff_sub = xs ^ ys
        x_nan, y_nan = x_top & x_man, y_top & y_man
        x_inf, y_inf = x_top & ~x_man, y_top & ~y_man

        diff = Signal(E, name="exp_diff")
        m.d.comb += diff.eq((xe - ye)[:E])           # >= 0 since |x| >= |y|
        shift = Signal(range(A + 1), name="align_shift")
        m.d.comb += shift.eq(Mux(diff > A, A, diff))  # beyond A everything is sticky
        # y's significand (with 3 zero GRS bits) on top of A more bits that catch what
        # the right shift pushes out; those become the sticky bit.
        wide = Signal(2 * A, name="align_wide")
        m.d.comb += wide.eq(Cat(Const(0, A + _GRS), ysig) >> shift)
        y_al = Cat(wide[A] | wide[:A].any(), wide[A + 1:])

        s1 = self._after(m, "align", {
            "valid": self.valid,
            "x": Cat(Const(0, _GRS), xsig),
            "y": y_al,
            "exp": xe,
            "sign": xs,
            "sub": eff_sub,
            "nan": x_nan | y_nan | (x_inf & y_inf & eff_sub),
            "inf": x_inf | y_inf,
        })

        # ---- add -------------------------------------------------------------------------
        # Subtraction cannot go negative: x >= y (y's sticky bit never lifts it above x,
        # whose GRS bits are zero and whose magnitude is strictly larger when bits were lost).
        total = Mux(s1["sub"], (s1["x"] - s1["y"])[:A + 1], s1["x"] + s1["y"])
        s2 = self._after(m, "add", {
            "valid": s1["valid"], "sum": total, "exp": s1["exp"], "sign": s1["sign"],
            "sub": s1["sub"], "nan": s1["nan"], "inf": s1["inf"],
        })

        # ---- normalise -------------------------------------------------------------------
        z, e = s2["sum"], s2["exp"]
        carry = z[A]
        lz = _leading_zeros(m, z[:A], "norm_lz")
        # Gradual underflow: never shift the exponent below 1 (the subnormal exponent).
        lshift = Signal(range(A + 1), name="norm_lshift")
        m.d.comb += lshift.eq(Mux(lz > e - 1, e - 1, lz))
        norm = Signal(A, name="norm_sig")
        e_norm = Signal(E + 1, name="norm_exp")
        with m.If(carry):
            # one right shift; the bit shifted out joins the sticky bit
            m.d.comb += [norm.eq(Cat(z[0] | z[1], z[2:A + 1])), e_norm.eq(e + 1)]
        with m.Else():
            m.d.comb += [norm.eq((z[:A] << lshift)[:A]), e_norm.eq(e - lshift)]
        hidden = norm[A - 1]
        guard, lsb = norm[_GRS - 1], norm[_GRS]
        sticky = norm[:_GRS - 1].any()
        exact_zero = z == 0
        s3 = self._after(m, "normalise", {
            "valid": s2["valid"],
            # exponent field: e_norm when normal; 0 for subnormals (then e_norm is 1)
            "packed": Cat(norm[_GRS:A - 1], Mux(hidden, e_norm, 0)),
            "round_up": guard & (sticky | lsb),
            "sign": s2["sign"],
            # RNE: an exact zero from opposite signs is +0 (else the larger's sign)
            "pos_zero": exact_zero & s2["sub"],
            "nan": s2["nan"], "inf": s2["inf"],
        })

        # ---- round -----------------------------------------------------------------------
        # Rounding up the packed exponent|mantissa carries a full mantissa into the
        # exponent (and a subnormal into the smallest normal) by itself.
        rounded = Signal(E + M + 2, name="round_packed")
        m.d.comb += rounded.eq(s3["packed"] + s3["round_up"])
        overflow = rounded[M:] >= f.exp_max
        inf_bits = Cat(Const(0, M), exp_ones, s3["sign"])
        result = Mux(s3["nan"], Const(f.canonical_nan, W),
                     Mux(s3["inf"] | overflow, inf_bits,
                         Cat(rounded[:E + M], s3["sign"] & ~s3["pos_zero"])))

        m.d.sync += [self.result.eq(result), self.result_valid.eq(s3["valid"])]
        return m
