"""An independent Amaranth floating-point add, written from the bit-level golden model.

:class:`GoldenFloatAdd` is the verification model of one near-memory ALU lane, used by
the NMC shadow harness (verif/formal/nmc.py) instead of the design's
:class:`hw.nmc.NearMemoryAlu`. It follows the exact-integer reference
:func:`verif.fp_vectors.exact_add` (the cross-check of the golden model
:func:`sim_models.fparith.add_bits`), not the design's datapath of hw/fp.py:

1. each finite operand becomes one signed fixed-point integer in units of the smallest
   subnormal (``2**(1 - bias - man_bits)``): ``(hidden | mantissa) << (exp - 1)``,
   negated when the sign is set -- ``man_bits + exp_max`` bits of magnitude (fp16: 41);
2. one exact integer addition (no alignment, no guard/round/sticky bits, no magnitude
   ordering);
3. the magnitude of the sum is cut to ``man_bits + 1`` significant bits at its leading
   one (``k`` = bits dropped, never below 0: gradual underflow needs no special case),
   rounded by comparing the dropped remainder with half a unit (nearest, ties to even),
   one more right shift if rounding carried out;
4. exponent field ``k + 1`` when the hidden bit is set, else 0 (subnormal); ``>=``
   ``exp_max`` is overflow to infinity;
5. T3's special-value policy (docs/fp.md): any NaN input or ``inf + -inf`` gives the
   canonical quiet NaN; otherwise an infinite operand is the result; an exact zero sum
   is -0 only when both operands are negative.

Combinational (no registers, no latency). ``rounding="rna"`` (ties away from zero) is
a deliberately wrong reference: the checks that use this model must FAIL with it
(non-vacuity of the data path).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from contract.spec import FORMATS, ConfigError, FloatFormat

__all__ = ["GoldenFloatAdd", "ROUNDINGS"]

#: supported rounding of ties: "rne" (the golden model), "rna" (ties away: a wrong reference)
ROUNDINGS = ("rne", "rna")


def _bit_length(m: Module, value, name: str) -> Signal:
    """Position of the leading one of ``value`` plus 1 (0 when ``value`` is 0): a
    priority chain from the low end, the last hit wins."""
    n = Signal(range(len(value) + 1), name=name)
    for i in range(len(value)):
        with m.If(value[i]):
            m.d.comb += n.eq(i + 1)
    return n


class GoldenFloatAdd(wiring.Component):
    """``result = a + b`` on raw bit patterns of ``fmt``, combinationally, by exact
    fixed-point addition and one rounding (see the module doc).

    Parameters
    ----------
    fmt : str or FloatFormat
        ``"fp16"``, ``"bf16"`` or ``"fp32"`` (a key of :data:`contract.spec.FORMATS`).
    rounding : str
        Keyword-only. ``"rne"`` (default: IEEE nearest, ties to even, as
        :func:`sim_models.fparith.add_bits`) or ``"rna"`` (ties away: wrong on purpose).

    Attributes
    ----------
    a, b : In(fmt.width)
        Raw operand bit patterns.
    result : Out(fmt.width)
        Raw bit pattern of ``a + b``, in the same cycle.
    """

    def __init__(self, fmt: str | FloatFormat = "fp16", *, rounding: str = "rne"):
        if isinstance(fmt, FloatFormat):
            fmt = fmt.name
        if not isinstance(fmt, str) or fmt not in FORMATS:
            raise ConfigError(f"GoldenFloatAdd: fmt={fmt!r}: must be one of {', '.join(FORMATS)}")
        if rounding not in ROUNDINGS:
            raise ConfigError(f"GoldenFloatAdd: rounding={rounding!r}: must be one of "
                              f"{', '.join(ROUNDINGS)}")
        self._fmt, self._rounding = FORMATS[fmt], rounding
        w = self._fmt.width
        super().__init__({"a": In(w), "b": In(w), "result": Out(w)})

    @property
    def fmt(self) -> FloatFormat:
        return self._fmt

    def elaborate(self, platform):
        m = Module()
        f = self._fmt
        M, P, W, EMAX = f.man_bits, f.man_bits + 1, f.width, f.exp_max
        mag_bits = P + EMAX - 1          # largest finite magnitude: (2**P - 1) << (EMAX - 2)

        def decode(v, tag):
            sign, exp, man = v[W - 1], v[M:W - 1], v[:M]
            mag = Signal(mag_bits, name=f"{tag}_mag")      # units of the smallest subnormal
            with m.If(exp == 0):
                m.d.comb += mag.eq(man)
            with m.Else():
                m.d.comb += mag.eq(Cat(man, Const(1, 1)) << (exp - 1)[:len(exp)])
            value = Signal(signed(mag_bits + 1), name=f"{tag}_value")
            m.d.comb += value.eq(Mux(sign, -mag, mag))
            return sign, exp == EMAX, (exp == EMAX) & (man != 0), value

        sa, top_a, nan_a, va = decode(self.a, "a")
        sb, top_b, nan_b, vb = decode(self.b, "b")
        total = Signal(signed(mag_bits + 2), name="exact_sum")
        m.d.comb += total.eq(va + vb)
        neg = total < 0
        mag = Signal(mag_bits + 1, name="sum_mag")
        m.d.comb += mag.eq(Mux(neg, -total, total))

        # cut to P significant bits at the leading one; k = bits dropped (>= 0)
        length = _bit_length(m, mag, "sum_length")
        k = Signal(range(mag_bits + 2), name="dropped")
        m.d.comb += k.eq(Mux(length > P, length - P, 0))
        kept = Signal(P, name="kept")
        m.d.comb += kept.eq(mag >> k)
        rest = Signal(mag_bits + 1, name="rest")         # the dropped bits
        m.d.comb += rest.eq(mag & ((Const(1, mag_bits + 2) << k) - 1))
        half = Signal(mag_bits + 1, name="half")          # half a unit of `kept` (0 if k == 0)
        m.d.comb += half.eq((Const(1, mag_bits + 2) << k) >> 1)
        tie_up = kept[0] if self._rounding == "rne" else Const(1, 1)
        up = (k != 0) & ((rest > half) | ((rest == half) & tie_up))
        rounded = Signal(P + 1, name="rounded")
        m.d.comb += rounded.eq(kept + up)
        carry = rounded[P]
        sig = Signal(P, name="significand")               # hidden bit at M
        m.d.comb += sig.eq(Mux(carry, rounded[1:], rounded[:P]))
        exp = Signal(range(mag_bits + 3), name="exp_field")
        m.d.comb += exp.eq(Mux(sig[M], k + carry + 1, 0))

        nan = nan_a | nan_b | (top_a & top_b & (sa != sb))
        finite = Cat(sig[:M], exp[:f.exp_bits], neg)
        inf = Cat(Const(0, M), Const(EMAX, f.exp_bits), neg)
        with m.If(nan):
            m.d.comb += self.result.eq(f.canonical_nan)
        with m.Elif(top_a):
            m.d.comb += self.result.eq(self.a)
        with m.Elif(top_b):
            m.d.comb += self.result.eq(self.b)
        with m.Elif(total == 0):
            m.d.comb += self.result.eq(Cat(Const(0, W - 1), sa & sb))
        with m.Elif(exp >= EMAX):
            m.d.comb += self.result.eq(inf)
        with m.Else():
            m.d.comb += self.result.eq(finite)
        return m
