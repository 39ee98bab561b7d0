"""Amaranth 0.5 components of the T3 unit. Widths and encodings come from
:mod:`contract.spec`."""
