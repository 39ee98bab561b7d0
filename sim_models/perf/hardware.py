"""Hardware description of the performance model: GPU, ring link, T3 unit, software
overlap. Loaded from a TOML data file whose key names carry the units.

Times inside the model are seconds, rates bytes/second and FLOP/second; the data file
uses the units in its key names (``_GHz``, ``_GBps`` = 1e9 B/s, ``_ns``, ``_us``, ``_MB``
= 2**20 B). The MCA knobs (queue depth, occupancy threshold, starvation limit) default to
the RTL's values in :data:`contract.spec.DEFAULT_CONFIG` so they are defined once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from contract.spec import DEFAULT_CONFIG, T3Config

from .config_io import CONFIG_DIR, Table, read_toml

__all__ = ["Gpu", "Link", "T3Unit", "SoftwareOverlap", "Hardware", "load_hardware",
           "PAPER_HARDWARE_FILE", "hardware_from_rtl"]

PAPER_HARDWARE_FILE = CONFIG_DIR / "hardware_paper.toml"


@dataclass(frozen=True)
class Gpu:
    compute_units: int               # CUs
    clock_GHz: float
    matrix_flops_per_cu_cycle: float # dense FP16 matrix FLOP per CU per cycle (1 FMA = 2)
    mfma_efficiency: float           # sustained fraction of that peak inside a GEMM tile
    l2_MB: float
    l2_usable_fraction: float        # share of L2 a GEMM's input panels may occupy
    hbm_bandwidth_GBps: float
    dram_efficiency: float           # achievable fraction of peak DRAM bandwidth
    tile_m: int                      # GEMM output tile (one workgroup = one WF tile)
    tile_n: int
    elem_bytes: int                  # FP16

    @property
    def clock_Hz(self) -> float:
        return self.clock_GHz * 1e9

    @property
    def cu_flops(self) -> float:
        """Sustained matrix FLOP/s of one CU inside a GEMM tile."""
        return self.matrix_flops_per_cu_cycle * self.mfma_efficiency * self.clock_Hz

    @property
    def peak_flops(self) -> float:
        return self.matrix_flops_per_cu_cycle * self.compute_units * self.clock_Hz

    @property
    def dram_Bps(self) -> float:
        """Achievable DRAM bandwidth (bytes/s) shared by every stream of one device."""
        return self.hbm_bandwidth_GBps * 1e9 * self.dram_efficiency

    @property
    def l2_bytes(self) -> float:
        return self.l2_MB * 2**20

    @property
    def tile_bytes(self) -> int:
        return self.tile_m * self.tile_n * self.elem_bytes


@dataclass(frozen=True)
class Link:
    bandwidth_GBps: float            # per direction (a ring step uses one direction)
    latency_ns: float                # one hop, first byte

    @property
    def Bps(self) -> float:
        return self.bandwidth_GBps * 1e9

    @property
    def latency_s(self) -> float:
        return self.latency_ns * 1e-9


@dataclass(frozen=True)
class T3Unit:
    tracker_latency_ns: float        # last update seen -> DMA command ready
    dma_issue_latency_ns: float      # ready -> first line on the link
    dma_bandwidth_GBps: float        # DMA engine read rate (caps the link rate it can feed)
    nmc_update_GBps: float           # near-memory ALU update throughput per device
    nmc_update_cost: float           # DRAM-interface time of an UPDATE / that of a write
    mem_queue_depth: int             # memory-controller queue (entries)
    mca_queue_threshold: int         # MCA: communication issues only below this occupancy
    mca_starvation_limit: int        # MCA: max memory slots communication waits

    @property
    def trigger_latency_s(self) -> float:
        return (self.tracker_latency_ns + self.dma_issue_latency_ns) * 1e-9


@dataclass(frozen=True)
class SoftwareOverlap:
    comm_cus: int                    # CUs the concurrent collective kernel occupies
    stage_sync_us: float             # chunk-ready flag: fence + atomic + poll, per stage


@dataclass(frozen=True)
class Hardware:
    gpu: Gpu
    link: Link
    t3: T3Unit
    sw: SoftwareOverlap
    source: str = "<built-in>"

    def replace(self, **parts) -> "Hardware":
        """Copy with some fields of some parts changed: ``replace(link={"bandwidth_GBps": 300})``."""
        new = {k: dataclasses.replace(getattr(self, k), **v) for k, v in parts.items()}
        return dataclasses.replace(self, **new)


def load_hardware(path: str | Path | None = None) -> Hardware:
    """Load a hardware file (default: the paper's). Errors: ``file: table.key=value: problem``."""
    path = Path(path) if path is not None else PAPER_HARDWARE_FILE
    top = Table(read_toml(path), path, "")
    top.only(("gpu", "link", "t3", "software_overlap"))
    g = top.sub("gpu")
    gpu = Gpu(
        compute_units=g.integer("compute_units", 1, 4096),
        clock_GHz=g.number("clock_GHz", 0.01, 10.0),
        matrix_flops_per_cu_cycle=g.number("matrix_flops_per_cu_cycle", 1, 1e6),
        mfma_efficiency=g.number("mfma_efficiency", 0.01, 1.0),
        l2_MB=g.number("l2_MB", 0.0, 1e5),
        l2_usable_fraction=g.number("l2_usable_fraction", 0.0, 1.0),
        hbm_bandwidth_GBps=g.number("hbm_bandwidth_GBps", 1, 1e6),
        dram_efficiency=g.number("dram_efficiency", 0.05, 1.0),
        tile_m=g.integer("tile_m", 1, 4096),
        tile_n=g.integer("tile_n", 1, 4096),
        elem_bytes=g.integer("elem_bytes", 1, 8),
    )
    g.done()
    lk = top.sub("link")
    link = Link(bandwidth_GBps=lk.number("bandwidth_GBps", 0.001, 1e6),
                latency_ns=lk.number("latency_ns", 0.0, 1e9))
    lk.done()
    t = top.sub("t3")
    rtl = DEFAULT_CONFIG
    depth = t.integer("mem_queue_depth", 2, 1 << 16, rtl.mem_queue_depth)
    t3 = T3Unit(
        tracker_latency_ns=t.number("tracker_latency_ns", 0.0, 1e9),
        dma_issue_latency_ns=t.number("dma_issue_latency_ns", 0.0, 1e9),
        dma_bandwidth_GBps=t.number("dma_bandwidth_GBps", 0.001, 1e6),
        nmc_update_GBps=t.number("nmc_update_GBps", 0.001, 1e6),
        nmc_update_cost=t.number("nmc_update_cost", 0.0, 10.0),
        mem_queue_depth=depth,
        mca_queue_threshold=t.integer("mca_queue_threshold", 1, depth, rtl.mca_queue_threshold),
        mca_starvation_limit=t.integer("mca_starvation_limit", 1, 1 << 20,
                                       rtl.mca_starvation_limit),
    )
    t.done()
    s = top.sub("software_overlap")
    sw = SoftwareOverlap(comm_cus=s.integer("comm_cus", 1, gpu.compute_units - 1),
                         stage_sync_us=s.number("stage_sync_us", 0.0, 1e6))
    s.done()
    top.done()
    return Hardware(gpu, link, t3, sw, source=str(path))


def hardware_from_rtl(cfg: T3Config, base: Hardware | None = None) -> Hardware:
    """The model's hardware for an RTL configuration (for calibration against ``t3 sim``):
    memory serves one line per cycle, the link ``link_lines_per_cycle`` lines per cycle
    with ``link_latency_cycles`` latency, MCA knobs as in the RTL. Times then come out in
    seconds at ``cfg.clock_ghz``; divide by the clock period to get cycles."""
    base = base or load_hardware()
    line_Bps = cfg.line_bytes * cfg.clock_ghz * 1e9
    return base.replace(
        gpu={"clock_GHz": cfg.clock_ghz, "hbm_bandwidth_GBps": line_Bps / 1e9,
             "dram_efficiency": 1.0, "elem_bytes": cfg.fmt.bytes},
        link={"bandwidth_GBps": cfg.link_lines_per_cycle * line_Bps / 1e9,
              "latency_ns": cfg.link_latency_cycles / cfg.clock_ghz},
        t3={"mem_queue_depth": cfg.mem_queue_depth,
            "mca_queue_threshold": cfg.mca_queue_threshold,
            "mca_starvation_limit": cfg.mca_starvation_limit,
            "nmc_update_GBps": line_Bps / 1e9},
    )
