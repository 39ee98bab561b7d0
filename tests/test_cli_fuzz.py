"""Bad-input campaign for the `t3` command line (issue #8, part 4).

Contract for every malformed input (t3/cli.py): exit status 2, exactly one line on
stderr, starting with "t3" and containing "error:", and never a traceback.

Three sources of cases, all distinct:
- derived: for every subcommand present (and every `t3 report` part), every typed
  option gets values that its type must reject (non-integer, negative, zero, fraction
  out of range, malformed tile), every choice option an unknown choice, plus an unknown
  option; so a subcommand added later is covered without editing this file;
- hand-written: out-of-range values that only the run-time checks catch, malformed
  T3 config TOML files, malformed trace directories (`t3 golden --trace`), malformed
  hardware/workload files (`t3 model`);
- seeded random mutations of a valid trace header and config file (bounded), where the
  command may also succeed (exit 0) but must never print a traceback.

Cases run in process (t3.cli.main); a few run `.venv/bin/t3` as a subprocess to check
the contract end to end.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from t3.cli import COMMANDS, build_parser, main

REPO = Path(__file__).resolve().parent.parent
T3_EXE = REPO / ".venv" / "bin" / "t3"
SEED = int(os.environ.get("T3_FUZZ_SEED", "1234"))

#: a small valid trace: 2 devices, 16x16 fp16, 8-byte lines
TRACE_ARGS = ["trace", "--devices", "2", "--m", "16", "--n", "16", "--k", "8",
              "--wg-tile", "8x8", "--wf-tile", "4x4", "--cus", "2", "--line-bytes", "8"]


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """t3.cli.main(argv) in process: (status, stdout, stderr). An exception escaping
    main() is a traceback: reported as status None with the exception text."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(argv))
        except SystemExit as e:            # argparse's own exits (e.g. --help)
            status = e.code
        except BaseException as e:         # noqa: BLE001 - that is the bug we look for
            import traceback
            return None, out.getvalue(), "Traceback (escaped main):\n" + traceback.format_exc() + repr(e)
    return status, out.getvalue(), err.getvalue()


def check_contract(argv: list[str], status, stderr: str) -> None:
    where = f"t3 {' '.join(map(str, argv))}"
    assert "Traceback" not in stderr, f"{where}: traceback:\n{stderr}"
    lines = stderr.splitlines()
    assert status == 2, f"{where}: exit status {status} (want 2); stderr:\n{stderr}"
    assert len(lines) == 1, f"{where}: {len(lines)} stderr lines (want 1):\n{stderr}"
    assert lines[0].startswith("t3") and "error:" in lines[0], f"{where}: bad message: {lines[0]!r}"


# ---- derived cases: every option of every subcommand present ----------------------

#: type function name -> values it must reject
BAD_VALUES = {
    "positive_int": ["abc", "-3", "0", "1.5", ""],
    "nonneg_int": ["xyz", "-1", "2.5"],
    "tile_arg": ["8x", "0x8", "axb", "8x8x8", "-8x8", "8"],
    "_fraction": ["nan?", "1", "-0.1", "1.5"],
    "_positive_float": ["fast", "0", "-1"],
    "_read_rate": ["lots", "-0.25", "1.5", "nan", "inf", "0.0001"],
}

def _subparsers(parser: argparse.ArgumentParser, prefix: list[str]):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + [name], sub
                yield from _subparsers(sub, prefix + [name])


def derived_cases() -> list[tuple[str, list[str]]]:
    cases = []
    for path, sub in _subparsers(build_parser(), []):
        cases.append((f"{'-'.join(path)}:unknown-option", path + ["--bogus-option", "1"]))
        for action in sub._actions:
            if not action.option_strings or action.option_strings[0] in ("-h", "--help"):
                continue
            opt = action.option_strings[-1]
            if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
                cases.append((f"{'-'.join(path)}:{opt}=bad-choice", path + [f"{opt}=no-such-choice"]))
            tname = getattr(action.type, "__name__", None)
            for v in BAD_VALUES.get(tname, []):
                cases.append((f"{'-'.join(path)}:{opt}={v!r}", path + [f"{opt}={v}"]))
        # an option given without its value
        valued = [a for a in sub._actions if a.option_strings and a.nargs is None]
        if valued:
            cases.append((f"{'-'.join(path)}:missing-value", path + [valued[-1].option_strings[-1]]))
    return cases


DERIVED = derived_cases()


def test_derived_cases_cover_every_subcommand():
    """The derived list follows the parser: every subcommand present has cases."""
    present = {p[0] for p, _ in _subparsers(build_parser(), [])}
    covered = {argv[0] for _, argv in DERIVED}
    assert present and present == covered
    assert len({tuple(a) for _, a in DERIVED}) == len(DERIVED)


@pytest.mark.parametrize("argv", [a for _, a in DERIVED], ids=[i for i, _ in DERIVED])
def test_derived_bad_argument(argv):
    status, _, err = run_cli(argv)
    check_contract(argv, status, err)


# ---- files: configs, traces, hardware/workloads ------------------------------------

GOOD_T3_TOML = "[t3]\ndtype = \"fp16\"\nline_bytes = 8\n"

BAD_T3_TOML = {
    "syntax": "[t3\nline_bytes = 8\n",
    "syntax-value": "[t3]\nline_bytes = = 8\n",
    "unknown-key": "[t3]\nline_byte = 8\n",
    "wrong-type": "[t3]\nline_bytes = \"eight\"\n",
    "bool-for-int": "[t3]\ntracker_entries = true\n",
    "out-of-range": "[t3]\nline_bytes = 100000\n",
    "not-pow2": "[t3]\nline_bytes = 12\n",
    "negative": "[t3]\ntracker_entries = -4\n",
    "bad-dtype": "[t3]\ndtype = \"fp8\"\n",
    "bad-policy": "[t3]\narbiter_policy = \"lottery\"\n",
    "lanes-vs-line-bytes": "[t3]\ndtype = \"fp32\"\nlanes = 4\nline_bytes = 8\n",
    "lanes-zero": "[t3]\nlanes = 0\n",
    "t3-not-table": "t3 = 5\n",
    "binary": "\x00\x01\x02garbage\xff",
}

BAD_HARDWARE_TOML = {
    "hw-syntax": "[gpu\ncompute_units = 80\n",
    "hw-unknown-table": "[gpu]\ncompute_units = 80\n[warp_drive]\nx = 1\n",
    "hw-wrong-type": "[gpu]\ncompute_units = \"many\"\n",
    "hw-out-of-range": "[gpu]\ncompute_units = 0\n",
    "hw-empty": "",
}

BAD_WORKLOADS_TOML = {
    "wl-syntax": "[tokens\n",
    "wl-unknown-key": "[tokens]\nsequence_length = 2048\nmicro_batch = 1\nwarp = 3\n",
    "wl-bad-tp": "[tokens]\nsequence_length = 2048\nmicro_batch = 1\n"
                 "[[model]]\nname = \"x\"\nhidden = 1024\ntp = [1]\n",
    "wl-empty": "",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Every malformed file of the campaign, plus one valid trace directory."""
    root = tmp_path_factory.mktemp("fuzz")
    paths = {}
    for table in (BAD_T3_TOML, BAD_HARDWARE_TOML, BAD_WORKLOADS_TOML):
        for name, text in table.items():
            p = root / f"{name}.toml"
            p.write_bytes(text.encode("latin-1"))
            paths[name] = p
    (root / "good.toml").write_text(GOOD_T3_TOML)
    paths["good-toml"] = root / "good.toml"
    paths["missing"] = root / "does-not-exist.toml"
    paths["dir"] = root / "a-directory"
    paths["dir"].mkdir()
    good = root / "trace-good"
    status, _, err = run_cli(TRACE_ARGS + ["--out", str(good)])
    assert status == 0, err
    paths["trace-good"] = good
    for name, mutate in TRACE_MUTATIONS.items():
        d = root / f"trace-{name}"
        shutil.copytree(good, d)
        mutate(d)
        paths[f"trace-{name}"] = d
    return paths


def _edit_header(fn):
    def mutate(d: Path) -> None:
        h = json.loads((d / "trace.json").read_text())
        fn(h)
        (d / "trace.json").write_text(json.dumps(h))
    return mutate


def _edit_npz(fn):
    """Rewrite device0.npz with fn(arrays) applied."""
    import numpy as np

    def mutate(d: Path) -> None:
        with np.load(d / "device0.npz") as z:
            arrays = {k: z[k].copy() for k in z.files}
        fn(arrays)
        np.savez(d / "device0.npz", **arrays)
    return mutate


def _truncate(d: Path) -> None:
    p = d / "device0.npz"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _corrupt(d: Path) -> None:
    p = d / "device1.npz"
    b = bytearray(p.read_bytes())
    for i in range(40, len(b), 97):
        b[i] ^= 0x5A
    p.write_bytes(bytes(b))


def _time_backwards(a):
    a["time"][len(a["time"]) // 2] = 0
    a["time"][-1] = 0


def _addr_out_of_range(a):
    a["addr"][3] = 0xFFFFFFF0


TRACE_MUTATIONS = {
    "truncated-npz": _truncate,
    "corrupt-npz": _corrupt,
    "deleted-npz": lambda d: (d / "device1.npz").unlink(),
    "npz-is-dir": lambda d: ((d / "device1.npz").unlink(), (d / "device1.npz").mkdir()),
    "no-header": lambda d: (d / "trace.json").unlink(),
    "header-not-json": lambda d: (d / "trace.json").write_text("{not json"),
    "header-list": lambda d: (d / "trace.json").write_text("[1, 2]"),
    "wrong-format": _edit_header(lambda h: h.__setitem__("format", "csv")),
    "wrong-version": _edit_header(lambda h: h.__setitem__("version", 99)),
    "missing-version": _edit_header(lambda h: h.pop("version")),
    "missing-config": _edit_header(lambda h: h.pop("config")),
    "missing-gemm": _edit_header(lambda h: h.pop("gemm")),
    "config-bad-key": _edit_header(lambda h: h["config"].__setitem__("warp", 1)),
    "gemm-devices-string": _edit_header(lambda h: h["gemm"].__setitem__("devices", "two")),
    "time-not-monotonic": _edit_npz(_time_backwards),
    "addr-out-of-range": _edit_npz(_addr_out_of_range),
    "missing-array": _edit_npz(lambda a: a.pop("wf_id")),
    "extra-array": _edit_npz(lambda a: a.__setitem__("bogus", a["op"])),
    "bad-op": _edit_npz(lambda a: a["op"].__setitem__(0, 7)),
    "short-array": _edit_npz(lambda a: a.__setitem__("route", a["route"][:-1])),
}


def hand_cases() -> list[tuple[str, list[str]]]:
    """(id, argv) with {name} placeholders replaced by the files fixture's paths."""
    trace_small = TRACE_ARGS[1:]
    c = [
        ("no-command-unknown", ["frobnicate"]),
        ("trace:missing-required", ["trace", "--m", "16"]),
        ("trace:huge-devices", ["trace", "--devices", "100000", "--m", "16", "--n", "16",
                                "--k", "8", "--out", "{tmp}/x"]),
        ("trace:line-bytes-6", ["trace", *trace_small[:-2], "--line-bytes", "6",
                                                     "--out", "{tmp}/x"]),
        ("trace:line-bytes-2-fp32", ["trace", *trace_small[:-2], "--dtype", "fp32",
                                           "--line-bytes", "2", "--out", "{tmp}/x"]),
        ("trace:wf-bigger-than-wg", ["trace", "--devices", "2", "--m", "16", "--n", "16", "--k", "8",
                                     "--wg-tile", "4x4", "--wf-tile", "8x8", "--out", "{tmp}/x"]),
        ("trace:huge-out-base", ["trace", *trace_small, "--out-base", str(1 << 40), "--out", "{tmp}/x"]),
        ("trace:n-not-multiple-of-lanes", ["trace", "--devices", "4", "--m", "16", "--n", "16", "--k", "3",
                               "--wg-tile", "8x8", "--wf-tile", "4x4", "--out", "{tmp}/x"]),
        ("trace:out-is-file", ["trace", *trace_small, "--out", "{good-toml}"]),
        ("trace:out-under-file", ["trace", *trace_small, "--out", "{good-toml}/sub"]),
        ("sim:devices-1", ["sim", "--devices", "1"]),
        ("sim:devices-9", ["sim", "--devices", "9"]),
        ("sim:devices-huge", ["sim", "--devices", str(10 ** 30)]),
        ("sim:modes-unknown", ["sim", "--modes", "t3,turbo"]),
        ("sim:modes-empty", ["sim", "--modes", ","]),
        ("sim:link-bw-over-1", ["sim", "--link-bw", "4"]),
        ("sim:line-bytes-12", ["sim", "--line-bytes", "12"]),
        ("sim:tracker-huge", ["sim", "--tracker-entries", str(1 << 40)]),
        ("sim:workdir-is-file", ["sim", "--devices", "2", "--m", "16", "--n", "16", "--k", "8",
                                 "--wg-tile", "8x8", "--wf-tile", "4x4", "--workdir", "{good-toml}"]),
        ("verilog:unknown-design", ["verilog", "--design", "no_such_block", "--out", "{tmp}/v"]),
        ("bench:unknown-size", ["bench", "--sizes", "gigantic"]),
        ("bench:unknown-sim", ["bench", "--sim", "modelsim"]),
        ("bench:empty-sizes", ["bench", "--sizes", ","]),
        ("bench:out-is-dir", ["bench", "--sizes", "small", "--sim", "icarus", "--out", "{dir}"]),
        ("report:unknown-part", ["report", "speed"]),
        ("report:area-unknown-design", ["report", "--out", "{tmp}/r", "area", "--design", "nope"]),
        ("golden:trace-missing", ["golden", "--trace", "{tmp}/no-such-trace"]),
        ("golden:trace-is-file", ["golden", "--trace", "{good-toml}"]),
        ("golden:trace-empty-dir", ["golden", "--trace", "{dir}"]),
        ("model:config-missing", ["model", "--config", "{missing}"]),
        ("model:config-dir", ["model", "--config", "{dir}"]),
        ("model:workloads-missing", ["model", "--workloads", "{missing}"]),
        ("model:plot-is-file", ["model", "--plot", "{good-toml}"]),
        ("model:t3-config-as-hardware", ["model", "--config", "{good-toml}"]),
    ]
    for name in BAD_T3_TOML:
        c.append((f"trace:config-{name}", ["trace", *trace_small, "--config", f"{{{name}}}",
                                            "--out", "{tmp}/x"]))
    for name in ("syntax", "unknown-key", "lanes-vs-line-bytes"):
        c.append((f"verilog:config-{name}", ["verilog", "--list", "--config", f"{{{name}}}"]))
        c.append((f"report:config-{name}", ["report", "--out", "{tmp}/r", "--config", f"{{{name}}}"]))
    for name in ("missing", "dir"):
        c.append((f"trace:config-{name}", ["trace", *trace_small, "--config", f"{{{name}}}",
                                            "--out", "{tmp}/x"]))
        c.append((f"verilog:config-{name}", ["verilog", "--list", "--config", f"{{{name}}}"]))
    for name in BAD_HARDWARE_TOML:
        c.append((f"model:config-{name}", ["model", "--config", f"{{{name}}}"]))
    for name in BAD_WORKLOADS_TOML:
        c.append((f"model:workloads-{name}", ["model", "--workloads", f"{{{name}}}"]))
    for name in TRACE_MUTATIONS:
        c.append((f"golden:{name}", ["golden", "--trace", f"{{trace-{name}}}"]))
    return c


HAND = hand_cases()


def _subst(argv: list[str], files: dict, tmp: Path) -> list[str]:
    table = {k: str(v) for k, v in files.items()} | {"tmp": str(tmp)}
    return [a.format(**table) for a in argv]


def _present(argv: list[str]) -> bool:
    """Hand-written cases of a subcommand not built yet are skipped, not failed."""
    names = {p[0] for p, _ in _subparsers(build_parser(), [])}
    return argv[0] not in COMMANDS or argv[0] in names


@pytest.mark.parametrize("argv", [a for _, a in HAND], ids=[i for i, _ in HAND])
def test_hand_written_bad_input(argv, files, tmp_path):
    if not _present(argv):
        pytest.skip(f"t3 {argv[0]} not present")
    argv = _subst(argv, files, tmp_path)
    status, _, err = run_cli(argv)
    check_contract(argv, status, err)


def test_campaign_size():
    """The issue asks for >= 50 distinct malformed inputs."""
    distinct = {tuple(a) for _, a in DERIVED} | {tuple(a) for _, a in HAND}
    assert len(distinct) >= 50, len(distinct)


def test_good_trace_passes(files):
    """Control: the unmutated trace directory is accepted (so the cases above fail for
    their mutation, not for a broken fixture)."""
    status, out, err = run_cli(["golden", "--trace", str(files["trace-good"])])
    assert status == 0 and "PASS" in out, err


# ---- seeded random mutations --------------------------------------------------------

def _random_value(rng: random.Random):
    return rng.choice([None, -1, 0, 1, 3, 2 ** 40, 1.5, "x", "", True, [], {}, [1, 2], "fp16"])


def _mutate_json(obj, rng: random.Random):
    """One random edit somewhere in a JSON document (delete, replace or add a key)."""
    if isinstance(obj, dict) and obj:
        key = rng.choice(sorted(obj))
        r = rng.random()
        if r < 0.25:
            obj.pop(key)
        elif r < 0.5 or not isinstance(obj[key], (dict, list)):
            obj[key] = _random_value(rng)
        else:
            _mutate_json(obj[key], rng)
    elif isinstance(obj, list) and obj:
        i = rng.randrange(len(obj))
        if isinstance(obj[i], (dict, list)) and rng.random() < 0.7:
            _mutate_json(obj[i], rng)
        else:
            obj[i] = _random_value(rng)


def test_random_trace_header_mutations(files, tmp_path):
    """Seeded: random edits of the trace header; `t3 golden` must either accept the
    result (exit 0) or refuse it with the one-line error (exit 2); never a traceback."""
    rng = random.Random(SEED)
    print(f"T3_FUZZ_SEED={SEED}")
    good = json.loads((files["trace-good"] / "trace.json").read_text())
    refused = 0
    for i in range(24):
        h = json.loads(json.dumps(good))
        for _ in range(rng.randint(1, 3)):
            _mutate_json(h, rng)
        d = tmp_path / f"t{i}"
        shutil.copytree(files["trace-good"], d)
        (d / "trace.json").write_text(json.dumps(h))
        argv = ["golden", "--trace", str(d)]
        status, _, err = run_cli(argv)
        if status != 0:
            check_contract(argv + [f"(mutation {i}, seed {SEED})"], status, err)
            refused += 1
    assert refused > 0


def test_random_config_mutations(files, tmp_path):
    """Seeded: random key/value edits of a T3 config; `t3 verilog --list --config`
    loads it first, so it must succeed or refuse with the one-line error."""
    from contract.spec import DEFAULT_CONFIG
    rng = random.Random(SEED + 1)
    base = DEFAULT_CONFIG.to_dict()
    refused = 0
    for i in range(30):
        d = dict(base)
        key = rng.choice(sorted(d) + ["lanes", "nonsense"])
        d[key] = _random_value(rng)
        lines = ["[t3]"]
        for k, v in d.items():
            if v is None:
                continue
            lines.append(f"{k} = {json.dumps(v) if not isinstance(v, dict) else '{}'}")
        p = tmp_path / f"c{i}.toml"
        p.write_text("\n".join(lines) + "\n")
        argv = ["verilog", "--list", "--config", str(p)]
        status, _, err = run_cli(argv)
        if status != 0:
            check_contract(argv + [f"(mutation {i}, seed {SEED + 1}: {key}={d[key]!r})"], status, err)
            refused += 1
    assert refused > 0


# ---- end to end: the installed entry point -------------------------------------------

E2E = [
    ["sim", "--wg-tile", "8x"],
    ["trace", "--m", "0", "--n", "16", "--k", "8", "--out", "unused"],
    ["model", "--config", "{syntax}"],
    ["golden", "--trace", "{trace-truncated-npz}"],
]


@pytest.mark.skipif(not T3_EXE.exists(), reason="no .venv/bin/t3")
@pytest.mark.parametrize("argv", E2E, ids=[a[0] for a in E2E])
def test_subprocess_contract(argv, files, tmp_path):
    argv = _subst(argv, files, tmp_path)
    p = subprocess.run([str(T3_EXE), *argv], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path)
    check_contract(argv, p.returncode, p.stderr)
    assert p.stdout == ""
