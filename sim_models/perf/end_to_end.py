"""End-to-end projection: one transformer layer of each model on one device, for a
training step (forward + backward) and for prompt-phase inference (forward only), with
the tensor-parallel sublayers (GEMM + all-reduce) taken from the sublayer model under
each configuration and everything else of the layer costed once, identically for every
configuration. docs/system_model.md, "End-to-end projection", has the method and the
source of every parameter.

Per layer (Megatron-style tensor parallelism over ``t`` devices, ``T`` tokens per
device of sequences of ``s`` tokens, hidden ``H``, ``a`` attention heads, FC width
``f H`` with ``f`` = the FC2 sublayer's ``k_per_hidden``, QKV width ``q H`` with ``q`` =
the IP_bwd sublayer's):

* **TP sublayers** (the sublayer model, per configuration): forward OP and FC2;
  backward FC1_bwd and IP_bwd (training only).
* **Other GEMMs** (:func:`gemm_time.gemm_cost`, alone, no communication): forward QKV
  ``[T x H].[H x qH/t]`` and FC1 ``[T x H].[H x fH/t]``; backward (training) the
  input gradients of OP ``[T x H].[H x H/t]`` and FC2 ``[T x H].[H x fH/t]``, and the
  four weight gradients ``[K_in x T].[T x N_out]`` (QKV: H x qH/t, OP: H/t x H, FC1:
  H x fH/t, FC2: fH/t x H).
* **Attention core**: ``QK^T`` and ``softmax . V``: ``4 T s H / t`` FLOP forward (every
  score of the s x s block computed, masked afterwards, as Megatron-LM does), twice
  that backward, at the GEMM's sustained rate on all CUs; its score tensor
  (``T s a / t`` FP16 values) makes ``SCORE_PASSES_*`` passes over DRAM.
* **Elementwise** (memory-bound, at ``dram_Bps``): per layer forward ``ELEM_PASSES_FWD``
  passes over a ``T x H`` FP16 tensor (two layer norms read + write, two residual adds
  read 2 + write 1; training adds two dropouts read + write) and 2 passes over the
  ``T x fH/t`` GELU input; backward twice the forward bytes.

Not in the projection (the same for every configuration, so they only dilute the
speedup further): the embedding and logits layers, the data-parallel gradient
all-reduce, the optimizer step, activation recomputation, pipeline-parallel bubbles,
kernel launch gaps.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.spec import ConfigError

from .gemm_time import gemm_cost
from .hardware import Hardware, load_hardware
from .sublayer import evaluate
from .workloads import Sublayer, Workloads, load_workloads

__all__ = ["ARCH", "PHASES", "TP_SUBLAYERS", "LayerTime", "project", "projection_rows",
           "other_gemms",
           "ELEM_PASSES_FWD_TRAIN", "ELEM_PASSES_FWD_INFER", "SCORE_PASSES_FWD_TRAIN",
           "SCORE_PASSES_FWD_INFER", "PROJECTED_CONFIGS"]

#: layers and attention heads of each model (docs/system_model.md, "End-to-end
#: projection": Megatron-LM Table 1; Turing-NLG announcement; GPT-3 Table 2.1; PaLM
#: Table 1; MT-NLG Sec. 3). Heads only size the softmax traffic; layers only scale the
#: per-layer time to a step (every layer is alike).
ARCH: dict[str, tuple[int, int]] = {
    "Mega-GPT-2": (72, 32),
    "T-NLG": (78, 28),
    "GPT-3": (96, 96),
    "PALM": (118, 48),
    "MT-NLG": (105, 128),
}

#: the TP sublayers (names in the workloads file) each phase runs
TP_SUBLAYERS = {"training": ("OP", "FC2", "FC1_bwd", "IP_bwd"), "inference": ("OP", "FC2")}
PHASES = tuple(TP_SUBLAYERS)
#: configurations projected (the sublayer model's names)
PROJECTED_CONFIGS = ("sequential", "ideal", "t3", "t3_mca")

#: passes over a T x H FP16 tensor per layer, forward: 2 layer norms x (read + write)
#: + 2 residual adds x (2 reads + write) = 10; training adds 2 dropouts x (read + write)
ELEM_PASSES_FWD_INFER = 10
ELEM_PASSES_FWD_TRAIN = 14
#: passes over the attention score tensor forward: QK^T writes it, the fused
#: scale-mask-softmax reads and writes it, softmax . V reads it = 4; training adds the
#: attention dropout (read + write)
SCORE_PASSES_FWD_INFER = 4
SCORE_PASSES_FWD_TRAIN = 6
#: backward elementwise and score traffic relative to forward (gradient in, gradient out,
#: saved activation read)
BWD_TRAFFIC_FACTOR = 2.0
#: backward attention-core FLOPs relative to forward (dQ, dK, dV, dP: 4 matmuls vs 2)
BWD_ATTENTION_FLOPS_FACTOR = 2.0


@dataclass(frozen=True)
class LayerTime:
    """One layer on one device, seconds. ``tp_s``: the TP sublayers under ``config``;
    ``other_s``: everything else (identical in every configuration); ``comm_s``: the
    all-reduce time exposed in the TP sublayers (sequential: RS + AG; overlapped: what
    the sublayer takes beyond its GEMM alone)."""
    model: str
    tp: int
    phase: str
    config: str
    tp_s: float
    other_gemm_s: float
    attention_s: float
    elementwise_s: float
    comm_s: float

    @property
    def other_s(self) -> float:
        return self.other_gemm_s + self.attention_s + self.elementwise_s

    @property
    def total_s(self) -> float:
        return self.tp_s + self.other_s


def _kinds(wl: Workloads) -> dict[str, int]:
    k = {s.name: s.k_per_hidden for s in wl.sublayers}
    need = sorted(set(TP_SUBLAYERS["training"]) - set(k))
    if need:
        raise ConfigError(f"{wl.source}: the end-to-end projection needs the sublayers "
                          f"{', '.join(TP_SUBLAYERS['training'])}; missing {', '.join(need)}")
    return k


def other_gemms(phase: str, *, tokens: int, hidden: int, tp: int, fc: int, qkv: int
                ) -> list[tuple[str, int, int, int]]:
    """The layer's GEMMs outside the TP sublayers, as (name, M, N, K) of ``[M x K].[K x
    N]`` on one device (module doc)."""
    if phase not in PHASES:
        raise ValueError(f"phase={phase!r}: must be one of {', '.join(PHASES)}")
    T, H, t = tokens, hidden, tp
    out = [("QKV", T, qkv * H // t, H), ("FC1", T, fc * H // t, H)]
    if phase == "training":
        out += [("OP_dX", T, H // t, H), ("FC2_dX", T, fc * H // t, H),
                ("QKV_dW", H, qkv * H // t, T), ("OP_dW", H // t, H, T),
                ("FC1_dW", H, fc * H // t, T), ("FC2_dW", fc * H // t, H, T)]
    return out


def _other(hw: Hardware, *, phase: str, model: str, tp: int, tokens: int, seq: int,
           hidden: int, fc: int, qkv: int) -> tuple[float, float, float]:
    """(other GEMMs, attention core, elementwise) seconds of one layer."""
    if model not in ARCH:
        raise ConfigError(f"end-to-end projection: model {model!r} has no layer/head entry "
                          f"(known: {', '.join(ARCH)})")
    gpu = hw.gpu
    T, H, t = tokens, hidden, tp
    _, heads = ARCH[model]
    gemms = sum(gemm_cost(gpu, m, n, k).time_s
                for _, m, n, k in other_gemms(phase, tokens=T, hidden=H, tp=t, fc=fc, qkv=qkv))
    train = phase == "training"
    all_cu = gpu.cu_flops * gpu.compute_units
    att_flops = 4.0 * T * seq * H / t * (1.0 + (BWD_ATTENTION_FLOPS_FACTOR if train else 0.0))
    score_bytes = T * seq * heads / t * gpu.elem_bytes
    score_passes = SCORE_PASSES_FWD_TRAIN if train else SCORE_PASSES_FWD_INFER
    attention = att_flops / all_cu + score_passes * score_bytes * (
        1.0 + (BWD_TRAFFIC_FACTOR if train else 0.0)) / gpu.dram_Bps
    th = T * H * gpu.elem_bytes
    elem_fwd = (ELEM_PASSES_FWD_TRAIN if train else ELEM_PASSES_FWD_INFER) * th \
        + 2.0 * T * fc * H / t * gpu.elem_bytes
    elem = elem_fwd * (1.0 + (BWD_TRAFFIC_FACTOR if train else 0.0)) / gpu.dram_Bps
    return gemms, attention, elem


def project(hw: Hardware | None = None, wl: Workloads | None = None, *,
            tokens: int | None = None) -> list[LayerTime]:
    """One :class:`LayerTime` per model, TP degree, phase and projected configuration."""
    hw = hw or load_hardware()
    wl = wl or load_workloads()
    kinds = _kinds(wl)
    T = tokens or wl.tokens
    seq = min(wl.sequence_length or T, T)
    by: dict[tuple[str, int], dict[str, Sublayer]] = {}
    for sub in wl.instances(tokens=tokens):
        by.setdefault((sub.model, sub.tp), {})[sub.kind] = sub
    out = []
    for (model, tp), subs in by.items():
        res = {k: evaluate(hw, s) for k, s in subs.items() if k in TP_SUBLAYERS["training"]}
        hidden = next(iter(subs.values())).hidden
        for phase in PHASES:
            other = _other(hw, phase=phase, model=model, tp=tp, tokens=T, seq=seq,
                           hidden=hidden, fc=kinds["FC2"], qkv=kinds["IP_bwd"])
            for cfg in PROJECTED_CONFIGS:
                tp_s = comm = 0.0
                for kind in TP_SUBLAYERS[phase]:
                    r = res[kind][cfg]
                    tp_s += r.time_s
                    comm += r.time_s - res[kind]["sequential"].gemm_s
                out.append(LayerTime(model, tp, phase, cfg, tp_s, *other, comm_s=comm))
    return out


def projection_rows(hw: Hardware | None = None, wl: Workloads | None = None, *,
                    tokens: int | None = None) -> list[dict]:
    """Flat rows (one per model, TP, phase): per-layer times in microseconds of every
    projected configuration, the shares of the sequential layer time (TP sublayers,
    their communication) and the end-to-end speedups over sequential."""
    lay = project(hw, wl, tokens=tokens)
    rows: dict[tuple, dict] = {}
    for x in lay:
        r = rows.setdefault((x.model, x.tp, x.phase), {
            "model": x.model, "tp": x.tp, "phase": x.phase, "layers": ARCH[x.model][0]})
        r[f"{x.config}_layer_us"] = x.total_s * 1e6
        if x.config == "sequential":
            r["tp_sublayers_us"] = x.tp_s * 1e6
            r["other_gemm_us"] = x.other_gemm_s * 1e6
            r["attention_us"] = x.attention_s * 1e6
            r["elementwise_us"] = x.elementwise_s * 1e6
            r["tp_sublayer_share"] = x.tp_s / x.total_s
            r["comm_share"] = x.comm_s / x.total_s
        else:
            r[f"{x.config}_comm_share"] = x.comm_s / x.total_s
    for r in rows.values():
        for cfg in PROJECTED_CONFIGS[1:]:
            r[f"{cfg}_speedup"] = r["sequential_layer_us"] / r[f"{cfg}_layer_us"]
        r["sequential_step_ms"] = r["sequential_layer_us"] * r["layers"] / 1e3
    return list(rows.values())
