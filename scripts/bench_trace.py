"""Benchmark (not a test): trace generation and the golden ring for a 4-device
1024 x 1024 fp16 output (the issue's target: traces in under 5 s).

    .venv/bin/python scripts/bench_trace.py [--k 1024] [--golden]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contract.gemm import GemmSpec                                   # noqa: E402
from contract.sizing import config_for                               # noqa: E402
from sim_models.workload import make_workload                        # noqa: E402
from sim_models.golden import run_ring                               # noqa: E402
from sim_models.trace import load_traces, save_traces                # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=4)
    ap.add_argument("--m", type=int, default=1024)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--k", type=int, default=1024)
    ap.add_argument("--dtype", default="fp16")
    ap.add_argument("--golden", action="store_true", help="also time the golden ring model")
    a = ap.parse_args()
    g = GemmSpec(m=a.m, n=a.n, k=a.k, devices=a.devices, dtype=a.dtype)
    cfg = config_for(g)
    t0 = time.perf_counter()
    w = make_workload(cfg, g)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        save_traces(d, w)
        t2 = time.perf_counter()
        load_traces(d)
        t3 = time.perf_counter()
    lines = sum(len(t) for t in w.traces)
    print(f"{a.devices} devices {a.m}x{a.n}x{a.k} {a.dtype}: {lines} requests; generate "
          f"{t1 - t0:.3f} s, save {t2 - t1:.3f} s, load+validate {t3 - t2:.3f} s")
    if a.golden:
        t4 = time.perf_counter()
        res = run_ring(cfg, w.programs, w.traces, gemm=g)
        t5 = time.perf_counter()
        events = sum(c["producer_local"] + c["producer_remote"] + c["link_in_update"]
                     + c["link_in_store"] for c in res.counts)
        print(f"golden ring: {t5 - t4:.2f} s, {events} events ({events / (t5 - t4):.0f}/s)")


if __name__ == "__main__":
    main()
