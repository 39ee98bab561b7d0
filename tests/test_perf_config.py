"""Bad hardware / workload files: one-line ConfigError naming the file, the key and the
problem; the CLI exits with status 2."""

import re

import pytest

from sim_models.perf.config_io import CONFIG_DIR
from sim_models.perf.hardware import load_hardware
from sim_models.perf.workloads import load_workloads
from contract.spec import ConfigError
from t3.cli import main

HW_TEXT = (CONFIG_DIR / "hardware_paper.toml").read_text()
WL_TEXT = (CONFIG_DIR / "workloads_paper.toml").read_text()


def _edit(text, old_line_re, new_line):
    new, n = re.subn(old_line_re, new_line, text, count=1, flags=re.M)
    assert n == 1, old_line_re
    return new


HW_CASES = [
    # (substitution regex, replacement, key named, problem text)
    (r"^hbm_bandwidth_GBps = .*$", "hbm_bandwidth_GBps = -5", "gpu.hbm_bandwidth_GBps", "must be in"),
    (r"^compute_units = .*$", 'compute_units = "eighty"', "gpu.compute_units", "must be an integer"),
    (r"^compute_units = .*$", "compute_units = 80.5", "gpu.compute_units", "must be an integer"),
    (r"^latency_ns = .*$", "", "link.latency_ns", "missing key"),
    (r"^bandwidth_GBps = .*$", "bandwidth_GBps = 150\nbandwith_GBps = 3", "link.bandwith_GBps", "unknown key"),
    (r"^nmc_update_cost = .*$", "nmc_update_cost = true", "t3.nmc_update_cost", "must be a number"),
    (r"^comm_cus = .*$", "comm_cus = 80", "software_overlap.comm_cus", "must be in"),
    (r"^\[link\]$", "[lnk]", "lnk", "unknown key"),
]


#: (loader, its `t3 model` option, the shipped text) per kind of file
FILE_KINDS = {"hardware": (load_hardware, "--config", HW_TEXT),
              "workloads": (load_workloads, "--workloads", WL_TEXT)}
BAD_FILES = [("hardware", *c) for c in HW_CASES]      # WL_CASES are added below


def _check_bad_file(tmp_path, capsys, kind, pat, rep, key, problem):
    """The edited file fails to load with one line naming the file, the key and the
    problem, and `t3 model` given it exits 2 with that line on stderr."""
    loader, option, text = FILE_KINDS[kind]
    f = tmp_path / f"{kind}.toml"
    f.write_text(_edit(text, pat, rep))
    with pytest.raises(ConfigError) as e:
        loader(f)
    msg = str(e.value)
    assert "\n" not in msg and str(f) in msg and key in msg and problem in msg
    assert main(["model", option, str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(f) in err and key in err


def test_mca_threshold_above_queue_depth(tmp_path):
    f = tmp_path / "hw.toml"
    f.write_text(HW_TEXT.replace("[software_overlap]",
                                 "mem_queue_depth = 8\nmca_queue_threshold = 9\n\n[software_overlap]"))
    with pytest.raises(ConfigError, match=r"t3\.mca_queue_threshold=9: must be in \[1, 8\]"):
        load_hardware(f)


def test_not_toml(tmp_path):
    f = tmp_path / "hw.toml"
    f.write_text("[gpu\ncompute_units = 80\n")
    with pytest.raises(ConfigError, match=re.escape(str(f)) + ": not valid TOML"):
        load_hardware(f)


WL_CASES = [
    (r"^hidden = 3072$", "hidden = 0", "model[0].hidden", "must be in"),
    (r"^tp = \[8, 16\]$", "tp = [8, 1]", "model[0].tp", "list of integers"),
    (r"^tp = \[8, 16\]$", 'tp = "8"', "model[0].tp", "list of integers"),
    (r"^micro_batch = .*$", "", "tokens.micro_batch", "missing key"),
    (r'^name = "OP".*$', 'name = "OP"\nk_per_hiden = 1', "sublayer[0].k_per_hiden", "unknown key"),
    (r'^name = "T-NLG".*$', 'name = "Mega-GPT-2"', "model[1].name", "duplicate"),
]


BAD_FILES += [("workloads", *c) for c in WL_CASES]


@pytest.mark.parametrize("kind,pat,rep,key,problem", BAD_FILES,
                         ids=[f"{c[0]}:{c[3]}:{c[4]}" for c in BAD_FILES])
def test_bad_config_file(tmp_path, capsys, kind, pat, rep, key, problem):
    _check_bad_file(tmp_path, capsys, kind, pat, rep, key, problem)


def test_shipped_files_load():
    hw, wl = load_hardware(), load_workloads()
    assert hw.gpu.compute_units == 80 and hw.link.bandwidth_GBps == 150
    assert [m.name for m in wl.models] == ["Mega-GPT-2", "T-NLG", "GPT-3", "PALM", "MT-NLG"]
    assert wl.tokens == 8192
