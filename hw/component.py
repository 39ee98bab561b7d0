"""The one base of the T3 unit's blocks: the ``cfg`` check and the ``cfg`` property.

Every block that is built from a :class:`contract.spec.T3Config` derives from
:class:`T3Component` instead of re-checking its ``cfg`` argument and re-declaring the
property. Derived values (latency, storage bits) stay properties of each block, reading
their numbers from :mod:`contract.latency` and the configuration.
"""

from __future__ import annotations

from amaranth.lib import wiring

from contract import spec

__all__ = ["T3Component", "check_cfg"]


def check_cfg(who: str, cfg) -> spec.T3Config:
    """Every block's ``cfg`` argument check (one message for all of them)."""
    if not isinstance(cfg, spec.T3Config):
        raise spec.ConfigError(f"{who}: cfg={cfg!r}: must be a contract.spec.T3Config")
    return cfg


class T3Component(wiring.Component):
    """A :class:`wiring.Component` configured by a :class:`contract.spec.T3Config`.

    Parameters
    ----------
    cfg : T3Config
        The unit's configuration; anything else raises :class:`contract.spec.ConfigError`
        naming the block.
    signature : wiring.Signature or dict
        The block's ports, as for :class:`wiring.Component`.
    """

    def __init__(self, cfg: spec.T3Config, signature):
        self._cfg = check_cfg(type(self).__name__, cfg)
        super().__init__(signature)

    @property
    def cfg(self) -> spec.T3Config:
        """The configuration the block was built with."""
        return self._cfg
