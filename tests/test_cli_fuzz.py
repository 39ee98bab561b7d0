"""Bad-input campaign for the `t3` command line (issues #8 part 4, #18 item 6).

Contract for every malformed input (t3/cli.py, README "Usage"): exit status 2, exactly
one line on stderr, ``t3 <command>: error: <message>`` (``t3: error:`` only when no valid
command is named), never a traceback; and the message names the injected fault: the
option and the rejected value, or the file and the field inside it. Every case below
says which words its message must contain, so a case refused for another reason than
its own fault fails the test.

Four sources of cases, all distinct:
- derived from the parser, for every subcommand present (and every `t3 report` part),
  so a subcommand or option added later is covered without editing this file: an
  unknown option, an option without its value, an unknown choice for every choice
  option, and rejected values for every typed option (each type function's whole list
  of bad values once, then one value per further option of that type). The required
  options get valid values (REQUIRED_VALID), so the injected fault is the only one;
- hand-written command lines: out-of-range values only the run-time checks catch;
- file contents: malformed T3 config TOML (syntax, unknown key, wrong type, out of
  range, NaN/inf), malformed trace directories for `t3 golden --trace` (header fields,
  programming, and the ``.npz`` arrays: missing, extra, wrong dtype, wrong shape, NaN in
  an integer field, bad values, truncated / corrupt / foreign archives), malformed
  hardware/workload files for `t3 model`;
- seeded random mutations of a valid trace header and config file (bounded), where the
  command may also succeed (exit 0) but, when it refuses, names the file.

Every case fails during validation, before any simulator or synthesis tool runs.
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
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from t3.cli import COMMANDS, build_parser, main

REPO = Path(__file__).resolve().parent.parent
T3_EXE = REPO / ".venv" / "bin" / "t3"
SEED = int(os.environ.get("T3_FUZZ_SEED", "1234"))

#: a small valid trace: 2 devices, 16x16 fp16, 8-byte lines (4 lanes), 64 lines/device
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


def _command_names() -> set[str]:
    return {p[0] for p, _ in _subparsers(build_parser(), [])}


def check_contract(argv: list[str], status, stderr: str, needles=()) -> str:
    """The error contract, and the message's content: every string of ``needles``
    (option, value, file, field, problem) appears in it. Returns the message."""
    where = f"t3 {' '.join(map(str, argv))}"
    assert "Traceback" not in stderr, f"{where}: traceback:\n{stderr}"
    lines = stderr.splitlines()
    assert status == 2, f"{where}: exit status {status} (want 2); stderr:\n{stderr}"
    assert len(lines) == 1, f"{where}: {len(lines)} stderr lines (want 1):\n{stderr}"
    command = argv[0] if argv and argv[0] in _command_names() else None
    prefix = f"t3 {command}: error: " if command else "t3: error: "
    assert lines[0].startswith(prefix), f"{where}: want the prefix {prefix!r}: {lines[0]!r}"
    message = lines[0][len(prefix):]
    missing = [n for n in needles if n not in message]
    assert not missing, (f"{where}: the message does not name {missing} (refused for "
                         f"another reason than the injected fault?): {lines[0]!r}")
    return message


# ---- derived cases: every option of every subcommand present ----------------------

#: type function name -> values it must reject (test_bad_values_are_rejected_by_their_type)
BAD_VALUES = {
    "positive_int": ["abc", "-3", "0", "1.5", ""],
    "nonneg_int": ["xyz", "-1", "2.5"],
    "tile_arg": ["8x", "0x8", "axb", "8x8x8", "-8x8", "8"],
    "_fraction": ["nan?", "1", "-0.1", "1.5"],
    "_positive_float": ["fast", "0", "-1"],
    "_read_rate": ["lots", "-0.25", "1.5", "nan", "inf"],
}

#: a value the parser accepts for every required option: the derived cases give them, so
#: that the injected fault is the only one (a new required option must be added here)
REQUIRED_VALID = {"--m": "16", "--n": "16", "--k": "8", "--out": "unused-dir",
                  "--trace": "unused-dir"}

UNKNOWN_OPTION = "--bogus-option=1"


def _subparsers(parser: argparse.ArgumentParser, prefix: list[str]):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + [name], sub
                yield from _subparsers(sub, prefix + [name])


def _required(sub: argparse.ArgumentParser, but: str | None = None) -> list[str]:
    """The required options of ``sub`` (except ``but``) with valid values."""
    argv = []
    for a in sub._actions:
        if a.required and a.option_strings and a.option_strings[-1] != but:
            opt = a.option_strings[-1]
            assert opt in REQUIRED_VALID, f"{sub.prog}: add a valid {opt} to REQUIRED_VALID"
            argv += [opt, REQUIRED_VALID[opt]]
    return argv


def derived_cases() -> list[tuple[str, list[str], list[str], str]]:
    """(id, argv, needles, kind); kind is 'type' for a case of an argparse type function,
    else 'parser'."""
    cases = []
    options_of_type: dict[str, int] = {}
    for path, sub in _subparsers(build_parser(), []):
        name = "-".join(path)
        # the unknown option is the only fault: required options given, and the
        # --opt=value form (a separate "1" would be taken for a positional, e.g. PART)
        cases.append((f"{name}:unknown-option", path + _required(sub) + [UNKNOWN_OPTION],
                      [f"unrecognized arguments: {UNKNOWN_OPTION}"], "parser"))
        for action in sub._actions:
            if not action.option_strings or action.option_strings[0] in ("-h", "--help"):
                continue
            opt = action.option_strings[-1]
            shown = "/".join(action.option_strings)          # argparse's name for it
            base = path + _required(sub, but=opt)
            if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
                cases.append((f"{name}:{opt}=bad-choice", base + [f"{opt}=no-such-choice"],
                              [f"argument {shown}: invalid choice: 'no-such-choice'"], "parser"))
            tname = getattr(action.type, "__name__", None)
            if tname in BAD_VALUES:
                values = BAD_VALUES[tname]
                seen = options_of_type.get(tname, 0)
                options_of_type[tname] = seen + 1
                # a type's whole list once, then one value per further option (rotating)
                for v in values if seen == 0 else [values[seen % len(values)]]:
                    cases.append((f"{name}:{opt}={v!r}", base + [f"{opt}={v}"],
                                  [f"argument {shown}: {v!r}"], "type"))
        # an option given without its value
        valued = [a for a in sub._actions if a.option_strings and a.nargs is None]
        if valued:
            opt = valued[-1].option_strings[-1]
            cases.append((f"{name}:missing-value", path + _required(sub, but=opt) + [opt],
                          [f"argument {'/'.join(valued[-1].option_strings)}: expected one argument"],
                          "parser"))
    return cases


DERIVED = derived_cases()


def test_derived_cases_cover_every_subcommand():
    """The derived list follows the parser: every subcommand present has cases, and
    every typed or choice option at least one bad value."""
    parser = build_parser()
    present = {p[0] for p, _ in _subparsers(parser, [])}
    covered = {argv[0] for _, argv, _, _ in DERIVED}
    assert present and present == covered
    assert len({tuple(a) for _, a, _, _ in DERIVED}) == len(DERIVED)
    for path, sub in _subparsers(parser, []):
        for a in sub._actions:
            if a.option_strings and (getattr(a.type, "__name__", None) in BAD_VALUES
                                     or (a.choices and not isinstance(a, argparse._SubParsersAction))):
                opt = a.option_strings[-1]
                assert any(i.startswith(f"{'-'.join(path)}:{opt}=") for i, *_ in DERIVED), opt


def test_bad_values_are_rejected_by_their_type():
    """Each derived bad value is refused by the type function itself (a value the type
    accepts would reach the command and fail, if at all, for some other reason)."""
    types = {}
    for _, sub in _subparsers(build_parser(), []):
        for a in sub._actions:
            if getattr(a.type, "__name__", None) in BAD_VALUES:
                types[a.type.__name__] = a.type
    assert set(types) == set(BAD_VALUES), "a type of BAD_VALUES is no longer used: drop it"
    for name, values in BAD_VALUES.items():
        for v in values:
            with pytest.raises(argparse.ArgumentTypeError):
                types[name](v)


@pytest.mark.parametrize("argv,needles", [(a, n) for _, a, n, _ in DERIVED],
                         ids=[i for i, *_ in DERIVED])
def test_derived_bad_argument(argv, needles):
    status, _, err = run_cli(argv)
    check_contract(argv, status, err, needles)


# ---- files: configs, traces, hardware/workloads ------------------------------------

GOOD_T3_TOML = "[t3]\ndtype = \"fp16\"\nline_bytes = 8\n"

#: name -> (TOML text, words the message must contain besides the file's path)
BAD_T3_TOML = {
    "syntax": ("[t3\nline_bytes = 8\n", ["not valid TOML", "line 1"]),
    "syntax-value": ("[t3]\nline_bytes = = 8\n", ["not valid TOML", "line 2"]),
    "unknown-key": ("[t3]\nline_byte = 8\n", ["line_byte=8", "unknown key"]),
    "wrong-type": ("[t3]\nline_bytes = \"eight\"\n", ["line_bytes='eight'", "integer"]),
    "list-for-int": ("[t3]\nline_bytes = [8]\n", ["line_bytes=[8]", "integer"]),
    "float-for-int": ("[t3]\ntracker_entries = 8.0\n", ["tracker_entries=8.0", "integer"]),
    "bool-for-int": ("[t3]\ntracker_entries = true\n", ["tracker_entries=True", "integer"]),
    "out-of-range": ("[t3]\nline_bytes = 100000\n", ["line_bytes=100000", "[4, 256]"]),
    "not-pow2": ("[t3]\nline_bytes = 12\n", ["line_bytes=12", "power of two"]),
    "negative": ("[t3]\ntracker_entries = -4\n", ["tracker_entries=-4"]),
    "nan": ("[t3]\nlink_lines_per_cycle = nan\n", ["link_lines_per_cycle=nan"]),
    "inf": ("[t3]\nclock_ghz = inf\n", ["clock_ghz=inf"]),
    "bad-dtype": ("[t3]\ndtype = \"fp8\"\n", ["dtype='fp8'", "fp16"]),
    "bad-policy": ("[t3]\narbiter_policy = \"lottery\"\n", ["arbiter_policy='lottery'"]),
    "bad-memory": ("[t3]\nmemory = \"hbm9\"\n", ["memory='hbm9'"]),
    "dram-not-table": ("[t3]\ndram = 5\n", ["dram=5"]),
    "dram-unknown-key": ("[t3.dram]\nbogus = 1\n", ["dram: bogus=1", "unknown key"]),
    "dram-out-of-range": ("[t3.dram]\nt_rcd = -3\n", ["dram: t_rcd=-3"]),
    "lanes-vs-line-bytes": ("[t3]\ndtype = \"fp32\"\nlanes = 4\nline_bytes = 8\n",
                            ["lanes=4", "line_bytes=8"]),
    "lanes-zero": ("[t3]\nlanes = 0\n", ["lanes=0"]),
    "t3-not-table": ("t3 = 5\n", ["[t3] must be a table"]),
    "binary": ("\x00\x01\x02garbage\xff", ["not UTF-8"]),
}

BAD_HARDWARE_TOML = {
    "hw-syntax": ("[gpu\ncompute_units = 80\n", ["not valid TOML"]),
    "hw-unknown-table": ("[gpu]\ncompute_units = 80\n[warp_drive]\nx = 1\n",
                         ["warp_drive", "unknown key"]),
    "hw-wrong-type": ("[gpu]\ncompute_units = \"many\"\n", ["gpu.compute_units='many'"]),
    "hw-out-of-range": ("[gpu]\ncompute_units = 0\n", ["gpu.compute_units=0"]),
    "hw-empty": ("", ["[gpu]", "missing"]),
}

BAD_WORKLOADS_TOML = {
    "wl-syntax": ("[tokens\n", ["not valid TOML"]),
    "wl-unknown-key": ("[tokens]\nsequence_length = 2048\nmicro_batch = 1\nwarp = 3\n",
                       ["tokens.warp=3", "unknown key"]),
    "wl-bad-tp": ("[tokens]\nsequence_length = 2048\nmicro_batch = 1\n"
                  "[[model]]\nname = \"x\"\nhidden = 1024\ntp = [1]\n", ["model[0].tp=[1]"]),
    "wl-empty": ("", ["[tokens]", "missing"]),
}

#: the paper's hardware/workload files with one value replaced: (file, line, new line, needles)
PAPER_EDITS = {
    "hw-nan": ("hardware_paper.toml", "hbm_bandwidth_GBps = 1000",
               "hbm_bandwidth_GBps = nan", ["gpu.hbm_bandwidth_GBps=nan"]),
    "hw-inf": ("hardware_paper.toml", "mfma_efficiency = 0.8", "mfma_efficiency = inf",
               ["gpu.mfma_efficiency=inf"]),
    "wl-float-hidden": ("workloads_paper.toml", "hidden = 3072", "hidden = 3072.5",
                        ["model[0].hidden=3072.5", "integer"]),
}



def _edit_header(fn):
    def mutate(d: Path) -> None:
        h = json.loads((d / "trace.json").read_text())
        fn(h)
        (d / "trace.json").write_text(json.dumps(h))
    return mutate


def _edit_npz(fn, device: int = 0):
    """Rewrite device<device>.npz with fn(arrays) applied."""
    def mutate(d: Path) -> None:
        with np.load(d / f"device{device}.npz") as z:
            arrays = {k: z[k].copy() for k in z.files}
        fn(arrays)
        np.savez(d / f"device{device}.npz", **arrays)
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


def _bad_crc(d: Path) -> None:
    """Flip one byte of the first member's data (time.npy: a 38-byte zip entry header,
    the 128-byte .npy header, then 64 x 8 data bytes): the archive opens, the array does
    not (CRC)."""
    p = d / "device0.npz"
    b = bytearray(p.read_bytes())
    b[200] ^= 0xFF
    p.write_bytes(bytes(b))


def _npy_as_npz(d: Path) -> None:
    with open(d / "device0.npz", "wb") as f:
        np.save(f, np.arange(4, dtype=np.uint64))


def _set(name: str, fn):
    return lambda a: a.__setitem__(name, fn(a[name]))


def _time_backwards(a):
    a["time"][len(a["time"]) // 2] = 0
    a["time"][-1] = 0


def _time_nan(t):
    t = t.astype(np.float64)
    t[3] = np.nan
    return t


def _data_nan_float(x):
    x = x.view(np.float16).copy()
    x[0, 0] = np.nan
    return x


def _poke(name: str, index: int, value):
    def fn(a):
        a[name][index] = value(a[name]) if callable(value) else value
    return fn


def _set_region(key: str, value):
    return _edit_header(lambda h: h["programs"][0]["regions"][0].__setitem__(key, value))


H, D0, D1 = "trace.json", "device0.npz", "device1.npz"

#: name -> (mutation of a copy of the valid trace directory, the file the message must
#: name, the words it must contain). The valid trace has 2 devices, 64 requests of 4
#: lanes each, fp16, 4 workgroups.
TRACE_MUTATIONS = {
    # the archives themselves
    "truncated-npz": (_truncate, D0, ["not a readable .npz file"]),
    "empty-npz": (lambda d: (d / D0).write_bytes(b""), D0, ["not a readable .npz file"]),
    "corrupt-npz": (_corrupt, D1, []),
    "bad-crc": (_bad_crc, D0, ["time: cannot load the array", "CRC"]),
    "npy-as-npz": (_npy_as_npz, D0, ["not a .npz archive"]),
    "deleted-npz": (lambda d: (d / D1).unlink(), D1, ["cannot read: file not found"]),
    "npz-is-dir": (lambda d: ((d / D1).unlink(), (d / D1).mkdir()), D1, ["directory"]),
    # the arrays: set, dtype, shape, values
    "missing-array": (_edit_npz(lambda a: a.pop("wf_id")), D0, ["wf_id: missing array"]),
    "extra-array": (_edit_npz(lambda a: a.__setitem__("bogus", a["op"])), D0,
                    ["bogus: unknown array"]),
    "object-array": (_edit_npz(_set("time", lambda t: np.array(list(t), dtype=object))), D0,
                     ["time: cannot load the array", "Object arrays"]),
    "data-float16": (_edit_npz(_set("data", lambda x: x.view(np.float16))), D0,
                     ["data: dtype float16: must be uint16"]),
    "data-float-nan": (_edit_npz(_set("data", _data_nan_float)), D0,
                       ["data: dtype float16: must be uint16"]),
    "time-float-nan": (_edit_npz(_set("time", _time_nan)), D0,
                       ["time: dtype float64: must be uint64"]),
    "addr-int64": (_edit_npz(_set("addr", lambda x: x.astype(np.int64)), device=1), D1,
                   ["addr: dtype int64: must be uint32"]),
    "data-1d": (_edit_npz(_set("data", lambda x: x[:, 0].copy())), D0,
                ["data: shape (64,)", "2 dimension"]),
    "data-lanes": (_edit_npz(_set("data", lambda x: x[:, :-1].copy())), D0,
                   ["data: shape (64, 3)", "lanes=4"]),
    "time-2d": (_edit_npz(_set("time", lambda x: x[:, None].copy())), D0,
                ["time: shape (64, 1)", "1 dimension"]),
    "short-array": (_edit_npz(_set("route", lambda x: x[:-1])), D0,
                    ["route: length 63", "(64)"]),
    "time-not-monotonic": (_edit_npz(_time_backwards), D0,
                           ["time: must be non-decreasing", "request 32"]),
    "addr-out-of-range": (_edit_npz(_poke("addr", 3, 0xFFFFFFF0)), D0,
                          ["addr: value 4294967280", "request 3"]),
    "addr-duplicate": (_edit_npz(_poke("addr", 1, lambda a: a[0])), D0,
                       ["addr: line", "stored 2 times"]),
    "bad-op": (_edit_npz(_poke("op", 0, 7)), D0, ["op: value 7"]),
    "bad-route": (_edit_npz(_poke("route", 5, 2), device=1), D1, ["route: value 2", "request 5"]),
    "wg-id-range": (_edit_npz(_poke("wg_id", 0, 999)), D0, ["wg_id: value 999", "4 workgroups"]),
    "wf-id-wrong": (_edit_npz(_poke("wf_id", 0, lambda a: a[0] ^ 1)), D0, ["wf_id: value"]),
    # the header
    "no-header": (lambda d: (d / H).unlink(), H, ["cannot read"]),
    "header-not-json": (lambda d: (d / H).write_text("{not json"), H, ["not valid JSON"]),
    "header-empty": (lambda d: (d / H).write_text(""), H, ["not valid JSON"]),
    "header-binary": (lambda d: (d / H).write_bytes(b"\xff\xfe\x00"), H, ["not UTF-8"]),
    "header-list": (lambda d: (d / H).write_text("[1, 2]"), H, ["must be a JSON object"]),
    "wrong-format": (_edit_header(lambda h: h.__setitem__("format", "csv")), H, ["format='csv'"]),
    "wrong-version": (_edit_header(lambda h: h.__setitem__("version", 99)), H, ["version=99"]),
    "missing-version": (_edit_header(lambda h: h.pop("version")), H, ["version: missing field"]),
    "missing-config": (_edit_header(lambda h: h.pop("config")), H, ["config: missing field"]),
    "missing-gemm": (_edit_header(lambda h: h.pop("gemm")), H, ["gemm: missing field"]),
    "fuse-not-bool": (_edit_header(lambda h: h.__setitem__("fuse_allgather", "yes")), H,
                      ["fuse_allgather: must be a JSON bool"]),
    "config-bad-key": (_edit_header(lambda h: h["config"].__setitem__("warp", 1)), H,
                       ["config: warp=1: unknown key"]),
    "config-nan": (_edit_header(lambda h: h["config"].__setitem__("link_lines_per_cycle",
                                                                  float("nan"))), H,
                   ["config: link_lines_per_cycle=nan"]),
    "config-line-bytes": (_edit_header(lambda h: h["config"].__setitem__("line_bytes", 12)), H,
                          ["config: line_bytes=12", "power of two"]),
    "config-ring-devices": (_edit_header(lambda h: h["config"].__setitem__("ring_devices", 3)), H,
                            ["ring_devices=3", "devices=2"]),
    "gemm-devices-string": (_edit_header(lambda h: h["gemm"].__setitem__("devices", "two")), H,
                            ["gemm: devices='two'"]),
    "gemm-m-nan": (_edit_header(lambda h: h["gemm"].__setitem__("m", float("nan"))), H,
                   ["gemm: m=nan"]),
    "gemm-layout": (_edit_header(lambda h: h["gemm"].__setitem__("layout", "diag")), H,
                    ["gemm: layout='diag'"]),
    "gemm-dtype": (_edit_header(lambda h: h["gemm"].__setitem__("dtype", "fp32")), H,
                   ["dtype='fp16'", "gemm dtype='fp32'"]),
    "devices-short": (_edit_header(lambda h: h["devices"].pop()), H,
                      ["devices: 1 entries", "one per device (2)"]),
    "devices-entry-string": (_edit_header(lambda h: h["devices"].__setitem__(0, D0)), H,
                             ["devices[0]: must be a JSON object"]),
    "requests-mismatch": (_edit_header(lambda h: h["devices"][0].__setitem__("requests", 5)), D0,
                          ["64 requests", "header says 5"]),
    "requests-negative": (_edit_header(lambda h: h["devices"][1].__setitem__("requests", -1)), H,
                          ["devices[1]: requests=-1"]),
    "file-not-plain": (_edit_header(lambda h: h["devices"][0].__setitem__("file", "../x.npz")), H,
                       ["devices[0]: file='../x.npz'", "plain file name"]),
    "program-device": (_edit_header(lambda h: h["programs"][1].__setitem__("device", 0)), H,
                       ["programs[1]: device=0"]),
    "program-not-object": (_edit_header(lambda h: h["programs"].__setitem__(0, [])), H,
                           ["programs[0]: must be a JSON object"]),
    "regions-not-list": (_edit_header(lambda h: h["programs"][0].__setitem__("regions", 3)), H,
                         ["programs[0]: regions: must be a list"]),
    "region-not-object": (_edit_header(lambda h: h["programs"][0]["regions"].__setitem__(0, 3)), H,
                          ["programs[0] region 0: must be an object"]),
    "region-missing-base": (_edit_header(lambda h: h["programs"][0]["regions"][0].pop("base")), H,
                            ["programs[0] region 0: base: missing key"]),
    "region-base-string": (_set_region("base", "x"), H, ["programs[0]", "region 0: base='x'"]),
    "region-producer": (_set_region("producer", "TELEPORT"), H,
                        ["region 0: producer='TELEPORT'"]),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Every malformed file of the campaign, plus one valid trace directory."""
    root = tmp_path_factory.mktemp("fuzz")
    paths = {}
    for table in (BAD_T3_TOML, BAD_HARDWARE_TOML, BAD_WORKLOADS_TOML):
        for name, (text, _) in table.items():
            p = root / f"{name}.toml"
            p.write_bytes(text.encode("latin-1"))
            paths[name] = p
    configs = REPO / "sim_models" / "configs"
    for name, (fname, line, new, _) in PAPER_EDITS.items():
        text, n = re.subn(rf"(?m)^{re.escape(line)}(?=\s|$)", new, (configs / fname).read_text(),
                          count=1)
        assert n == 1, f"{fname}: no line {line!r} to edit"
        p = root / f"{name}.toml"
        p.write_text(text)
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
    for name, (mutate, _, _) in TRACE_MUTATIONS.items():
        d = root / f"trace-{name}"
        shutil.copytree(good, d)
        mutate(d)
        paths[f"trace-{name}"] = d
    return paths


def hand_cases() -> list[tuple[str, list[str], list[str]]]:
    """(id, argv, needles) with {name} placeholders replaced by the files fixture's
    paths ({tmp}: the test's temporary directory)."""
    trace_small = TRACE_ARGS[1:]
    trace_out = ["trace", *trace_small, "--out", "{tmp}/x"]
    c = [
        ("no-command-unknown", ["frobnicate"], ["invalid choice: 'frobnicate'"]),
        ("no-command-option", ["--frobnicate"], ["unrecognized arguments: --frobnicate"]),
        ("trace:missing-required", ["trace", "--m", "16"],
         ["the following arguments are required: --n, --k, --out"]),
        ("trace:huge-devices", ["trace", "--devices", "100000", "--m", "16", "--n", "16",
                                "--k", "8", "--out", "{tmp}/x"], ["--devices 100000"]),
        ("trace:line-bytes-6", ["trace", *trace_small[:-2], "--line-bytes", "6", "--out", "{tmp}/x"],
         ["line_bytes=6", "power of two"]),
        ("trace:line-bytes-2-fp32", ["trace", *trace_small[:-2], "--dtype", "fp32",
                                     "--line-bytes", "2", "--out", "{tmp}/x"], ["line_bytes=2"]),
        ("trace:wf-bigger-than-wg", ["trace", "--devices", "2", "--m", "16", "--n", "16", "--k", "8",
                                     "--wg-tile", "4x4", "--wf-tile", "8x8", "--out", "{tmp}/x"],
         ["wg_tile=(4, 4)", "wf_tile=(8, 8)"]),
        ("trace:huge-out-base", ["trace", *trace_small, "--out-base", str(1 << 40), "--out", "{tmp}/x"],
         [f"--out-base {1 << 40}", "mem_depth_lines"]),
        ("trace:n-not-multiple-of-lanes", ["trace", "--devices", "4", "--m", "16", "--n", "16",
                                           "--k", "3", "--wg-tile", "8x8", "--wf-tile", "4x4",
                                           "--out", "{tmp}/x"], ["n=16", "lanes=32"]),
        ("trace:out-is-file", ["trace", *trace_small, "--out", "{good-toml}"],
         ["--out {good-toml}: exists and is not a directory"]),
        ("trace:out-under-file", ["trace", *trace_small, "--out", "{good-toml}/sub"],
         ["--out {good-toml}/sub: cannot create"]),
        ("sim:devices-1", ["sim", "--devices", "1"], ["--devices=1", "2..8"]),
        ("sim:devices-9", ["sim", "--devices", "9"], ["--devices=9", "2..8"]),
        ("sim:devices-huge", ["sim", "--devices", str(10 ** 30)], [f"--devices={10 ** 30}"]),
        ("sim:modes-unknown", ["sim", "--modes", "t3,turbo"], ["--modes='turbo'"]),
        ("sim:modes-empty", ["sim", "--modes", ","], ["--modes", "empty"]),
        ("sim:link-bw-over-1", ["sim", "--link-bw", "4"], ["link_lines_per_cycle=4.0"]),
        ("sim:line-bytes-12", ["sim", "--line-bytes", "12"], ["line_bytes=12", "power of two"]),
        ("sim:tracker-huge", ["sim", "--tracker-entries", str(1 << 40)],
         [f"tracker_entries={1 << 40}"]),
        ("sim:workdir-is-file", ["sim", "--devices", "2", "--m", "16", "--n", "16", "--k", "8",
                                 "--wg-tile", "8x8", "--wf-tile", "4x4", "--workdir", "{good-toml}"],
         ["--workdir {good-toml}"]),
        ("verilog:unknown-design", ["verilog", "--design", "no_such_block", "--out", "{tmp}/v"],
         ["--design 'no_such_block': unknown"]),
        ("bench:unknown-size", ["bench", "--sizes", "gigantic"], ["--sizes='gigantic'"]),
        ("bench:unknown-sim", ["bench", "--sim", "modelsim"], ["--sim='modelsim'"]),
        ("bench:empty-sizes", ["bench", "--sizes", ","], ["--sizes", "empty"]),
        ("bench:out-is-dir", ["bench", "--sizes", "small", "--sim", "icarus", "--out", "{dir}"],
         ["--out {dir}"]),
        ("report:unknown-part", ["report", "speed"], ["invalid choice: 'speed'"]),
        ("report:area-unknown-design", ["report", "--out", "{tmp}/r", "area", "--design", "nope"],
         ["--design 'nope': unknown"]),
        ("report:area-negative-max-cells", ["report", "--out", "{tmp}/r", "area",
                                            "--fpga-max-cells", "-1"], ["--fpga-max-cells -1"]),
        ("report:out-is-file", ["report", "--out", "{good-toml}", "model"],
         ["--out {good-toml}: exists and is not a directory"]),
        ("golden:trace-missing", ["golden", "--trace", "{tmp}/no-such-trace"],
         ["{tmp}/no-such-trace/trace.json: cannot read"]),
        ("golden:trace-is-file", ["golden", "--trace", "{good-toml}"],
         ["{good-toml}/trace.json: cannot read"]),
        ("golden:trace-empty-dir", ["golden", "--trace", "{dir}"], ["{dir}/trace.json: cannot read"]),
        ("model:config-missing", ["model", "--config", "{missing}"], ["{missing}: cannot read"]),
        ("model:config-dir", ["model", "--config", "{dir}"], ["{dir}: cannot read"]),
        ("model:workloads-missing", ["model", "--workloads", "{missing}"], ["{missing}: cannot read"]),
        ("model:plot-is-file", ["model", "--plot", "{good-toml}"], ["--plot {good-toml}"]),
        ("model:t3-config-as-hardware", ["model", "--config", "{good-toml}"],
         ["{good-toml}: [gpu]: missing"]),
    ]
    for name, (_, needles) in BAD_T3_TOML.items():
        c.append((f"trace:config-{name}", trace_out + ["--config", f"{{{name}}}"],
                  [f"{{{name}}}: "] + needles))
    for name in ("syntax", "unknown-key", "lanes-vs-line-bytes", "nan"):
        needles = [f"{{{name}}}: "] + BAD_T3_TOML[name][1]
        c.append((f"verilog:config-{name}", ["verilog", "--list", "--config", f"{{{name}}}"], needles))
        c.append((f"report:config-{name}", ["report", "--out", "{tmp}/r", "--config", f"{{{name}}}"],
                  needles))
    for name in ("missing", "dir"):
        c.append((f"trace:config-{name}", trace_out + ["--config", f"{{{name}}}"],
                  [f"{{{name}}}: cannot read"]))
        c.append((f"verilog:config-{name}", ["verilog", "--list", "--config", f"{{{name}}}"],
                  [f"{{{name}}}: cannot read"]))
    for name, (_, needles) in BAD_HARDWARE_TOML.items():
        c.append((f"model:config-{name}", ["model", "--config", f"{{{name}}}"],
                  [f"{{{name}}}: "] + needles))
    for name, (_, needles) in BAD_WORKLOADS_TOML.items():
        c.append((f"model:workloads-{name}", ["model", "--workloads", f"{{{name}}}"],
                  [f"{{{name}}}: "] + needles))
    for name, (fname, _, _, needles) in PAPER_EDITS.items():
        opt = "--config" if fname.startswith("hardware") else "--workloads"
        c.append((f"model:{name}", ["model", opt, f"{{{name}}}"], [f"{{{name}}}: "] + needles))
    for name, (_, fname, needles) in TRACE_MUTATIONS.items():
        c.append((f"golden:{name}", ["golden", "--trace", f"{{trace-{name}}}"],
                  [f"{{trace-{name}}}/{fname}"] + needles))
    return c


HAND = hand_cases()


def _subst(argv: list[str], files: dict, tmp: Path) -> list[str]:
    table = {k: str(v) for k, v in files.items()} | {"tmp": str(tmp)}
    return [a.format(**table) for a in argv]


def _present(argv: list[str]) -> bool:
    """Hand-written cases of a subcommand not built yet are skipped, not failed."""
    return argv[0] not in COMMANDS or argv[0] in _command_names()


@pytest.mark.parametrize("argv,needles", [(a, n) for _, a, n in HAND], ids=[i for i, *_ in HAND])
def test_hand_written_bad_input(argv, needles, files, tmp_path):
    if not _present(argv):
        pytest.skip(f"t3 {argv[0]} not present")
    argv, needles = _subst(argv, files, tmp_path), _subst(needles, files, tmp_path)
    status, _, err = run_cli(argv)
    check_contract(argv, status, err, needles)


def test_campaign_size_and_balance():
    """The issue asks for >= 50 distinct malformed inputs; at most a third of them only
    exercise an argparse type function, and at least 40 mutate the contents of a file."""
    distinct = {tuple(a) for _, a, *_ in DERIVED} | {tuple(a) for _, a, _ in HAND}
    typed = [i for i, _, _, kind in DERIVED if kind == "type"]
    content_files = (set(BAD_T3_TOML) | set(BAD_HARDWARE_TOML) | set(BAD_WORKLOADS_TOML)
                     | set(PAPER_EDITS) | {f"trace-{n}" for n in TRACE_MUTATIONS})
    contents = [i for i, argv, _ in HAND if any(a.strip("{}") in content_files for a in argv)]
    print(f"{len(distinct)} distinct cases: {len(DERIVED)} derived ({len(typed)} of type "
          f"functions), {len(HAND)} hand-written ({len(contents)} on file contents)")
    assert len(distinct) == len(DERIVED) + len(HAND)
    assert len(distinct) >= 50
    assert len(typed) <= len(distinct) / 3
    assert len(contents) >= 40


def test_needles_are_specific():
    """Every case names what its message must contain, beyond the bare "error:" (a case
    with no words to find would pass for any refusal)."""
    for i, _, needles in HAND:
        assert needles, f"{i}: no words for the message to contain"
    for i, _, needles, _ in DERIVED:
        assert needles, f"{i}: no words for the message to contain"


def test_good_trace_passes(files):
    """Control: the unmutated trace directory is accepted (so the cases above fail for
    their mutation, not for a broken fixture)."""
    status, out, err = run_cli(["golden", "--trace", str(files["trace-good"])])
    assert status == 0 and "PASS" in out, err


def test_good_config_passes(files):
    """Control: the valid config the campaign's TOML cases are variants of is accepted."""
    status, out, err = run_cli(["verilog", "--list", "--config", str(files["good-toml"])])
    assert status == 0, err


def test_nan_bits_in_data_are_legal(files, tmp_path):
    """Control for the NaN cases: a NaN *bit pattern* in ``data`` (raw uint16 bits) is a
    legal value (T3's NaN policy, docs/fp.md), so the loader accepts it; NaN is refused
    only as a float in an integer field (time-float-nan, gemm-m-nan) or a range-checked
    float (config-nan)."""
    d = tmp_path / "nan-bits"
    shutil.copytree(files["trace-good"], d)
    _edit_npz(_poke("data", 0, lambda x: np.full(x.shape[1:], 0x7E01, x.dtype)))(d)
    from sim_models.trace import load_traces
    _, _, _, traces = load_traces(d)
    assert traces[0].data[0, 0] == 0x7E01


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
    result (exit 0) or refuse it with the one-line error naming the trace directory's
    header or one of its arrays (exit 2); never a traceback."""
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
            check_contract(argv + [f"(mutation {i}, seed {SEED})"], status, err, [f"{d}/"])
            refused += 1
    assert refused > 0


def test_random_npz_mutations(files, tmp_path):
    """Seeded: one random array of one device file gets a random dtype, shape or value
    (a NaN among them); `t3 golden` accepts it or names that file and that array."""
    rng = random.Random(SEED + 2)
    refused = 0
    for i in range(16):
        d = tmp_path / f"n{i}"
        shutil.copytree(files["trace-good"], d)
        dev, name = rng.randrange(2), rng.choice(["time", "wg_id", "wf_id", "addr", "op",
                                                   "route", "data"])
        kind = rng.choice(["dtype", "float-nan", "shape", "value", "drop-rows"])

        def edit(a, name=name, kind=kind):
            x = a[name]
            if kind == "dtype":
                a[name] = x.astype(rng.choice([np.int8, np.int64, np.uint16, np.float32]))
            elif kind == "float-nan":
                y = x.astype(np.float64)
                y.flat[rng.randrange(y.size)] = np.nan
                a[name] = y
            elif kind == "shape":
                a[name] = x.reshape(-1)[: x.size // 2 * 2].reshape(2, -1)
            elif kind == "value":
                x.flat[rng.randrange(x.size)] = rng.choice([0, 1, 3, np.iinfo(x.dtype).max])
            else:
                a[name] = x[: len(x) - rng.randint(1, 5)]
        _edit_npz(edit, device=dev)(d)
        argv = ["golden", "--trace", str(d)]
        status, _, err = run_cli(argv)
        if status != 0:
            # a dropped or reshaped array may be reported on the field compared with it
            needles = [f"{d}/device{dev}.npz: "]
            if kind in ("dtype", "float-nan"):
                needles.append(f"{name}: dtype")
            check_contract(argv + [f"(npz mutation {i}: device{dev} {name} {kind}, seed "
                                   f"{SEED + 2})"], status, err, needles)
            refused += 1
    assert refused > 0


def test_random_config_mutations(files, tmp_path):
    """Seeded: random key/value edits of a T3 config; `t3 verilog --list --config`
    loads it first, so it must succeed or refuse with the one-line error naming the file
    (and, for an unknown key, the key)."""
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
            needles = [f"{p}: "] + (["nonsense"] if key == "nonsense" else [])
            check_contract(argv + [f"(mutation {i}, seed {SEED + 1}: {key}={d[key]!r})"],
                           status, err, needles)
            refused += 1
    assert refused > 0


# ---- end to end: the installed entry point -------------------------------------------

E2E = [
    (["sim", "--wg-tile", "8x"], ["argument --wg-tile: '8x'"]),
    (["trace", "--m", "0", "--n", "16", "--k", "8", "--out", "unused"], ["argument --m: '0'"]),
    (["trace", "--m", "16", "--n", "16", "--k", "8", "--out", "unused", "--bogus"],
     ["unrecognized arguments: --bogus"]),
    (["model", "--config", "{hw-syntax}"], ["{hw-syntax}: not valid TOML"]),
    (["golden", "--trace", "{trace-truncated-npz}"], ["{trace-truncated-npz}/device0.npz"]),
]


@pytest.mark.skipif(not T3_EXE.exists(), reason="no .venv/bin/t3")
@pytest.mark.parametrize("argv,needles", E2E, ids=[" ".join(a[:2]) for a, _ in E2E])
def test_subprocess_contract(argv, needles, files, tmp_path):
    argv, needles = _subst(argv, files, tmp_path), _subst(needles, files, tmp_path)
    p = subprocess.run([str(T3_EXE), *argv], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path)
    check_contract(argv, p.returncode, p.stderr, needles)
    assert p.stdout == ""
