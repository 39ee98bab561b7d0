"""Registry of the top-level designs that `t3 verilog`, the reports and the lint tests
generate. Each entry maps a module name to a factory taking a T3Config.

Blocks add themselves here; keep names stable (reports and docs use them)."""

from __future__ import annotations

from typing import Any, Callable

from contract.spec import T3Config

Factory = Callable[[T3Config], Any]


def _float_adder(fmt: str) -> Factory:
    def make(cfg: T3Config):
        from hw.fp import FloatAdder
        return FloatAdder(fmt=fmt, stages=cfg.fp_adder_stages)
    return make


DESIGNS: dict[str, Factory] = {
    "t3_float_adder_fp16": _float_adder("fp16"),
    "t3_float_adder_bf16": _float_adder("bf16"),
    "t3_float_adder_fp32": _float_adder("fp32"),
}


def register(name: str, factory: Factory) -> None:
    DESIGNS[name] = factory


def load_all() -> dict[str, Factory]:
    """Import the block modules that register further designs."""
    import importlib
    for mod in ("hw.nmc", "hw.tracker", "hw.dma", "hw.addrmap", "hw.csr", "hw.arbiter",
                "hw.env.link", "hw.track_trigger", "hw.unit", "hw.env.ring", "hw.dram"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
    return DESIGNS
