"""The one base of the T3 unit's blocks: the ``cfg`` check and the ``cfg`` property.

Every block that is built from a :class:`contract.spec.T3Config` derives from
:class:`T3Component` instead of re-checking its ``cfg`` argument and re-declaring the
property. Derived values (latency, storage bits) stay properties of each block, reading
their numbers from :mod:`contract.latency` and the configuration.
"""

from __future__ import annotations

from typing import Callable, Union

from amaranth.lib import wiring

from contract import spec

__all__ = ["T3Component", "check_cfg", "check_int"]

#: a block's ports: what :class:`wiring.Component` takes, or a function of the checked
#: configuration returning it
Ports = Union[wiring.Signature, dict, Callable[[spec.T3Config], Union[wiring.Signature, dict]]]


def check_cfg(who: str, cfg) -> spec.T3Config:
    """Every block's ``cfg`` argument check (one message for all of them)."""
    if not isinstance(cfg, spec.T3Config):
        raise spec.ConfigError(f"{who}: cfg={cfg!r}: must be a contract.spec.T3Config")
    return cfg


def check_int(who: str, name: str, value, *, lo: int, hi: int | None = None) -> int:
    """A block's integer parameter check: ``value`` must be an ``int`` (not a bool) in
    ``[lo, hi]`` (``hi`` None: no upper bound); ConfigError naming the block otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) \
            or value < lo or (hi is not None and value > hi):
        allowed = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise spec.ConfigError(f"{who}: {name}={value!r}: must be an integer {allowed}")
    return value


class T3Component(wiring.Component):
    """A :class:`wiring.Component` configured by a :class:`contract.spec.T3Config`.

    Parameters
    ----------
    cfg : T3Config
        The unit's configuration; anything else raises :class:`contract.spec.ConfigError`
        naming the block (its class name).
    signature : wiring.Signature, dict, or callable
        The block's ports, as for :class:`wiring.Component`; or a function of ``cfg``
        returning them, called after the check (ports are sized from the configuration,
        so a wrong ``cfg`` must be reported before they are built).

    Attributes
    ----------
    cfg : T3Config
        The configuration the block was built with.
    """

    def __init__(self, cfg: spec.T3Config, signature: Ports):
        self._cfg = check_cfg(type(self).__name__, cfg)
        if callable(signature):
            signature = signature(self._cfg)
        super().__init__(signature)

    @property
    def cfg(self) -> spec.T3Config:
        """The configuration the block was built with."""
        return self._cfg
