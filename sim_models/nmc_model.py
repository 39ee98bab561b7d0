"""Golden model of the compute-enhanced memory (storage + near-memory ALU).

The memory holds ``cfg.mem_depth_lines`` lines of ``cfg.lanes`` elements, stored as raw
bit patterns (numpy ``uint16`` for fp16/bf16, ``uint32`` for fp32) and zero at reset.
Requests (:class:`contract.spec.Op`) run in program order:

* ``READ``   returns the line (a copy); ``mask`` is ignored;
* ``STORE``  ``line[i] = data[i]`` for every lane ``i`` whose ``mask`` bit is set;
* ``UPDATE`` ``line[i] = add(line[i], data[i])`` for every masked lane, with
  :func:`sim_models.fparith.add_bits` (IEEE round-to-nearest-even, canonical NaN).

The hardware (hw/nmc.py) flags a bad request with its sticky ``error`` output and drops
its effect; the model refuses it with a one-line :class:`~contract.spec.ConfigError`
instead, so a testbench must not feed it requests it expects the hardware to reject.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from .fparith import add_bits, from_float
from contract.spec import ConfigError, Op, T3Config

__all__ = ["ComputeMemoryModel", "Request", "random_trace", "accept_schedule"]

#: one request: (op, addr, mask, data); data is a sequence of ``lanes`` raw elements
Request = tuple[int, int, int, Sequence[int]]


class ComputeMemoryModel:
    """Bit-exact reference of :class:`hw.nmc.ComputeMemory` (storage, order, arithmetic)."""

    def __init__(self, cfg: T3Config) -> None:
        if not isinstance(cfg, T3Config):
            raise ConfigError(f"cfg={cfg!r}: must be a T3Config")
        self.cfg = cfg
        self.fmt = cfg.fmt
        self.lanes = cfg.lanes
        self.depth = cfg.mem_depth_lines
        self.dtype = np.dtype(self.fmt.uint_dtype)
        self.mem = np.zeros((self.depth, self.lanes), dtype=self.dtype)
        # bit i of a mask -> lane i
        self._lane_bits = np.left_shift(1, np.arange(self.lanes, dtype=np.uint64)).astype(np.uint64)

    # ---- validation ------------------------------------------------------------------
    def _check(self, op: int, addr: int, mask: int) -> Op:
        try:
            o = Op(op)
        except ValueError:
            raise ConfigError(f"op={op!r}: must be one of "
                              f"{', '.join(f'{x.value} ({x.name})' for x in Op)}") from None
        if not isinstance(addr, (int, np.integer)) or not 0 <= addr < self.depth:
            raise ConfigError(f"addr={addr!r}: must be a line address in [0, {self.depth - 1}]")
        if not isinstance(mask, (int, np.integer)) or not 0 <= mask < (1 << self.lanes):
            raise ConfigError(f"mask={mask!r}: must be a {self.lanes}-bit lane mask "
                              f"in [0, {(1 << self.lanes) - 1}]")
        return o

    def _data(self, data) -> np.ndarray:
        arr = np.asarray(data)
        if arr.shape != (self.lanes,):
            raise ConfigError(f"data shape {arr.shape}: must be ({self.lanes},) raw "
                              f"{self.fmt.name} elements")
        if arr.dtype != self.dtype:
            if np.any(arr < 0) or np.any(arr > np.iinfo(self.dtype).max):
                raise ConfigError(f"data: every element must be a raw {self.fmt.width}-bit "
                                  f"{self.fmt.name} pattern")
            arr = arr.astype(self.dtype)
        return arr

    def lane_mask(self, mask: int) -> np.ndarray:
        """Mask integer -> boolean array of ``lanes`` (lane i = bit i)."""
        return (np.uint64(mask) & self._lane_bits) != 0

    # ---- requests --------------------------------------------------------------------
    def apply(self, op: int, addr: int, mask: int = 0, data=None) -> np.ndarray | None:
        """Execute one request; return the line (raw bits, a copy) for READ, else None."""
        o = self._check(op, addr, mask)
        if o is Op.READ:
            return self.mem[addr].copy()
        d = self._data(data)
        sel = self.lane_mask(mask)
        line = self.mem[addr]
        if o is Op.STORE:
            line[sel] = d[sel]
        else:
            line[sel] = add_bits(self.fmt, line[sel], d[sel])
        return None

    def run(self, requests: Iterable[Request]) -> list[np.ndarray]:
        """Execute requests in order; return the READ lines in order (one per READ).

        Vectorised: requests are grouped into runs in which no line is touched twice,
        and each run is executed with whole-array numpy operations (a run keeps program
        order because its requests touch distinct lines)."""
        reqs = list(requests)
        for op, addr, mask, _ in reqs:
            self._check(op, addr, mask)
        out: list[np.ndarray] = []
        start = 0
        while start < len(reqs):
            seen: set[int] = set()
            end = start
            while end < len(reqs) and reqs[end][1] not in seen:
                seen.add(int(reqs[end][1]))
                end += 1
            out.extend(self._run_distinct(reqs[start:end]))
            start = end
        return out

    def _run_distinct(self, reqs: list[Request]) -> list[np.ndarray]:
        ops = np.array([int(r[0]) for r in reqs])
        addrs = np.array([int(r[1]) for r in reqs], dtype=np.int64)
        reads = ops == Op.READ
        result = [line for line in self.mem[addrs[reads]].copy()]
        w = ~reads
        if w.any():
            wi = np.flatnonzero(w)
            data = np.stack([self._data(reqs[i][3]) for i in wi])
            masks = np.stack([self.lane_mask(int(reqs[i][2])) for i in wi])
            a = addrs[wi]
            old = self.mem[a]
            summed = add_bits(self.fmt, old, data)
            new = np.where((ops[wi] == Op.UPDATE)[:, None], summed, data)
            self.mem[a] = np.where(masks, new, old)
        return result

    # ---- inspection ------------------------------------------------------------------
    def line(self, addr: int) -> np.ndarray:
        self._check(Op.READ, addr, 0)
        return self.mem[addr].copy()

    def snapshot(self) -> np.ndarray:
        return self.mem.copy()


def random_trace(cfg: T3Config, rng, n: int, *, hot_lines: int = 4,
                 hot_prob: float = 0.8, op_weights: Sequence[float] = (1, 1, 2),
                 raw_prob: float = 0.1) -> list[Request]:
    """``n`` random valid requests for tests: with probability ``hot_prob`` the address
    is one of ``hot_lines`` lines (heavy same-line reuse), else any line; ops weighted
    READ:STORE:UPDATE by ``op_weights``; random masks; data mostly small values in
    [-8, 8) (sums stay finite and round often), with probability ``raw_prob`` an element
    is a random raw bit pattern (NaN, infinity, subnormal, ...). ``rng`` is a
    ``random.Random``: the same seed gives the same trace."""
    fmt, lanes = cfg.fmt, cfg.lanes
    hot = [rng.randrange(cfg.mem_depth_lines) for _ in range(hot_lines)]
    ops = rng.choices(list(Op), weights=op_weights, k=n)
    out: list[Request] = []
    for op in ops:
        addr = rng.choice(hot) if rng.random() < hot_prob else rng.randrange(cfg.mem_depth_lines)
        mask = rng.choice([(1 << lanes) - 1, rng.randrange(1 << lanes)])
        vals = from_float(fmt, [rng.uniform(-8, 8) for _ in range(lanes)])
        raw = [rng.randrange(1 << fmt.width) if rng.random() < raw_prob else int(v) for v in vals]
        out.append((int(op), addr, mask if op != Op.READ else 0,
                    np.array(raw, dtype=fmt.uint_dtype)))
    return out


def accept_schedule(requests: Sequence[Request], alu_latency: int) -> list[int]:
    """Cycle (from 0) at which the hardware accepts each request when they are offered
    back to back and responses are never held back: one request per cycle, except that
    an UPDATE is accepted no earlier than ``alu_latency`` cycles after the last older
    UPDATE to the same line whose mask overlaps its own (docs/nmc.md, "the bubble").
    READ and STORE never wait, nor does anything after a STORE or a READ."""
    cycles: list[int] = []
    last_update: dict[int, list[tuple[int, int]]] = {}   # addr -> [(mask, cycle)]
    for op, addr, mask, _ in requests:
        c = cycles[-1] + 1 if cycles else 0
        if op == Op.UPDATE:
            for m, cu in last_update.get(addr, ()):
                if m & mask:
                    c = max(c, cu + alu_latency)
            # keep only the entries that can still delay a later UPDATE
            last_update[addr] = [(m, cu) for m, cu in last_update.get(addr, ())
                                 if cu + alu_latency > c] + [(mask, c)]
        cycles.append(c)
    return cycles
