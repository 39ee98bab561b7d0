"""Amaranth 0.5 components of the T3 unit. Widths and encodings come from
:mod:`contract.spec`: :mod:`hw.layouts` builds the payload layouts and typed enums from
it, :mod:`hw.interfaces` the port pairs several blocks share, :mod:`hw.component` the
blocks' common base. The test environment's hardware is in :mod:`hw.env`."""
