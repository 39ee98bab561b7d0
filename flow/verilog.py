"""Verilog generation: one function every generator (CLI, tests, reports) goes through."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Iterable

from amaranth.back import verilog

from .amaranth_private import zero_memories_without_init

_REPO = Path(__file__).resolve().parent.parent


def to_verilog(component, name: str) -> str:
    """Convert an Amaranth component to Verilog text with named ports and no machine
    paths (``emit_src=False``). Identical modules are written once
    (:func:`dedupe_modules`).

    Memories whose initial contents are all zero (every ``lib.memory.Memory`` here:
    the compute memory, FIFOs) get a one-line zeroing loop instead of one statement per
    word (see :func:`flow.amaranth_private.zero_memories_without_init`)."""
    with zero_memories_without_init():
        text = verilog.convert(component, name=name, emit_src=False)
    return dedupe_modules(_add_zero_loops(time_zero_trigger(text)))


# --------------------------------------------------------------------------------------
# Combinational blocks at time 0
#
# Why: Yosys writes every combinational process as `always @*` with a dummy read of a
# trigger register declared `reg \$auto$verilog_backend...$N = 0;`, meant to run each
# block once at time 0. Icarus applies a declaration's initial value without an event,
# so a block whose inputs keep their initial values (registers equal to their reset
# value, constant inputs) is never run and its outputs stay X until an input changes:
# in the DRAM ring under Icarus such X conditions changed the schedule (a fused run of
# 734 cycles where Verilator, which settles all logic at time 0, gave 814). An `initial`
# assignment is an event (X -> 0) that wakes every `always @*` reading the trigger.
# Verilator and Yosys read it as the same initial value.
# --------------------------------------------------------------------------------------

_TRIGGER_DECL_RE = re.compile(r"^( *)reg (\\\$auto\$verilog_backend\S* ) = 0;$", re.M)


def time_zero_trigger(text: str) -> str:
    """Declare Yosys' time-0 trigger registers without an initialiser and set them in an
    ``initial`` statement, so that Icarus runs every combinational block at time 0."""
    return _TRIGGER_DECL_RE.sub(lambda m: f"{m.group(1)}reg {m.group(2)};\n"
                                          f"{m.group(1)}initial {m.group(2)}= 0;", text)


# --------------------------------------------------------------------------------------
# All-zero memory initialisers
#
# Why: Amaranth gives every memory explicit initial contents and Yosys writes them as one
# `mem[i] = W'h0;` per word: for the 16 Ki-line compute memory, minutes of conversion and
# of Verilator compilation (flow/amaranth_private.py has the numbers). The zeroing loop
# has the same meaning for every simulator and for Yosys.
#
# How: during conversion, flow.amaranth_private.zero_memories_without_init has the RTLIL
# emitter leave out the initial contents of memories whose contents are all zero (only
# those; other memories keep theirs), so the memory reaches Verilog without an `initial`
# block; _add_zero_loops then gives every memory without one a loop. That context
# manager is the project's one use of private Amaranth API (tests/test_amaranth_private.py
# fails loudly if Amaranth changes under it).
# --------------------------------------------------------------------------------------

_MEM_DECL_RE = re.compile(r"^( *)reg \[(\d+):0\] (\\\S+ |[A-Za-z_][\w$]*) \[(\d+):0\];\n", re.M)
_LOOP_VAR = "t3_zero_init_"


def _add_zero_loops(text: str) -> str:
    """Give every memory declared without an ``initial`` block of its own a zeroing
    loop (declared right after the memory; the loop variable is unique in the file)."""
    counter = iter(range(1 << 30))

    def loop(m: re.Match) -> str:
        indent, msb, mem, top = m.group(1), int(m.group(2)), m.group(3), int(m.group(4))
        init_stmt = f"{indent}initial begin\n{indent}  {mem}[0] ="
        if text.startswith(init_stmt, m.end()):
            return m.group(0)
        var = f"{_LOOP_VAR}{next(counter)}"
        return (f"{m.group(0)}{indent}integer {var};\n"
                f"{indent}initial for ({var} = 0; {var} <= {top}; {var} = {var} + 1)"
                f" {mem}[{var}] = {msb + 1}'h0;\n")

    return _MEM_DECL_RE.sub(loop, text)


#: the zero initialisers to_verilog writes: the loop above, or Yosys' word-by-word form
_ZERO_INIT_RE = re.compile(
    r"^ *integer (" + _LOOP_VAR + r"\d+);\n *initial for \(\1 = 0; [^\n]*'h0;\n"
    r"|^ *initial begin\n(?: *\\?[\w$.]+\[\d+\] = \d+'h0+;\n)+ *end\n", re.M)


def strip_zero_memory_init(text: str) -> str:
    """Drop the all-zero initial contents of memories (for synthesis: an SRAM or a block
    RAM has no reset contents, so they change no area, but Yosys would spend minutes
    expanding 16 Ki-word initialisers)."""
    return _ZERO_INIT_RE.sub("", text)


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
    module under hw/ (the test environment's hardware included), the contract it reads,
    this post-processing module and the Amaranth patch it applies
    (flow/amaranth_private.py); ``extra`` files are hashed after them (e.g. a flow's own
    scripts, so that its cache is invalidated when they change)."""
    h = hashlib.sha256()
    here = Path(__file__).resolve()
    for p in sorted((_REPO / "hw").rglob("*.py")) + sorted((_REPO / "contract").rglob("*.py")) \
            + [here, here.with_name("amaranth_private.py")] + [Path(e) for e in extra]:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------------------
# Identical modules
#
# Why: Amaranth writes one Verilog module per component *instance* (`t3_ring.unit2.mem.
# alu.lane17`), so a 4-device ring with 32-lane memories carries 128 copies of the
# FloatAdder and 4 of every unit block. Verilator inlines every module used once, which
# turns the ring into one flat model whose C++ takes tens of minutes to compile; with
# the copies merged, a module used many times stays a module compiled once. Instance
# names (and so every hierarchical path) are unchanged; only module names are shared:
# the kept module is the first one in the file (e.g. `t3_ring.unit0.mem.alu.lane1`
# serves lane 1-31 of every unit).
# --------------------------------------------------------------------------------------

_MODULE_RE = re.compile(r"^module (\\\S+ |[A-Za-z_][\w$]*)\(", re.M)
_INSTANCE_RE = re.compile(r"^( +)(\\\S+ |[A-Za-z_][\w$]*) +(\\\S+ |[A-Za-z_][\w$]*) \($", re.M)


#: Yosys' generated names carry a file-wide counter (`\$auto$verilog_backend.cc:2355:
#: dump_module$4 `): two copies differ in it, so the comparison numbers them per module
_AUTO_NAME_RE = re.compile(r"\\\$auto\$\S*\$\d+ ")


class _Numbering:
    """re.sub callback: the k-th distinct match becomes `@k`."""

    def __init__(self):
        self.seen: dict[str, str] = {}

    def __call__(self, m: re.Match) -> str:
        return self.seen.setdefault(m.group(0), f"@{len(self.seen)} ")


def verilog_identifier(name: str) -> str:
    """``name`` as a Verilog identifier: as is when plain, else escaped (``\\name ``, the
    trailing space ends it; Amaranth's hierarchical module names contain dots)."""
    return name if re.fullmatch(r"[A-Za-z_][\w$]*", name) else f"\\{name} "


def _module_name(token: str) -> str:
    return token[1:-1] if token.startswith("\\") else token


def dedupe_modules(text: str) -> str:
    """Merge modules whose text is the same up to their own name and the names of the
    (already merged) modules they instantiate; rewrite the instances to the kept one."""
    starts = [m.start() for m in _MODULE_RE.finditer(text)]
    if len(starts) < 2:
        return text
    # each module owns the attribute lines written before it: cut at the end of the
    # previous `endmodule`
    cuts = [0] + [text.index("endmodule\n", a) + len("endmodule\n") for a in starts]
    preamble, chunks = text[:cuts[0]], [text[cuts[i]:cuts[i + 1]] for i in range(len(starts))]
    tail = text[cuts[-1]:]
    names = [_module_name(_MODULE_RE.search(c).group(1)) for c in chunks]
    by_name = dict(zip(names, chunks))
    canonical: dict[str, str] = {}
    seen: dict[str, str] = {}

    def rename_children(chunk: str) -> str:
        def sub(m: re.Match) -> str:
            child = _module_name(m.group(2))
            if child not in by_name:          # a primitive or an external module
                return m.group(0)
            new = resolve(child)
            return f"{m.group(1)}{verilog_identifier(new)} {m.group(3)} ("
        return _INSTANCE_RE.sub(sub, chunk)

    bodies: dict[str, str] = {}

    def resolve(name: str) -> str:
        if name in canonical:
            return canonical[name]
        body = rename_children(by_name[name])
        bodies[name] = body
        header = _MODULE_RE.search(body)
        key = _AUTO_NAME_RE.sub(_Numbering(), body[:header.start(1)] + "@SELF(" + body[header.end():])
        canonical[name] = seen.setdefault(key, name)
        return canonical[name]

    kept = [n for n in names if resolve(n) == n]
    uses = {n: sum(canonical[c] == n for c in names) for n in kept}
    return "".join([preamble] + [_no_inline(bodies[n]) if uses[n] > 1 else bodies[n]
                                 for n in kept] + [tail])


def _no_inline(chunk: str) -> str:
    """Ask Verilator to keep a shared module a module (compiled once) rather than inline
    each instance (a metacomment: a plain comment to every other tool)."""
    end = chunk.index(");\n", _MODULE_RE.search(chunk).end()) + 3
    return chunk[:end] + "  /* verilator no_inline_module */\n" + chunk[end:]
