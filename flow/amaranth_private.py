"""Every use of Amaranth's private API in the project, in this one module.

What it touches
---------------
* ``amaranth.back.rtlil.ModuleEmitter.emit_memory(self, cell_idx, cell)``: the RTLIL
  emitter's method that writes a memory's initial contents as a ``$meminit_v2`` cell.
  ``ModuleEmitter`` is not in ``amaranth.back.rtlil.__all__`` (``convert``,
  ``convert_fragment``): it is private, and may change in any Amaranth release.
* ``cell.init``: the rows (ints) of the NIR memory cell that method receives
  (``amaranth.hdl._nir.Memory.init``, also private).

Nothing else of the project may touch private Amaranth names (tests/test_structure.py
checks it); the public way to build a component only for its properties without the
"never used" warning is to filter ``amaranth.hdl.UnusedElaboratable``.

Why
---
Amaranth gives every memory explicit initial contents, and Yosys writes them as one
``mem[i] = W'h0;`` per word. For the 16 Ki-line x 512-bit compute memory that is 8 Mbit
of constants: ~35 s of conversion per memory instance (half in Amaranth building the
constant, half in Yosys), and Verilator then compiles 16 Ki wide assignments per device
(tens of minutes for a 4-device ring). Inside :func:`zero_memories_without_init` the
emitter leaves out the ``$meminit_v2`` of memories whose contents are all zero (only
those), so they reach Verilog without an ``initial`` block, and
:func:`flow.verilog.to_verilog` gives each of them a one-line zeroing loop, which means
the same to every simulator and to Yosys.

The patch is installed only while at least one :func:`zero_memories_without_init` block
is open, and acts only in the threads that opened one (the area flow converts designs
from worker threads; any other user of the RTLIL backend, e.g. the formal flow, is never
affected). Leaving the last block restores Amaranth's own method.

Checked with
------------
Amaranth :data:`CHECKED_VERSIONS` (the version pinned in pyproject.toml).
tests/test_amaranth_private.py fails with a message naming the symbol if the method is
missing, its signature changed, the installed version is not one of these, or the
patched conversion no longer has the expected form; :func:`check` runs the first two
checks again each time the patch is installed, so a conversion never silently falls back
to the 16 Ki-statement form.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from typing import Iterator

import amaranth
from amaranth.back import rtlil

__all__ = ["CHECKED_VERSIONS", "PATCHED_SYMBOL", "AmaranthPrivateApiError", "check",
           "zero_memories_without_init"]

#: the Amaranth versions this module (and its test) was checked with
CHECKED_VERSIONS = ("0.5.10",)
#: the private symbol replaced while a zero_memories_without_init block is open
PATCHED_SYMBOL = "amaranth.back.rtlil.ModuleEmitter.emit_memory"
#: its parameters, as checked
_EXPECTED_PARAMS = ("self", "cell_idx", "cell")


class AmaranthPrivateApiError(RuntimeError):
    """The private Amaranth API this module relies on is not what it was checked with."""


def _fail(what: str) -> AmaranthPrivateApiError:
    return AmaranthPrivateApiError(
        f"{PATCHED_SYMBOL} (private Amaranth API, checked with Amaranth "
        f"{', '.join(CHECKED_VERSIONS)}; installed: {amaranth.__version__}): {what}. "
        "Update flow/amaranth_private.py for this Amaranth, or pin a checked version.")


def check() -> None:
    """Raise :class:`AmaranthPrivateApiError` (naming the symbol) unless the private
    method exists with the checked signature."""
    emitter = getattr(rtlil, "ModuleEmitter", None)
    if emitter is None:
        raise _fail("amaranth.back.rtlil.ModuleEmitter no longer exists")
    method = _ORIGINAL if _installed_count else getattr(emitter, "emit_memory", None)
    if method is None or not callable(method):
        raise _fail("the method no longer exists")
    params = tuple(inspect.signature(method).parameters)
    if params != _EXPECTED_PARAMS:
        raise _fail(f"its signature changed: parameters {params}, expected {_EXPECTED_PARAMS}")


_lock = threading.Lock()
_local = threading.local()
_installed_count = 0          # open blocks, all threads (guarded by _lock)
_ORIGINAL = None              # Amaranth's own method while installed


def _emit_memory_unless_zero(self, cell_idx, cell):
    if not getattr(_local, "depth", 0) or any(cell.init):
        _ORIGINAL(self, cell_idx, cell)


@contextlib.contextmanager
def zero_memories_without_init() -> Iterator[None]:
    """Within the block (in this thread), Amaranth's RTLIL backend (and so
    ``amaranth.back.verilog.convert``) writes no initial contents for memories whose
    contents are all zero; other memories keep theirs. Reentrant and thread-safe."""
    global _installed_count, _ORIGINAL
    with _lock:
        if _installed_count == 0:
            check()
            _ORIGINAL = rtlil.ModuleEmitter.emit_memory
            rtlil.ModuleEmitter.emit_memory = _emit_memory_unless_zero
        _installed_count += 1
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1
        with _lock:
            _installed_count -= 1
            if _installed_count == 0:
                rtlil.ModuleEmitter.emit_memory = _ORIGINAL
                _ORIGINAL = None
