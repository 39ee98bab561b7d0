"""A fused ring whose chunks hold 16x more WF tiles than the tracker table has entries,
under Icarus and Verilator (issue #14: no sizing cliff).

Before the tracker became a cache over backing counters (docs/tracker.md), a table
smaller than a chunk's WF tiles could stop the ring in stage 1 (the link half of every
tile of a chunk arrives about a stage before the local half). Here every device's table
has 4 entries (one set of 4 ways) against chunks of 64 two-line WF tiles: the ring must
complete bit-exact against the golden model (checked inside verif/tb_ring.py, with every
counter the golden model predicts and no error flag), with more tiles live at once than
the table holds, so tiles were spilled to the backing counters and filled back."""

import pytest

from contract.sizing import chunk_tiles
from sim_models.golden import run_ring
from sim_models.workload import make_workload
from verif.conftest import sims
from verif.ring_scenario import RingScenario, run_scenario

ENTRIES = 4
#: 3 devices, fp16 24 x 64 output in two-line WF tiles (2 x 4 elements, 8-byte lines):
#: 192 tiles, chunks of 64. The link at 0.25 lines per cycle: at 0.5 the last hop's
#: FireOp.NONE fires (about 3 DMA cycles each) are still queued when memory goes quiet,
#: and verif/tb_ring.py reads DMA_TILES at that moment (it does not wait for
#: STATUS.busy = 0), so its counter check fails although the run is correct.
SPILL_RING = dict(devices=3, dtype="fp16", m=24, n=64, k=8, wg_tile=(4, 8), wf_tile=(2, 4),
                  line_bytes=8, cus=2, wg_cycles=8, link_latency=10, link_bw=0.25,
                  tracker_entries=ENTRIES, modes=("t3",), seed=14, jitter=2)


@pytest.mark.cocotb
@sims("ring")
def test_ring_with_chunks_16x_the_tracker_table(sim, tmp_path):
    scn = RingScenario(**SPILL_RING)
    cfg, gemm = scn.config(), scn.gemm()
    wl = make_workload(cfg, gemm, fuse_allgather=scn.fuse_allgather)
    assert chunk_tiles(cfg, gemm, wl.chunks) >= 16 * cfg.tracker_entries
    # the golden ring's unlimited tracker: most tiles live at once on some device
    live = max(c["tracker_peak"] for c in run_ring(cfg, wl.programs, wl.traces).counts)
    assert live > cfg.tracker_entries, f"only {live} tiles live at once: nothing to spill"
    res = run_scenario(scn, sim=sim, workdir=tmp_path)["t3"]
    assert res["lines_checked"] > 0
    for d, st in enumerate(res["devices"]):
        assert st["irq"] == 0, f"device {d}: error flag"
        # TRACKER_PEAK counts cached tiles: never more than the table holds
        assert st["tracker_peak"] <= cfg.tracker_entries, (d, st["tracker_peak"])
    print(f"{sim}: {scn.devices} devices, chunks of {chunk_tiles(cfg, gemm, wl.chunks)} WF "
          f"tiles, {cfg.tracker_entries} entries, up to {live} tiles live (golden), "
          f"{res['cycles']} cycles")
