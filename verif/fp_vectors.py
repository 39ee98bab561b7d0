"""Test vectors and result checking for the floating-point adder (hw.fp.FloatAdder).

Shared by the Amaranth-simulator test (tests/test_fp_amaranth.py) and the cocotb
testbench (verif/tb_fp.py). Pure Python + numpy: no HDL, no cocotb.

- :func:`special_values` / :func:`special_pairs`: the full cross product of hand-picked
  values (zeros, subnormals, normals at both ends, infinities, NaNs with several payloads
  and signs, 1.0 and neighbours, half-ulp tie makers, near-overflow values) plus
  constructed pairs (RNE ties with even and odd results, exact cancellations).
- :func:`random_pairs`: uniform bit patterns, close-exponent pairs (cancellation and
  rounding) and subnormal-heavy pairs, from a seeded numpy Generator.
- :func:`check`: bulk comparison against a reference (default
  :func:`sim_models.fparith.add_bits`) that reports the seed and the first mismatches.
- :func:`exact_add`: an independent integer-exact reference with a selectable rounding
  mode, used to cross-check the golden model and to build deliberately wrong references.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from sim_models import fparith
from contract.spec import FloatFormat, float_format

__all__ = ["special_values", "special_pairs", "random_pairs", "check", "exact_add",
           "vectors"]


def _fmt(fmt: str | FloatFormat) -> FloatFormat:
    return float_format(fmt) if isinstance(fmt, str) else fmt


def _enc(f: FloatFormat, sign: int, exp: int, man: int) -> int:
    return (sign << (f.width - 1)) | (exp << f.man_bits) | man


def special_values(fmt: str | FloatFormat) -> np.ndarray:
    """Hand-picked bit patterns, each with both signs (NaNs: several payloads)."""
    f = _fmt(fmt)
    M, bias, top = f.man_bits, f.bias, f.exp_max
    ones = (1 << M) - 1
    mags = [
        0,                                   # zero
        1, 2, 3, ones,                       # smallest subnormals, largest subnormal
        1 << (M - 1), 0b1010101 << (M - 7) if M >= 7 else 0b101,   # mid subnormals
        _enc(f, 0, 1, 0), _enc(f, 0, 1, 1),  # smallest normals
        _enc(f, 0, 2, 0), _enc(f, 0, 1, ones),
        _enc(f, 0, top - 1, ones),           # largest normal
        _enc(f, 0, top - 1, ones - 1),
        _enc(f, 0, top - 1, 0),
        _enc(f, 0, top - 1 - M - 1, 0),      # half an ulp of the largest normal: ties to inf
        _enc(f, 0, top - 1 - M - 1, ones),   # just below that half ulp
        _enc(f, 0, top, 0),                  # infinity
        _enc(f, 0, bias, 0),                 # 1.0
        _enc(f, 0, bias, 1),                 # 1.0 + ulp
        _enc(f, 0, bias - 1, ones),          # largest value below 1.0
        _enc(f, 0, bias + 1, 0),             # 2.0
        _enc(f, 0, bias, 1 << (M - 1)),      # 1.5
        _enc(f, 0, bias - M - 1, 0),         # half an ulp of 1.0 (tie maker)
        _enc(f, 0, bias - M, 1 << (M - 1)),  # 1.5 ulps of 1.0 (tie maker)
        _enc(f, 0, bias - M - 2, 0),         # a quarter ulp of 1.0
        _enc(f, 0, bias - M, 0),             # one ulp of 1.0
    ]
    nans = [f.canonical_nan, _enc(f, 0, top, 1), _enc(f, 0, top, ones),
            _enc(f, 0, top, (1 << (M - 1)) | 5)]
    vals = []
    for m in mags + nans:
        vals += [m, m | (1 << (f.width - 1))]
    return np.unique(np.array(vals, dtype=np.uint64)).astype(f.uint_dtype)


def _normal_with_exp(f: FloatFormat, rng: np.random.Generator, n: int, exp) -> np.ndarray:
    man = rng.integers(0, 1 << f.man_bits, n, dtype=np.uint64)
    sign = rng.integers(0, 2, n, dtype=np.uint64)
    exp = np.asarray(exp, dtype=np.uint64)
    return ((sign << np.uint64(f.width - 1)) | (exp << np.uint64(f.man_bits)) | man).astype(f.uint_dtype)


def special_pairs(fmt: str | FloatFormat, rng: np.random.Generator | None = None,
                  n_constructed: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Cross product of :func:`special_values` plus constructed pairs: exact RNE ties
    (a + half an ulp of a, a + 1.5 ulps; even and odd mantissas, both signs) and exact
    cancellations (x + -x and x + -(x +- 1 ulp))."""
    f = _fmt(fmt)
    rng = rng if rng is not None else np.random.default_rng(0)
    v = special_values(f)
    a, b = np.meshgrid(v, v, indexing="ij")
    a, b = [a.ravel()], [b.ravel()]
    M, sign_bit = f.man_bits, np.uint64(1 << (f.width - 1))
    # ties: |b| = 0.5 or 1.5 ulps of |a|; a's exponent high enough for b to be representable
    exp = rng.integers(M + 2, f.exp_max, n_constructed, dtype=np.uint64)
    ta = _normal_with_exp(f, rng, n_constructed, exp).astype(np.uint64)
    ta[: n_constructed // 4] &= ~np.uint64(1)         # force both even and odd mantissas
    ta[n_constructed // 4: n_constructed // 2] |= np.uint64(1)
    half = exp - np.uint64(M + 1)                     # exponent field of ulp(a)/2
    three = rng.integers(0, 2, n_constructed, dtype=np.uint64)  # 1: 1.5 ulps = 1.5 * 2 * half
    tb = ((half + three) << np.uint64(M)) | (three << np.uint64(M - 1)) \
        | (rng.integers(0, 2, n_constructed, dtype=np.uint64) * sign_bit)
    a.append(ta.astype(f.uint_dtype))
    b.append(tb.astype(f.uint_dtype))
    # cancellations: x + -x, x + -(x + 1), x + -(x - 1) (bit-pattern neighbours)
    x = rng.integers(0, f.exp_max << M, n_constructed, dtype=np.uint64)
    d = rng.integers(-1, 2, n_constructed).astype(np.int64)
    y = np.clip(x.astype(np.int64) + d, 0, (f.exp_max << M) - 1).astype(np.uint64)
    xs = rng.integers(0, 2, n_constructed, dtype=np.uint64) * sign_bit
    a.append((x | xs).astype(f.uint_dtype))
    b.append((y | (xs ^ sign_bit)).astype(f.uint_dtype))
    return np.concatenate(a), np.concatenate(b)


def random_pairs(fmt: str | FloatFormat, rng: np.random.Generator, n: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random pairs: 1/3 uniform bit patterns; 1/3 close exponents (difference
    mostly 0..3, up to significand width + 5, random signs: cancellation, carry-out, GRS
    rounding); 1/3 subnormal-heavy (exponent fields 0..2)."""
    f = _fmt(fmt)
    ud = np.uint64
    n1, n2 = n // 3, n // 3
    n3 = n - n1 - n2
    full = 1 << f.width
    a1 = rng.integers(0, full, n1, dtype=ud)
    b1 = rng.integers(0, full, n1, dtype=ud)
    # close exponents
    ea = rng.integers(1, f.exp_max, n2).astype(np.int64)
    small = rng.integers(-3, 4, n2)
    wide = rng.integers(-(f.man_bits + 6), f.man_bits + 7, n2)
    delta = np.where(rng.random(n2) < 0.7, small, wide)
    eb = np.clip(ea + delta, 0, f.exp_max - 1)
    a2 = _normal_with_exp(f, rng, n2, ea).astype(ud)
    b2 = _normal_with_exp(f, rng, n2, eb).astype(ud)
    # half of them share a's top mantissa bits too: deep cancellation
    keep = rng.integers(0, f.man_bits + 1, n2).astype(ud)
    mask = ((ud(1) << keep) - ud(1)) << (ud(f.man_bits) - keep)
    same = (rng.random(n2) < 0.5) & (ea == eb)
    b2 = np.where(same, (b2 & ~mask) | (a2 & mask), b2)
    # subnormal-heavy
    a3 = _normal_with_exp(f, rng, n3, rng.integers(0, 3, n3)).astype(ud)
    b3 = _normal_with_exp(f, rng, n3, rng.integers(0, 3, n3)).astype(ud)
    a = np.concatenate([a1, a2, a3]).astype(f.uint_dtype)
    b = np.concatenate([b1, b2, b3]).astype(f.uint_dtype)
    perm = rng.permutation(n)
    return a[perm], b[perm]


def vectors(fmt: str | FloatFormat, seed: int, n_random: int) -> tuple[np.ndarray, np.ndarray]:
    """Special pairs followed by ``n_random`` random pairs, all from ``seed``."""
    rng = np.random.default_rng(seed)
    sa, sb = special_pairs(fmt, rng)
    ra, rb = random_pairs(fmt, rng, n_random)
    return np.concatenate([sa, ra]), np.concatenate([sb, rb])


Reference = Callable[[FloatFormat, np.ndarray, np.ndarray], np.ndarray]


def check(fmt: str | FloatFormat, a, b, got, *, seed: int | None = None,
          reference: Reference | None = None, show: int = 8) -> str | None:
    """Compare a result stream with ``reference(fmt, a, b)`` (default: the golden
    :func:`sim_models.fparith.add_bits`). Returns None when every result matches, else
    a report with the seed, the count and the first ``show`` mismatches."""
    f = _fmt(fmt)
    a = np.asarray(a, dtype=f.uint_dtype)
    b = np.asarray(b, dtype=f.uint_dtype)
    got = np.asarray(got, dtype=np.uint64)
    want = np.asarray((reference or fparith.add_bits)(f, a, b), dtype=np.uint64)
    hexw = f.width // 4
    head = f"{f.name} seed={seed}: "
    if len(got) != len(a):
        return head + f"{len(got)} results for {len(a)} valid inputs"
    bad = np.nonzero(got != want)[0]
    if not len(bad):
        return None
    fa, fb = fparith.to_float(f, a[bad[:show]]), fparith.to_float(f, b[bad[:show]])
    lines = [head + f"{len(bad)} of {len(a)} results differ; first {min(show, len(bad))}:"]
    for k, i in enumerate(bad[:show]):
        lines.append(f"  #{i}: {int(a[i]):0{hexw}x} ({fa[k]:.9g}) + {int(b[i]):0{hexw}x} ({fb[k]:.9g}) "
                     f"-> got {int(got[i]):0{hexw}x}, want {int(want[i]):0{hexw}x}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Independent exact reference (Python integers), for cross-checks and wrong references
# --------------------------------------------------------------------------------------

def _round_shift(n: int, k: int, mode: str) -> int:
    """n >> k rounded: 'rne' nearest even, 'rna' nearest away, 'rtz' toward zero."""
    if k <= 0:
        return n << -k
    q, r = n >> k, n & ((1 << k) - 1)
    half = 1 << (k - 1)
    if mode == "rtz" or r < half:
        return q
    if r > half or mode == "rna":
        return q + 1
    return q + (q & 1)


def exact_add(fmt: str | FloatFormat, a, b, mode: str = "rne") -> np.ndarray:
    """``a + b`` on bit patterns by exact integer arithmetic and one rounding in ``mode``
    (IEEE specials, canonical NaN). Slow (a Python loop): for a few thousand pairs."""
    f = _fmt(fmt)
    M, P, W = f.man_bits, f.man_bits + 1, f.width
    sign_bit, man_mask, nan = 1 << (W - 1), (1 << f.man_bits) - 1, f.canonical_nan

    def decode(v):                       # (sign, exp field, mantissa, signed integer value)
        s, e, m = v >> (W - 1), (v >> M) & f.exp_max, v & man_mask
        mag = (m | (1 << M)) << (e - 1) if e else m   # in units of the smallest subnormal
        return s, e, m, -mag if s else mag

    out = []
    for x, y in zip(np.asarray(a).tolist(), np.asarray(b).tolist()):
        xs, xe, xm, xv = decode(x)
        ys, ye, ym, yv = decode(y)
        if (xe == f.exp_max and xm) or (ye == f.exp_max and ym) or \
                (xe == ye == f.exp_max and xs != ys):
            out.append(nan)
            continue
        if xe == f.exp_max or ye == f.exp_max:
            out.append(x if xe == f.exp_max else y)
            continue
        s = xv + yv
        if s == 0:
            out.append(sign_bit if (xs and ys) else 0)
            continue
        sign, mag = int(s < 0), abs(s)
        k = max(0, mag.bit_length() - P)
        m = _round_shift(mag, k, mode)
        if m >> P:                       # rounding carried out of the significand
            m, k = m >> 1, k + 1
        exp = k + 1 if m >> M else 0
        if exp >= f.exp_max:             # overflow: infinity, or the largest finite for rtz
            bits = (f.exp_max << M) - (1 if mode == "rtz" else 0)
        else:
            bits = (exp << M) | (m & man_mask)
        out.append((sign << (W - 1)) | bits)
    return np.array(out, dtype=f.uint_dtype)
