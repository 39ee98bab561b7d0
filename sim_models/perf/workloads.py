"""Workloads: the models, their TP degrees and the sublayers that need an all-reduce.

A sublayer instance on one device is the GEMM ``[T x K] . [K x H]`` with ``K =
k_per_hidden * H / tp``; its output ``T x H`` is a partial sum that a ring all-reduce
(reduce-scatter + all-gather) over the ``tp`` devices completes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from contract.spec import ConfigError

from .config_io import CONFIG_DIR, Table, read_toml

__all__ = ["Model", "SublayerKind", "Sublayer", "Workloads", "load_workloads",
           "PAPER_WORKLOADS_FILE"]

PAPER_WORKLOADS_FILE = CONFIG_DIR / "workloads_paper.toml"


@dataclass(frozen=True)
class Model:
    name: str
    hidden: int
    tp: tuple[int, ...]


@dataclass(frozen=True)
class SublayerKind:
    name: str
    k_per_hidden: int


@dataclass(frozen=True)
class Sublayer:
    """One GEMM + all-reduce on one device (all devices alike)."""
    model: str
    tp: int
    kind: str
    tokens: int        # M: rows of the output
    hidden: int        # N: columns of the output
    k: int             # reduction dimension on one device

    @property
    def flops(self) -> float:
        return 2.0 * self.tokens * self.k * self.hidden

    def output_bytes(self, elem_bytes: int) -> int:
        return self.tokens * self.hidden * elem_bytes


@dataclass(frozen=True)
class Workloads:
    tokens: int
    models: tuple[Model, ...]
    sublayers: tuple[SublayerKind, ...]
    source: str = "<built-in>"
    sequence_length: int | None = None   # tokens per sequence (attention span); None = tokens

    def instances(self, *, tokens: int | None = None,
                  tp: tuple[int, ...] | None = None) -> list[Sublayer]:
        """Every (model, TP, sublayer), in file order. ``tokens``/``tp`` override the file."""
        T = tokens or self.tokens
        out = []
        for m in self.models:
            for t in (tp or m.tp):
                for s in self.sublayers:
                    k = s.k_per_hidden * m.hidden // t
                    if k < 1:
                        raise ConfigError(f"{self.source}: {m.name}: tp={t} leaves K=0 for {s.name}")
                    out.append(Sublayer(m.name, t, s.name, T, m.hidden, k))
        return out


def load_workloads(path: str | Path | None = None) -> Workloads:
    path = Path(path) if path is not None else PAPER_WORKLOADS_FILE
    top = Table(read_toml(path), path, "")
    top.only(("tokens", "model", "sublayer"))
    tk = top.sub("tokens")
    seq_len = tk.integer("sequence_length", 1, 1 << 24)
    tokens = seq_len * tk.integer("micro_batch", 1, 1 << 16)
    tk.done()
    models = []
    for i, raw in enumerate(_array(top, "model")):
        t = Table(raw, path, f"model[{i}]")
        name = t.unique_name((m.name for m in models), "model")
        hidden = t.integer("hidden", 1, 1 << 20)
        tps = t.data.get("tp")
        t.used.add("tp")
        if (not isinstance(tps, list) or not tps
                or not all(isinstance(x, int) and not isinstance(x, bool) and 2 <= x <= 1024
                           for x in tps)):
            t.fail("tp", "must be a non-empty list of integers in [2, 1024]")
        t.done()
        models.append(Model(name, hidden, tuple(tps)))
    subs = []
    for i, raw in enumerate(_array(top, "sublayer")):
        t = Table(raw, path, f"sublayer[{i}]")
        name = t.unique_name((x.name for x in subs), "sublayer")
        subs.append(SublayerKind(name, t.integer("k_per_hidden", 1, 64)))
        t.done()
    top.done()
    return Workloads(tokens, tuple(models), tuple(subs), source=str(path),
                     sequence_length=seq_len)


def _array(top: Table, key: str) -> list:
    top.used.add(key)
    v = top.data.get(key)
    if not isinstance(v, list) or not v:
        raise ConfigError(f"{top.file}: [[{key}]]: missing or empty array of tables")
    return v
