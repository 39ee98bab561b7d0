"""Bounded soak in the normal suite: a few seeds of verif/soak.py's random ring scenarios
under each simulator, on builds the ring tests (verif/test_ring.py) already made.
`make soak` runs the long version (200 seeds)."""

import pytest

from verif.conftest import sims
from verif.soak import DEFAULT_DEVICES, draw, profile, run_seed_isolated, sim_command
from verif.test_ring import MATRIX


def _cheap(scn) -> bool:
    """Few devices, several CUs, a link of >= 1/4 line per cycle: seconds, not minutes,
    under Icarus; and a (devices, dtype) profile the ring tests already built."""
    return (scn.devices <= 3 and scn.cus >= 2 and scn.link_bw >= 0.25
            and (scn.devices, scn.dtype) in MATRIX)


#: the first 3 cheap seeds of the soak's sequence
SEEDS = [s for s in range(100) if _cheap(draw(s))][:3]


def test_draw_is_seeded_and_on_a_fixed_build():
    """Same seed -> same scenario; every scenario runs on its profile's build; the knobs
    really vary (so the soak is not one scenario repeated)."""
    scns = [draw(s) for s in range(40)]
    assert [draw(s) for s in range(40)] == scns
    keys = {(p.devices, p.dtype): p.hw_key() for p in
            (profile(n, dt) for n in DEFAULT_DEVICES for dt in ("fp16", "bf16", "fp32"))}
    for s in scns:
        assert s.hw_key() == keys[(s.devices, s.dtype)]
        assert f"--seed {s.seed}" in sim_command(s, "icarus")
    for knob in ("devices", "dtype", "layout", "m", "n", "wf_tile", "link_latency", "link_bw",
                 "policy", "jitter", "backpressure", "stall", "fuse_allgather"):
        assert len({getattr(s, knob) for s in scns}) > 1, knob


@pytest.mark.cocotb
@sims("ring")
@pytest.mark.parametrize("seed", SEEDS)
def test_soak_seed(sim, seed, tmp_path):
    # in a child process with a time limit: a deadlocked ring fails the test, not hangs it
    rec = run_seed_isolated(seed, sim, out=tmp_path, timeout=600)
    assert rec["ok"], f"{rec['describe']}: {rec.get('error')}\nreproduce: {rec['reproduce']}"
    assert rec["cycles"] > 0 and rec["requests"] > 0 and rec["lines_checked"] > 0
