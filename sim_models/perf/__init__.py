"""System-level performance model of T3: whole Transformer sublayers (GEMM + ring
all-reduce) on the paper's multi-GPU system, for the sequential baseline, software
fine-grained overlap, the ideal overlap, T3 and T3-MCA. Pure Python (closed-form
stage recurrences, no event loop); the whole paper sweep takes milliseconds. See docs/system_model.md.

Files, one job each: ``config_io`` (TOML with one-line errors), ``hardware``,
``workloads``, ``gemm_time``, ``collective_time``, ``dram_share``, ``pipeline`` (the
fused stage-by-stage schedule), ``contention`` + ``contention_sim`` (DRAM contention model and its
cycle-level ground truth), ``traffic`` (DRAM bytes), ``sublayer`` (the seven
configurations), ``sweep`` (rows, summaries, parameter sweeps), ``end_to_end`` (per-model
layer projection for training and prompt-phase inference), ``plots``, ``figures``.
"""

from .hardware import Hardware, load_hardware, hardware_from_rtl
from .workloads import Workloads, load_workloads
from .sublayer import CONFIGS, evaluate
from .sweep import paper_rows, summarize, run_sweep, SWEEPS

__all__ = ["Hardware", "load_hardware", "hardware_from_rtl", "Workloads", "load_workloads",
           "CONFIGS", "evaluate", "paper_rows", "summarize", "run_sweep", "SWEEPS"]
