"""Verilog generation: one function every generator (CLI, tests, reports) goes through."""

from __future__ import annotations

from pathlib import Path

from amaranth.back import verilog


def to_verilog(component, name: str) -> str:
    """Convert an Amaranth component to Verilog text with named ports and no machine
    paths (``emit_src=False``)."""
    return verilog.convert(component, name=name, emit_src=False)


def write_if_changed(path: str | Path, text: str) -> bool:
    """Write ``text`` only when it differs (Icarus rebuilds on mtime). Returns True when
    the file was written."""
    path = Path(path)
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True


def generate(component, name: str, out_dir: str | Path) -> Path:
    path = Path(out_dir) / f"{name}.v"
    write_if_changed(path, to_verilog(component, name))
    return path
