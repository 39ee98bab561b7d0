"""A ring run's inputs, put together: partials, per-device programming and store traces.

:func:`make_workload` takes a configuration and a GEMM and returns a :class:`Workload`:
the GEMM's geometry and chunks (:mod:`contract.gemm`), each device's partial product
(:mod:`sim_models.gemm`), the collective library's programming
(:mod:`sim_models.collective`) and each device's producer trace (:mod:`sim_models.trace`).
The golden models (:mod:`sim_models.golden`, :mod:`sim_models.baseline`), the trace
files and the testbenches start from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from contract.gemm import Chunk, GemmSpec, OutputGeometry, split_chunks
from contract.program import DeviceProgram
from contract.sizing import check_config
from contract.spec import ConfigError, T3Config

from . import fparith
from .collective import ring_programs
from .gemm import compute_partials
from .trace import Trace, producer_trace

__all__ = ["Workload", "make_workload"]


@dataclass
class Workload:
    """Everything one ring run needs (see :func:`make_workload`): ``partials[d]`` and
    ``traces[d]`` are device d's M x N partial product (raw bits) and producer requests,
    ``programs[d]`` its T3 programming."""
    cfg: T3Config
    gemm: GemmSpec
    geometry: OutputGeometry
    chunks: list[Chunk]
    partials: list[np.ndarray]
    programs: list[DeviceProgram]
    traces: list[Trace]
    fuse_allgather: bool = True


def make_workload(cfg: T3Config, gemm: GemmSpec, *, fuse_allgather: bool = True,
                  partials: Sequence[np.ndarray] | None = None) -> Workload:
    """Partials, per-device programming and store traces for ``gemm`` on ``cfg``'s ring.
    ``partials`` (optional, M x N raw bits per device) replaces the computed products,
    e.g. to test special values."""
    geo = check_config(cfg, gemm)
    chunks = split_chunks(gemm, geo)
    if partials is None:
        partials = compute_partials(gemm)
    else:
        ud = fparith.uint_dtype(gemm.dtype)
        if len(partials) != gemm.devices:
            raise ConfigError(f"partials: {len(partials)} given: need one per device ({gemm.devices})")
        partials = [np.asarray(p) for p in partials]
        for d, p in enumerate(partials):
            if p.shape != (gemm.m, gemm.n) or p.dtype != ud:
                raise ConfigError(f"partials[{d}]: shape {p.shape} dtype {p.dtype}: must be "
                                  f"({gemm.m}, {gemm.n}) {ud}")
    programs = ring_programs(cfg, gemm, chunks, fuse_allgather=fuse_allgather)
    for p in programs:
        p.validate(cfg)
    traces = [producer_trace(cfg, gemm, geo, chunks, programs[d], partials[d])
              for d in range(gemm.devices)]
    return Workload(cfg=cfg, gemm=gemm, geometry=geo, chunks=chunks, partials=list(partials),
                    programs=programs, traces=traces, fuse_allgather=fuse_allgather)
