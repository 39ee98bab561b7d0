"""The GPU producer's data: each device's partial product of a tensor-parallel GEMM.

The GEMM itself (:class:`~contract.gemm.GemmSpec`), its output layout, tiling and chunks
are the contract's (:mod:`contract.gemm`), and so are the sizing rules
(:mod:`contract.sizing`). What this module adds is the model of the inputs and of the products:
random operands exact in every element type, and each device's partial over its K slice
(numpy, fp32 accumulation, one rounding). :func:`sim_models.workload.make_workload`
puts a ring run together (partials, programming, store traces).
"""

from __future__ import annotations

import numpy as np

from contract.gemm import GemmSpec

from . import fparith

__all__ = ["compute_partials"]


def _random_inputs(gemm: GemmSpec) -> tuple[np.ndarray, np.ndarray]:
    """A (m x k), B (k x n) as float32 holding values exact in every element type:
    +-j/64, j in 1..64. No zeros, so no partial is ever -0 (see docs/programming.md)."""
    rng = np.random.default_rng(gemm.seed)

    def draw(shape):
        mag = rng.integers(1, 65, size=shape).astype(np.float32) / 64
        return np.where(rng.random(shape) < 0.5, -mag, mag).astype(np.float32)
    return draw((gemm.m, gemm.k)), draw((gemm.k, gemm.n))


def compute_partials(gemm: GemmSpec) -> list[np.ndarray]:
    """Each device's M x N partial product over its K slice, accumulated in fp32 and
    rounded once to the element type (raw bits)."""
    a, b = _random_inputs(gemm)
    return [fparith.from_float(gemm.dtype, a[:, k0:k1] @ b[k0:k1, :]) for k0, k1 in gemm.k_slices()]
