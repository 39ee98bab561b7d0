"""Verilog generation: one function every generator (CLI, tests, reports) goes through."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

from amaranth.back import verilog

_REPO = Path(__file__).resolve().parent.parent


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


def source_digest(extra: Iterable[str | Path] = ()) -> str:
    """Digest (16 hex digits) of the sources that determine generated Verilog: every
    module under hw/ and the spec files it reads; ``extra`` files are hashed after them
    (e.g. a flow's own scripts, so that its cache is invalidated when they change)."""
    sim = _REPO / "sim_models"
    h = hashlib.sha256()
    for p in sorted((_REPO / "hw").rglob("*.py")) + sorted(sim.glob("spec.py")) \
            + sorted(sim.glob("program.py")) + sorted(sim.glob("regmap.py")) + [Path(e) for e in extra]:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]
