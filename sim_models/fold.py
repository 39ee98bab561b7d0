"""An independent reference for the ring all-reduce: a plain numpy fold.

Written apart from the golden ring model (it shares only ``fparith.add_bits``): for
every chunk, start from +0 and add the devices' partials one at a time in ring order
``c+1, c+2, ..., c`` (rounding after every add), which is exactly the summation order
of a ring reduce-scatter that ends at the chunk's owner. The all-gather then copies the
result to every device, so every device ends with the same matrix.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .fparith import add_bits

__all__ = ["fold_chunk", "fold_allreduce"]


def fold_chunk(dtype: str, partials: Sequence[np.ndarray], owner: int,
               rows: slice, cols: slice) -> np.ndarray:
    """The reduced values of one chunk (``partials[d][rows, cols]``) owned by ``owner``."""
    n = len(partials)
    acc = np.zeros_like(partials[0][rows, cols])
    for step in range(1, n + 1):
        acc = add_bits(dtype, acc, partials[(owner + step) % n][rows, cols])
    return acc


def fold_allreduce(dtype: str, partials: Sequence[np.ndarray],
                   chunks: Sequence[tuple[int, int, int, int]]) -> np.ndarray:
    """The all-reduced M x N matrix. ``chunks[c] = (row_start, row_stop, col_start,
    col_stop)`` is chunk c, owned by device c."""
    if len(chunks) != len(partials):
        raise ValueError(f"{len(chunks)} chunks for {len(partials)} devices")
    out = np.zeros_like(partials[0])
    for c, (r0, r1, c0, c1) in enumerate(chunks):
        out[r0:r1, c0:c1] = fold_chunk(dtype, partials, c, slice(r0, r1), slice(c0, c1))
    return out
