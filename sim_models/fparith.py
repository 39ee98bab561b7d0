"""Reference floating-point arithmetic on raw bit patterns, with T3's NaN policy.

The near-memory ALU's golden semantics: IEEE 754 addition, round to nearest even,
gradual underflow, overflow to infinity, signed zeros as IEEE says, and every NaN result
replaced by the format's canonical quiet NaN (see :class:`contract.spec.FloatFormat`).

fp16 and fp32 use numpy; bf16 uses ml_dtypes.bfloat16. numpy computes an fp16 sum in
fp32 and rounds once more to fp16; that double rounding is exact because fp32's 24-bit
significand is >= 2 * 11 + 2 bits (likewise for bf16: 24 >= 2 * 8 + 2).
"""

from __future__ import annotations

import numpy as np

from contract.spec import FloatFormat, float_format

__all__ = ["float_dtype", "uint_dtype", "add_bits", "to_float", "from_float", "canonicalize"]


def float_dtype(fmt: str | FloatFormat) -> np.dtype:
    name = fmt if isinstance(fmt, str) else fmt.name
    if name == "bf16":
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype({"fp16": np.float16, "fp32": np.float32}[float_format(name).name])


def uint_dtype(fmt: str | FloatFormat) -> np.dtype:
    f = float_format(fmt) if isinstance(fmt, str) else fmt
    return np.dtype(f.uint_dtype)


def canonicalize(fmt: str | FloatFormat, bits: np.ndarray) -> np.ndarray:
    """Replace every NaN bit pattern by the canonical quiet NaN."""
    f = float_format(fmt) if isinstance(fmt, str) else fmt
    bits = np.asarray(bits, dtype=f.uint_dtype)
    exp = (bits >> f.man_bits) & f.exp_max
    man = bits & ((1 << f.man_bits) - 1)
    return np.where((exp == f.exp_max) & (man != 0), np.asarray(f.canonical_nan, f.uint_dtype), bits)


def add_bits(fmt: str | FloatFormat, a, b) -> np.ndarray:
    """Elementwise ``a + b`` on raw bit patterns (arrays or ints) -> raw bit patterns."""
    f = float_format(fmt) if isinstance(fmt, str) else fmt
    ud, fd = np.dtype(f.uint_dtype), float_dtype(f)
    a = np.asarray(a, dtype=ud)
    b = np.asarray(b, dtype=ud)
    with np.errstate(all="ignore"):
        s = (a.view(fd) + b.view(fd)).astype(fd)
    return canonicalize(f, s.view(ud))


def to_float(fmt: str | FloatFormat, bits) -> np.ndarray:
    """Raw bit patterns -> float64 values (for printing and tolerance-free comparison)."""
    f = float_format(fmt) if isinstance(fmt, str) else fmt
    return np.asarray(bits, dtype=f.uint_dtype).view(float_dtype(f)).astype(np.float64)


def from_float(fmt: str | FloatFormat, values) -> np.ndarray:
    """Values -> raw bit patterns, rounding to nearest even (canonical NaN)."""
    f = float_format(fmt) if isinstance(fmt, str) else fmt
    with np.errstate(all="ignore"):
        v = np.asarray(values).astype(float_dtype(f))
    return canonicalize(f, v.view(f.uint_dtype))
