"""Block latencies of the T3 unit, in clock cycles: the one definition.

Each block's ``latency`` property (``hw``) returns the value defined here, and the
timing models (``sim_models.perf.rtl_model``) read the same names; the blocks' unit tests
measure the RTL against them, so a change to a block's pipeline that is not made here
fails those tests. Latencies that depend on the configuration (the FloatAdder's and the
near-memory ALU's ``fp_adder_stages``) are functions of :class:`contract.spec.T3Config`.
"""

from __future__ import annotations

from .spec import T3Config

__all__ = ["ADDRMAP", "TRACKER", "TRACKER_FIRE", "TRACKER_MISS", "DMA_ISSUE", "TRIGGER", "LINK_MIN",
           "CSR", "CSR_SAMPLE", "fp_adder", "nmc_alu", "compute_memory"]

#: address map (remote_map): request accepted -> output valid, either lane
ADDRMAP = 1
#: tracker: request accepted on a lane -> ``mem.valid``, a table hit, no stall: geometry
#: steps G1, G2 (the set read is issued as G2's head is granted), lookup L (compare,
#: forward, count, write back), output register O = ``mem``
TRACKER = 4
#: tracker: the completing request accepted -> ``fire.valid`` (the fire enters the fire
#: queue when the request is handed to memory)
TRACKER_FIRE = TRACKER + 1
#: tracker: extra cycles of a table miss in L (the count is read from the backing counter
#: store, whose read latency this is)
TRACKER_MISS = 1
#: DMA engine: fire accepted -> first ``rd.valid`` (queue 1 + geometry 2)
DMA_ISSUE = 3
#: track & trigger: the tile's last request accepted by the address map -> the DMA's
#: first READ of that tile presented to memory (address map, tracker fire, DMA issue,
#: then the READ through the tracker's DMA lane)
TRIGGER = ADDRMAP + TRACKER_FIRE + DMA_ISSUE + TRACKER
#: the link model's smallest latency (a packet is registered in and out)
LINK_MIN = 2
#: register block (hw/csr.py): request accepted in cycle t -> its response valid in cycle
#: t + CSR (request, group select, response registered); a write's storage and its
#: w1p/w1c pulses change in that same cycle t + CSR. One request in flight.
CSR = 3
#: register block: a read accepted in cycle t returns the hardware (ro, w1c) fields as
#: they are in cycle t + CSR_SAMPLE (every field of one register from that one cycle)
CSR_SAMPLE = 1


def fp_adder(cfg: T3Config) -> int:
    """FloatAdder: operands in -> sum out (one addition enters per cycle)."""
    return cfg.fp_adder_stages


def nmc_alu(cfg: T3Config) -> int:
    """Near-memory ALU (one FloatAdder per lane): operands in -> result."""
    return fp_adder(cfg)


def compute_memory(cfg: T3Config) -> int:
    """Compute-enhanced memory: a READ accepted -> its response valid (no backpressure):
    the ALU's stages, the write stage and the response FIFO."""
    return nmc_alu(cfg) + 2
