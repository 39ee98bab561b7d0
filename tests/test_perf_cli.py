"""`t3 model`: the --json schema (one row per model x TP x sublayer x configuration), the
table, sweeps and plots, and one-line errors with exit status 2."""

import json

import pytest

from t3.cli import main

MODELS_TP = {"Mega-GPT-2": (8, 16), "T-NLG": (8, 16), "GPT-3": (32,), "PALM": (32,),
             "MT-NLG": (32,)}
SUBLAYERS = ("OP", "FC2", "FC1_bwd", "IP_bwd")
CONFIGS = ("sequential", "sw_overlap", "sw_overlap_16", "ideal", "nmc_rs", "t3", "t3_mca")


def _run(capsys, *argv):
    rc = main(["model", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def doc():
    import io
    import contextlib
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["model", "--json"]) == 0
    return json.loads(buf.getvalue())


def test_json_rows_cover_the_paper_sweep(doc):
    rows = doc["rows"]
    want = {(m, tp, s, c) for m, tps in MODELS_TP.items() for tp in tps
            for s in SUBLAYERS for c in CONFIGS}
    got = [(r["model"], r["tp"], r["sublayer"], r["config"]) for r in rows]
    assert len(got) == len(set(got)) == len(want) == 7 * 4 * 7
    assert set(got) == want


def test_json_row_fields(doc):
    rows = doc["rows"]
    seq = {(r["model"], r["tp"], r["sublayer"]): r for r in rows if r["config"] == "sequential"}
    for r in rows:
        assert isinstance(r["tp"], int) and not isinstance(r["tp"], bool)
        for k in ("time_us", "speedup"):
            assert isinstance(r[k], float) and r[k] > 0
        for k in ("dram_read_bytes", "dram_write_bytes"):
            assert isinstance(r[k], int) and r[k] > 0
        s = seq[(r["model"], r["tp"], r["sublayer"])]
        assert r["speedup"] == pytest.approx(s["time_us"] / r["time_us"], rel=1e-9)
        # the reported DRAM bytes are the GEMM + reduce-scatter parts
        assert r["dram_read_bytes"] == pytest.approx(
            r["gemm_dram_read_bytes"] + r["rs_dram_read_bytes"], abs=2)
        assert r["dram_write_bytes"] == pytest.approx(
            r["gemm_dram_write_bytes"] + r["rs_dram_write_bytes"], abs=2)
    assert all(r["speedup"] == 1.0 for r in seq.values())


def test_json_summary(doc):
    h = doc["summary"]["headline"]
    assert set(h["paper"]) == set(h["model"])
    assert doc["summary"]["sets"]["500B"] == ["PALM", "MT-NLG"]


def test_table_and_summary_text(capsys):
    rc, out, err = _run(capsys)
    assert rc == 0 and err == ""
    assert "Mega-GPT-2" in out and "MT-NLG" in out and "Headline" in out
    table, rest = out.split("Speedup over sequential", 1)
    assert len([l for l in table.splitlines() if " IP_bwd " in l]) == 7
    # the per-sublayer picture (paper set: 2 models x 2 TPs) and the end-to-end projection
    # (7 model/TP pairs x training and inference)
    picture, e2e = rest.split("End-to-end projection", 1)
    assert len([l for l in picture.splitlines() if " IP_bwd " in l]) == 4
    rows = [l.split() for l in e2e.splitlines()[2:]]
    assert sorted(r[2] for r in rows if len(r) == 10) == ["inference"] * 7 + ["training"] * 7


@pytest.mark.parametrize("name", ["tp", "link-bw", "tokens", "compute2x"])
def test_sweeps_json(capsys, name):
    rc, out, _ = _run(capsys, "--sweep", name, "--json")
    assert rc == 0
    d = json.loads(out)
    assert d["sweep"] == name and len(d["entries"]) >= 3
    for e in d["entries"]:
        assert e["ideal_geomean_pct"] >= e["t3_mca_geomean_pct"] - 1e-9


def test_link_sweep_ideal_speedup_at_150_matches_table(capsys):
    _, out, _ = _run(capsys, "--sweep", "link-bw", "--json")
    e = {x["value"]: x for x in json.loads(out)["entries"]}[150]
    _, out2, _ = _run(capsys, "--json")
    s = json.loads(out2)["summary"]["ideal"]["all"]["speedup"]
    assert e["ideal_geomean_pct"] == pytest.approx(s["geomean_pct"])


def test_plots_are_pngs(capsys, tmp_path):
    rc, out, _ = _run(capsys, "--plot", str(tmp_path / "figs"))
    assert rc == 0
    for name in ("speedup.png", "data_movement.png"):
        data = (tmp_path / "figs" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_tokens_override(capsys):
    rc, out, _ = _run(capsys, "--json", "--tokens", "1024")
    assert rc == 0
    assert {r["tokens"] for r in json.loads(out)["rows"]} == {1024}


@pytest.mark.parametrize("argv,needle", [
    (["--sweep", "nope"], "argument --sweep: invalid choice: 'nope'"),
    (["--tokens", "0"], "argument --tokens: '0' must be >= 1"),
    (["--tokens", "8", "--bogus"], "unrecognized arguments: --bogus"),
    (["--config", "/nonexistent/hw.toml"], "/nonexistent/hw.toml: cannot read"),
    (["--workloads", "/nonexistent/wl.toml"], "/nonexistent/wl.toml: cannot read"),
    (["--plot", "/dev/null"], "--plot /dev/null"),
])
def test_bad_arguments_exit_2_one_line(capsys, argv, needle):
    rc, out, err = _run(capsys, *argv)
    assert rc == 2 and out == ""
    # argparse's errors too carry the command's name (README: `t3 <command>: error:`)
    assert err.count("\n") == 1 and err.startswith("t3 model: error: ") and needle in err, err


def test_fused_ag_extension_rows(capsys):
    rc, out, _ = _run(capsys, "--json", "--fused-ag")
    assert rc == 0
    rows = json.loads(out)["rows"]
    assert len(rows) == 7 * 4 * 8
    by = {(r["model"], r["tp"], r["sublayer"], r["config"]): r for r in rows}
    for (m, tp, s, c), r in by.items():
        if c != "t3_mca_fused_ag":
            continue
        mca = by[(m, tp, s, "t3_mca")]
        assert r["time_us"] <= mca["time_us"] + 1e-9
        # the link of each device must still carry the RS and the AG chunks: 2 (n-1) C
        chunk = r["tokens"] * r["hidden"] * 2 / tp
        assert r["time_us"] >= 2 * (tp - 1) * chunk / 150e9 * 1e6
        assert r["time_us"] >= mca["gemm_us"]
        assert r["dram_read_bytes"] == mca["dram_read_bytes"]


@pytest.mark.parametrize("name", ["contention", "sweep_compute2x"])
def test_figure_writes_png_and_csv(capsys, tmp_path, name):
    rc, out, _ = _run(capsys, "--figure", name, "--plot", str(tmp_path))
    assert rc == 0
    assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / f"{name}.csv").read_text().count("\n") >= 3
