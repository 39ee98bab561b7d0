"""flow.amaranth_private, the project's one use of private Amaranth API: fails loudly,
naming the private symbol, if Amaranth changes under it (the symbol missing, its
signature changed, an unchecked version, or the patched conversion no longer of the
expected form), and the patch is applied only inside its context manager."""

import re
import threading

import amaranth
import pytest
from amaranth.back import verilog

from flow import amaranth_private as ap

from tests.two_memories import TwoMemories

SYMBOL = ap.PATCHED_SYMBOL


def _convert() -> str:
    return verilog.convert(TwoMemories(), name="two", emit_src=False)


def _initialised(text: str) -> set[str]:
    """Memories with a word-by-word ``initial`` block (Yosys' form)."""
    return set(re.findall(r"^ *initial begin\n *(\S+)\[0\] = ", text, re.M))


def _memories(text: str) -> set[str]:
    return set(re.findall(r"^ *reg \[\d+:0\] (\S+) \[\d+:0\];$", text, re.M))


def test_installed_amaranth_is_a_checked_version():
    assert amaranth.__version__ in ap.CHECKED_VERSIONS, (
        f"Amaranth {amaranth.__version__} is installed but flow/amaranth_private.py (which "
        f"patches the private {SYMBOL}) was checked only with {ap.CHECKED_VERSIONS}: run "
        "this test file and tests/test_verilog_postprocess.py, compare `t3 verilog` output "
        "with the previous version's, then add the version to CHECKED_VERSIONS")


def test_private_symbol_exists_with_its_signature():
    try:
        ap.check()
    except ap.AmaranthPrivateApiError as e:
        pytest.fail(str(e))


def test_patched_conversion_has_the_expected_form():
    """Amaranth alone writes both memories' contents word by word; inside the block the
    all-zero memory has none (flow.verilog adds the loop) and the ROM keeps its words."""
    plain = _convert()
    assert _memories(plain) == {"zero", "rom"}, (
        f"Amaranth's Verilog of two memories changed form (memories: {_memories(plain)}); "
        f"flow.verilog's post-processing of the output of {SYMBOL} needs a look")
    assert _initialised(plain) == {"zero", "rom"}, (
        f"without the patch of {SYMBOL}, expected both memories initialised word by word")
    with ap.zero_memories_without_init():
        patched = _convert()
    assert _memories(patched) == {"zero", "rom"}, patched
    assert _initialised(patched) == {"rom"}, (
        f"patched {SYMBOL} no longer leaves out the all-zero memory's contents (or drops "
        f"the ROM's): initialised memories {_initialised(patched)}, expected {{'rom'}}")
    assert "rom[5] = 8'h09;" in patched


def test_patch_is_only_active_inside_the_block():
    from amaranth.back import rtlil
    original = rtlil.ModuleEmitter.emit_memory
    with ap.zero_memories_without_init():
        assert rtlil.ModuleEmitter.emit_memory is not original
        with ap.zero_memories_without_init():          # reentrant
            pass
        assert rtlil.ModuleEmitter.emit_memory is not original
    assert rtlil.ModuleEmitter.emit_memory is original
    assert _initialised(_convert()) == {"zero", "rom"}


def test_patch_does_not_act_in_other_threads():
    """A conversion in another thread while a block is open keeps Amaranth's output."""
    results: dict[str, str] = {}
    inside, done = threading.Event(), threading.Event()

    def holder():
        with ap.zero_memories_without_init():
            inside.set()
            done.wait(60)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert inside.wait(60)
        results["other"] = _convert()
    finally:
        done.set()
        t.join()
    assert _initialised(results["other"]) == {"zero", "rom"}


def test_changed_signature_fails_loudly(monkeypatch):
    from amaranth.back import rtlil

    def emit_memory(self, cell_idx, cell, extra):       # a future Amaranth, say
        pass
    monkeypatch.setattr(rtlil.ModuleEmitter, "emit_memory", emit_memory)
    with pytest.raises(ap.AmaranthPrivateApiError, match=re.escape(SYMBOL) + ".*signature"):
        with ap.zero_memories_without_init():
            pass


def test_missing_symbol_fails_loudly(monkeypatch):
    from amaranth.back import rtlil
    monkeypatch.delattr(rtlil, "ModuleEmitter")
    with pytest.raises(ap.AmaranthPrivateApiError, match=re.escape(SYMBOL)):
        ap.check()
