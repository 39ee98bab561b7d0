"""End-to-end ring tests: fused RS + AG on N T3 units vs the golden model, bit for bit,
under Icarus and Verilator (pytest entry points of verif/tb_ring.py)."""

import pytest

from verif.ring_scenario import RingScenario, run_scenario

SMALL = dict(m=32, n=32, k=16, wg_tile=(8, 8), wf_tile=(4, 8), line_bytes=8, cus=2,
             link_latency=12, link_bw=0.5)


@pytest.mark.cocotb
@pytest.mark.xdist_group("ring2")
def test_ring_two_devices(sim, tmp_path):
    scn = RingScenario(devices=2, modes=("t3",), **SMALL)
    res = run_scenario(scn, sim=sim, workdir=tmp_path)
    assert res["t3"]["cycles"] > 0
