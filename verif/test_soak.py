"""Bounded soak in the normal suite: a few seeds of verif/soak.py's random ring scenarios
under each simulator, on builds the ring tests (verif/test_ring.py) already made.
`make soak` runs the long version (200 seeds)."""

import pytest

from verif.conftest import sims
from contract.spec import ConfigError
from verif.soak import PROFILE_DTYPES, draw, main, profile, profiles, run_seed_isolated, \
    sim_command
from verif.test_ring import MATRIX, _scenario


def _cheap(scn) -> bool:
    """Few devices, several CUs, a link of >= 1/4 line per cycle: seconds, not minutes,
    under Icarus; and a profile whose build the ring tests already made (same hw_key: not
    the soak's 2-device fp32 profile, whose memory is ideal where the ring tests' is DRAM)."""
    return (scn.devices <= 3 and scn.cus >= 2 and scn.link_bw >= 0.25
            and (scn.devices, scn.dtype) in MATRIX
            and profile(scn.devices, scn.dtype).hw_key() == _scenario(scn.devices,
                                                                      scn.dtype).hw_key())


#: the first 3 cheap seeds of the soak's sequence
SEEDS = [s for s in range(100) if _cheap(draw(s))][:3]


def test_draw_is_seeded_and_on_a_fixed_build():
    """Same seed -> same scenario; every scenario runs on its profile's build; the knobs
    really vary (so the soak is not one scenario repeated)."""
    scns = [draw(s) for s in range(40)]
    assert [draw(s) for s in range(40)] == scns
    keys = {(n, dt): profile(n, dt).hw_key() for n, dts in PROFILE_DTYPES.items() for dt in dts}
    for s in scns:
        assert s.hw_key() == keys[(s.devices, s.dtype)]
        assert f"--seed {s.seed}" in sim_command(s, "icarus")
    for knob in ("devices", "dtype", "layout", "m", "n", "wf_tile", "link_latency", "link_bw",
                 "policy", "jitter", "backpressure", "stall", "fuse_allgather"):
        assert len({getattr(s, knob) for s in scns}) > 1, knob


def test_soak_draws_every_ring_size_on_its_profiles():
    """Issue #18: the soak draws every ring size of the RTL (N = 2..8; 2, 3, 4 and 8 with
    every dtype, 5, 6 and 7 with two each, every dtype on two of them), each profile
    (devices, dtype) within 200 seeds, and the ring tests' build of every N in MATRIX is a
    soak profile (N = 2 apart: its ring-test build has the DRAM memory); restricting
    --devices/--dtypes restricts the draws, and a selection with no profile is refused."""
    assert sorted(PROFILE_DTYPES) == list(range(2, 9))
    assert {dt for n in (5, 6, 7) for dt in PROFILE_DTYPES[n]} == {"fp16", "bf16", "fp32"}
    assert all(len(PROFILE_DTYPES[n]) == 2 for n in (5, 6, 7))
    drawn = {(s.devices, s.dtype) for s in (draw(seed) for seed in range(200))}
    assert drawn == {(n, dt) for n, dts in PROFILE_DTYPES.items() for dt in dts}
    for n, dt in MATRIX:
        assert dt in PROFILE_DTYPES[n], (n, dt)
        if n != 2:
            assert profile(n, dt).hw_key() == _scenario(n, dt).hw_key(), (n, dt)
    few = {(s.devices, s.dtype) for s in (draw(seed, (5, 7), ("fp16",)) for seed in range(30))}
    assert few == {(5, "fp16"), (7, "fp16")}
    assert profiles((5, 6), ("bf16",)) == {6: ("bf16",)}
    with pytest.raises(ConfigError, match=r"devices=5 dtypes=bf16: no soak profile"):
        draw(0, (5,), ("bf16",))
    with pytest.raises(SystemExit) as exc:
        main(["--devices", "5", "--dtypes", "bf16", "--seeds", "1"])
    assert exc.value.code == 2


@pytest.mark.cocotb
@sims("ring")
@pytest.mark.parametrize("seed", SEEDS)
def test_soak_seed(sim, seed, tmp_path):
    # in a child process with a time limit: a deadlocked ring fails the test, not hangs it
    rec = run_seed_isolated(seed, sim, out=tmp_path, timeout=600)
    assert rec["ok"], f"{rec['describe']}: {rec.get('error')}\nreproduce: {rec['reproduce']}"
    assert rec["cycles"] > 0 and rec["requests"] > 0 and rec["lines_checked"] > 0
