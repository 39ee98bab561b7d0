"""FloatAdder in the Amaranth simulator: bit-exact against sim_models.fparith.add_bits on
the special-value cross product plus random pairs, for every format and stage count;
the latency; parameter errors; and proof that the checking can fail."""

import gc
import os
import warnings

import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable

from contract import latency
from hw.fp import STAGE_CUTS, FloatAdder
from sim_models import fparith
from contract.spec import DEFAULT_CONFIG, FORMATS, FP_ADDER_STAGES_MAX, ConfigError, T3Config
from tests.amaranth_util import run
from verif import fp_vectors as V

FMTS = tuple(FORMATS)
SEED = int(os.environ.get("T3_SEED", "2024"))
N_RANDOM = 1500


def simulate(fmt: str, stages: int, a, b, valid) -> tuple[np.ndarray, np.ndarray, int]:
    """Drive one (a, b, valid) per clock edge, then ``stages`` idle cycles. Returns the
    per-edge trace of (result_valid, result) as seen just after each edge, and the
    simulated adder's ``latency``."""
    dut = FloatAdder(fmt, stages=stages)
    n = len(valid)
    a, b, valid = (np.asarray(x).tolist() for x in (a, b, valid))
    rv, res = [], []

    async def bench(ctx):
        for i in range(n + stages):
            if i < n:
                ctx.set(dut.a, a[i])
                ctx.set(dut.b, b[i])
            ctx.set(dut.valid, valid[i] if i < n else 0)
            await ctx.tick()
            rv.append(ctx.get(dut.result_valid))
            res.append(ctx.get(dut.result))

    run(dut, bench, deadline_cycles=n + stages + 10)
    return np.array(rv), np.array(res, dtype=np.uint64), dut.latency


def _stimulus(fmt: str, seed: int, n_random: int):
    """Vectors spread over cycles with random idle gaps (garbage operands while idle)."""
    rng = np.random.default_rng(seed + 1)
    a, b = V.vectors(fmt, seed, n_random)
    f = FORMATS[fmt]
    n_cycles = len(a) + len(a) // 8
    valid = np.zeros(n_cycles, dtype=np.int64)
    valid[rng.choice(n_cycles, len(a), replace=False)] = 1
    da = rng.integers(0, 1 << f.width, n_cycles, dtype=np.uint64).astype(f.uint_dtype)
    db = rng.integers(0, 1 << f.width, n_cycles, dtype=np.uint64).astype(f.uint_dtype)
    da[valid == 1], db[valid == 1] = a, b
    return a, b, da, db, valid


@pytest.mark.parametrize("stages", sorted(STAGE_CUTS))
@pytest.mark.parametrize("fmt", FMTS)
def test_bit_exact_and_latency(fmt, stages):
    print(f"seed={SEED} (set T3_SEED to reproduce or vary)")
    a, b, da, db, valid = _stimulus(fmt, SEED, N_RANDOM)
    rv, res, lat = simulate(fmt, stages, da, db, valid)
    # latency: result_valid is valid delayed by exactly `latency` edges; the trace is
    # sampled after each edge, so input i (captured at edge i) shows at entry i+latency-1
    assert lat == stages
    assert not rv[:lat - 1].any()
    np.testing.assert_array_equal(rv[lat - 1:lat - 1 + len(valid)], valid)
    assert rv.sum() == len(a)
    err = V.check(fmt, a, b, res[rv == 1], seed=SEED)
    assert err is None, err


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")   # built for a property
def test_default_stages_come_from_the_spec():
    assert FloatAdder("fp16").latency == latency.fp_adder(DEFAULT_CONFIG) \
        == DEFAULT_CONFIG.fp_adder_stages
    gc.collect()      # Amaranth's elaboratables are reference cycles: gone while filtered


def test_supported_stages_match_the_spec_range():
    for s in range(0, FP_ADDER_STAGES_MAX + 3):
        try:
            T3Config(fp_adder_stages=s)
            spec_ok = True
        except ConfigError:
            spec_ok = False
        assert spec_ok == (s in STAGE_CUTS), s


@pytest.mark.parametrize("kw,msg", [
    (dict(fmt="fp8"), r"^FloatAdder: fmt='fp8': must be one of fp16, bf16, fp32$"),
    (dict(fmt="fp16", stages=0),
     rf"^FloatAdder: stages=0: must be an integer in \[1, {FP_ADDER_STAGES_MAX}\]$"),
    (dict(fmt="fp16", stages=FP_ADDER_STAGES_MAX + 1), rf"stages={FP_ADDER_STAGES_MAX + 1}"),
    (dict(fmt="fp16", stages=True), r"stages=True"),
    (dict(fmt="fp16", stages=2.0), r"stages=2.0"),
])
def test_bad_parameters_give_one_line_errors(kw, msg):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)   # the half-built object
        with pytest.raises(ConfigError, match=msg):
            FloatAdder(**kw)
        gc.collect()


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")   # built for its ports
def test_ports_and_format_widths():
    for name, f in FORMATS.items():
        dut = FloatAdder(f)
        assert dut.fmt is f
        assert (len(dut.a), len(dut.b), len(dut.result)) == (f.width,) * 3
        assert (len(dut.valid), len(dut.result_valid)) == (1, 1)
    del dut
    gc.collect()      # Amaranth's elaboratables are reference cycles: gone while filtered


@pytest.mark.parametrize("fmt", FMTS)
def test_golden_model_agrees_with_exact_integer_reference(fmt):
    """The golden model itself (numpy, with its double-rounding argument) against an
    independent exact integer reference, on the special pairs and some random ones."""
    a, b = V.vectors(fmt, SEED, 20_000)
    err = V.check(fmt, a, b, V.exact_add(fmt, a, b), seed=SEED)
    assert err is None, err


# ---- the checking can fail -----------------------------------------------------------

def _no_nan_policy(f, a, b):
    with np.errstate(all="ignore"):
        fd = fparith.float_dtype(f)
        return (a.view(fd) + b.view(fd)).astype(fd).view(f.uint_dtype)   # payloads leak


def _flush_to_zero(f, a, b):
    r = fparith.add_bits(f, a, b).astype(np.uint64)
    sub = (r >> np.uint64(f.man_bits)) & np.uint64(f.exp_max) == 0
    return np.where(sub, r & np.uint64(1 << (f.width - 1)), r)


def _negative_zero_cancellation(f, a, b):
    r = fparith.add_bits(f, a, b).astype(np.uint64)
    return np.where((r == 0) & (a != b), np.uint64(1 << (f.width - 1)), r)


WRONG_REFERENCES = {
    "ties away from zero": lambda f, a, b: V.exact_add(f, a, b, "rna"),
    "round toward zero": lambda f, a, b: V.exact_add(f, a, b, "rtz"),
    "NaN payloads propagated": _no_nan_policy,
    "subnormal results flushed": _flush_to_zero,
    "x + -x = -0": _negative_zero_cancellation,
}


@pytest.fixture(scope="module")
def fp16_run():
    fmt = "fp16"
    a, b, da, db, valid = _stimulus(fmt, SEED, 0)      # special pairs only
    rv, res, _ = simulate(fmt, DEFAULT_CONFIG.fp_adder_stages, da, db, valid)
    return fmt, a, b, res[rv == 1]


@pytest.mark.parametrize("wrong", sorted(WRONG_REFERENCES))
def test_wrong_reference_is_detected(fp16_run, wrong):
    """The special pairs alone tell each plausible wrong semantics from the hardware."""
    fmt, a, b, got = fp16_run
    assert V.check(fmt, a, b, got) is None
    err = V.check(fmt, a, b, got, seed=SEED, reference=WRONG_REFERENCES[wrong])
    assert err is not None and "results differ" in err and f"seed={SEED}" in err


def test_missing_or_extra_results_are_detected(fp16_run):
    fmt, a, b, got = fp16_run
    assert "results for" in V.check(fmt, a, b, got[:-1])
    one_off = got.copy()
    one_off[len(got) // 2] ^= 1
    assert "1 of" in V.check(fmt, a, b, one_off)
