"""Pipelined IEEE 754 floating-point adder: one lane of the near-memory ALU.

``FloatAdder`` adds two raw bit patterns of one format (fp16, bf16 or fp32, widths from
:data:`contract.spec.FORMATS`) with round to nearest even, gradual underflow, overflow
to infinity and IEEE signed zeros. Every NaN result is the format's canonical quiet NaN
(input payloads are not propagated), so the adder equals
:func:`sim_models.fparith.add_bits` bit for bit on every input pair.

The datapath is six combinational steps (:data:`STEPS`, see docs/fp.md)::

    order      order by magnitude, unpack, exponent difference (both differences in
               parallel with the magnitude comparison), classify NaN/infinity
    shift      shift the smaller significand right into guard/round bits; the sticky
               bit from a thermometer mask of the shift, in parallel with the shifter
    add        add or subtract the aligned significands; in parallel, a marker bit
               that limits the normalisation shift to the exponent (gradual underflow)
    count      leading-zero count (a tree) of the sum with the marker OR-ed in
    normalise  1-bit right shift on carry-out, else left shift by the count
    round      round to nearest even on the packed exponent|mantissa, overflow to
               infinity, special-value and signed-zero selection

``stages`` pipeline registers (1..:data:`contract.spec.FP_ADDER_STAGES_MAX`) cut this
path (:data:`STAGE_CUTS`); the result is always registered, so ``latency == stages``
cycles and one addition enters per cycle.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from contract.spec import DEFAULT_CONFIG, FORMATS, FP_ADDER_STAGES_MAX, ConfigError, FloatFormat

__all__ = ["FloatAdder", "STEPS", "STAGE_CUTS"]

#: Extra low bits kept below the significand during alignment: guard, round, sticky.
#: Three suffice: a left shift of 2 or more only happens when at most one bit was
#: shifted out (exponent difference <= 1), so no sticky information is lost.
_GRS = 3

#: The combinational steps of one addition, in order (the output register follows the last).
STEPS = ("order", "shift", "add", "count", "normalise", "round")

#: For each supported number of stages: the steps *after which* a pipeline register
#: sits, besides the output register after ``round`` that is always present. Chosen from
#: the measured critical paths (docs/fp.md, "Pipeline registers and latency").
STAGE_CUTS: dict[int, tuple[str, ...]] = {
    1: (),
    2: ("add",),
    3: ("order", "count"),
    4: ("order", "shift", "count"),
    5: ("order", "shift", "count", "normalise"),
    6: ("order", "shift", "add", "count", "normalise"),
}
assert max(STAGE_CUTS) == FP_ADDER_STAGES_MAX and all(
    len(c) == s - 1 and set(c) <= set(STEPS[:-1]) for s, c in STAGE_CUTS.items())


def _leading_zeros(value: Value) -> Value:
    """Number of leading zero bits of ``value`` (its width when it is zero), as a
    log-depth tree: ``value`` is padded at the low end with ones to a power of two, so
    the padded word is never zero and its count saturates at ``len(value)``."""
    width = len(value)
    k = max(1, (width - 1).bit_length())
    padded = Cat(Const((1 << ((1 << k) - width)) - 1, (1 << k) - width), value)

    def tree(v: Value) -> tuple[Value, Value]:      # (all zero, count if not all zero)
        if len(v) == 1:
            return ~v[0], Const(0, 0)
        half = len(v) // 2
        (z_hi, c_hi), (z_lo, c_lo) = tree(v[half:]), tree(v[:half])
        return z_hi & z_lo, Mux(z_hi, Cat(c_lo, Const(1, 1)), Cat(c_hi, Const(0, 1)))

    return tree(padded)[1]


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
        Keyword-only. Pipeline registers from inputs to result,
        1..:data:`contract.spec.FP_ADDER_STAGES_MAX` (default: the spec's
        ``fp_adder_stages``); :data:`STAGE_CUTS` says where they sit.

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
        s = self._order(m)
        s = self._shift(m, s)
        s = self._add(m, s)
        s = self._count(m, s)
        s = self._normalise(m, s)
        self._round(m, s)
        return m

    def _order(self, m: Module) -> dict[str, Signal]:
        """Order by magnitude (``x`` the larger). Everything that does not need the order
        (unpacking, both exponent differences, the specials, which are symmetric) is
        computed from ``a`` and ``b`` in parallel with the comparison, which then only
        drives the final selections."""
        f = self._fmt
        E, M, W = f.exp_bits, f.man_bits, f.width
        A = M + 1 + _GRS
        a, b = self.a, self.b
        # |a| vs |b|: IEEE encodings order by magnitude when read as unsigned integers.
        swap = Signal(name="swap")
        m.d.comb += swap.eq(b[:W - 1] > a[:W - 1])

        def unpack(v):                 # zero or subnormal: hidden bit 0, exponent 1
            exp, man = v[M:W - 1], v[:M]
            top = exp == Const(f.exp_max, E)
            return (v[W - 1], Mux(exp == 0, 1, exp), Cat(man, exp != 0),
                    top & (man != 0), top & (man == 0))

        (sa, ea, siga, nan_a, inf_a), (sb, eb, sigb, nan_b, inf_b) = unpack(a), unpack(b)

        def clamped_diff(hi, lo, name):    # beyond A every bit of y is sticky
            d = Signal(E + 1, name=name)
            m.d.comb += d.eq(hi - lo)
            return Mux(d > A, A, d[:E])

        shift = Signal(range(A + 1), name="align_shift")   # 0..A: the shifter's width
        m.d.comb += shift.eq(Mux(swap, clamped_diff(eb, ea, "diff_ba"),
                                 clamped_diff(ea, eb, "diff_ab")))
        eff_sub = sa ^ sb
        return self._after(m, "order", {
            "valid": self.valid,
            "xsig": Mux(swap, sigb, siga), "ysig": Mux(swap, siga, sigb), "shift": shift,
            "exp": Mux(swap, eb, ea), "sign": Mux(swap, sb, sa), "sub": eff_sub,
            "nan": nan_a | nan_b | (inf_a & inf_b & eff_sub), "inf": inf_a | inf_b,
        })

    def _shift(self, m: Module, s: dict[str, Signal]) -> dict[str, Signal]:
        """Align ``y``: shift its significand (3 zero GRS bits appended) right; the lowest
        bit is the OR of every bit at or below it (sticky), from a thermometer mask of the
        shift in parallel with the shifter: ``ysig[i]`` lands at or below bit 0 iff
        ``i + 3 <= shift``."""
        P = self._fmt.man_bits + 1
        A = P + _GRS
        shifted = (Cat(Const(0, _GRS), s["ysig"]) >> s["shift"])[:A]
        sticky = Cat(*((s["shift"] >= i + _GRS) & s["ysig"][i] for i in range(P))).any()
        return self._after(m, "shift", {
            "valid": s["valid"], "x": Cat(Const(0, _GRS), s["xsig"]),
            "y": Cat(sticky, shifted[1:]), **self._keep(s, "exp", "sign", "sub", "nan", "inf"),
        })

    def _add(self, m: Module, s: dict[str, Signal]) -> dict[str, Signal]:
        """``x ± y`` (``A + 1`` bits, never negative: ``|x| >= |y|``, and when bits were
        lost ``y``'s sticky bit cannot lift it above ``x``, whose GRS bits are zero). In
        parallel: the marker bit at position ``A - exp`` (for ``exp <= A``) that stops the
        leading-zero count at ``exp - 1``, so the result never goes below exponent 1."""
        A = self._fmt.man_bits + 1 + _GRS
        e = s["exp"]
        total = Mux(s["sub"], (s["x"] - s["y"])[:A + 1], s["x"] + s["y"])
        pos = Signal(range(A), name="norm_limit")
        m.d.comb += pos.eq(A - e)                      # used only when 1 <= e <= A
        marker = Mux(e <= A, (Const(1, A) << pos)[:A], 0)
        return self._after(m, "add", {
            "valid": s["valid"], "sum": total, "marker": marker,
            **self._keep(s, "exp", "sign", "sub", "nan", "inf"),
        })

    def _count(self, m: Module, s: dict[str, Signal]) -> dict[str, Signal]:
        """Left-shift amount ``min(leading zeros, exp - 1)`` = leading zeros of the sum
        with the marker OR-ed in (tree count)."""
        A = self._fmt.man_bits + 1 + _GRS
        lz = Signal(range(A + 1), name="norm_lz")
        m.d.comb += lz.eq(_leading_zeros(s["sum"][:A] | s["marker"]))
        return self._after(m, "count", {
            "valid": s["valid"], "sum": s["sum"], "lshift": lz,
            **self._keep(s, "exp", "sign", "sub", "nan", "inf"),
        })

    def _normalise(self, m: Module, s: dict[str, Signal]) -> dict[str, Signal]:
        """On carry-out one right shift (the bit shifted out joins the sticky bit) and
        exponent + 1; else the left shift. Packs exponent|fraction and decides rounding."""
        E, M = self._fmt.exp_bits, self._fmt.man_bits
        A = M + 1 + _GRS
        z, e, lshift = s["sum"], s["exp"], s["lshift"]
        norm = Signal(A, name="norm_sig")
        e_norm = Signal(E + 1, name="norm_exp")
        with m.If(z[A]):
            m.d.comb += [norm.eq(Cat(z[0] | z[1], z[2:A + 1])), e_norm.eq(e + 1)]
        with m.Else():
            m.d.comb += [norm.eq((z[:A] << lshift)[:A]), e_norm.eq(e - lshift)]
        hidden = norm[A - 1]
        guard, lsb = norm[_GRS - 1], norm[_GRS]
        sticky = norm[:_GRS - 1].any()
        return self._after(m, "normalise", {
            "valid": s["valid"],
            # exponent field: e_norm when normal; 0 for subnormals (then e_norm is 1)
            "packed": Cat(norm[_GRS:A - 1], Mux(hidden, e_norm, 0)),
            "round_up": guard & (sticky | lsb),
            "sign": s["sign"],
            # RNE: an exact zero from opposite signs is +0 (else the larger's sign)
            "pos_zero": (z == 0) & s["sub"],
            "nan": s["nan"], "inf": s["inf"],
        })

    def _round(self, m: Module, s: dict[str, Signal]) -> None:
        """Round up the packed exponent|mantissa: a full mantissa carries into the exponent
        (and a subnormal into the smallest normal) by itself; all-ones exponent is
        overflow. Specials override; the result register is always there."""
        f = self._fmt
        E, M, W = f.exp_bits, f.man_bits, f.width
        rounded = Signal(E + M + 2, name="round_packed")
        m.d.comb += rounded.eq(s["packed"] + s["round_up"])
        overflow = rounded[M:] >= f.exp_max
        inf_bits = Cat(Const(0, M), Const(f.exp_max, E), s["sign"])
        result = Mux(s["nan"], Const(f.canonical_nan, W),
                     Mux(s["inf"] | overflow, inf_bits,
                         Cat(rounded[:E + M], s["sign"] & ~s["pos_zero"])))
        m.d.sync += [self.result.eq(result), self.result_valid.eq(s["valid"])]

    @staticmethod
    def _keep(s: dict[str, Signal], *keys: str) -> dict[str, Signal]:
        return {k: s[k] for k in keys}
