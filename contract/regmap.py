"""The register map of the track & trigger unit: the one description of every CSR.

Used by the hardware (``hw/csr.py`` builds its registers and ports from it), by the
driver (``verif/csr_driver.py`` programs a device from a :class:`program.DeviceProgram`)
and to generate ``docs/regmap.md`` (``python -m contract.regmap > docs/regmap.md``).
Pure Python: no HDL.

Bus: word addressed (``cfg.csr_addr_bits`` address bits, ``cfg.csr_data_bits`` = 32 data
bits). Access types:

* ``const``: read-only constant (the reset value);
* ``ro``: read-only, driven by the hardware (status, counters, error details);
* ``rw``: read/write storage;
* ``w1c``: sticky flag set by the hardware, cleared by writing 1;
* ``w1p``: write 1 to pulse for one cycle; reads 0.

Per-region registers repeat every ``REGION_STRIDE`` words from ``REGION_BASE``; their
field names are those of :func:`spec.region_fields`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Iterable

from . import errors, latency, spec
from .program import DeviceProgram, Region
from .spec import ConfigError, T3Config

__all__ = ["Field", "Register", "registers", "global_registers", "region_registers",
           "region_addr", "region_values", "program_writes", "field_value", "ID_MAGIC", "VERSION",
           "ERROR_FLAGS", "COUNTERS", "render_markdown", "csr_request_fields",
           "csr_response_fields", "reg", "decode"]

ID_MAGIC = 0x5433          # "T3"
VERSION = 1
REGION_BASE = 0x100        # word address of region 0's first register
REGION_STRIDE = 0x10       # words per region group
ACCESS = ("const", "ro", "rw", "w1c", "w1p")

#: sticky error flags, in ERR bit order: name -> "source block: what sets it, detail
#: register" (defined in contract.errors)
ERROR_FLAGS: dict[str, str] = {f.name: errors.describe(f.name) for f in errors.ERROR_FLAGS}

#: 32-bit wrapping event counters: name -> description
COUNTERS: dict[str, str] = {
    "producer_reqs": "producer requests accepted by the address map",
    "ingress_reqs": "link packets accepted from the previous device",
    "remote_sent": "producer requests sent to the next device (REMOTE regions)",
    "tracked_reqs": "requests counted by the tracker",
    "fires": "tracker entries that reached their threshold",
    "stall_cycles": "cycles a tracked request waited for a tracker fire slot (the DMA behind)",
    "dma_tiles": "fired tiles completed by the DMA engine (FireOp.NONE included)",
    "dma_lines": "lines the DMA engine sent to the next device",
    "starved_grants": "MCA: communication grants forced by the starvation limit",
    "kicks": "DMA_KICK commands taken by the DMA engine",
    "tracker_hits": "tracked requests whose tile was in the tracker table",
    "tracker_misses": "tracked requests whose tile was not (one backing-counter read each)",
    "tracker_fills": "tracker misses that took a table way",
    "tracker_spills": "tracker fills that evicted a live tile (one backing-counter write each)",
}


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    access: str
    reset: int = 0
    desc: str = ""

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb


@dataclass(frozen=True)
class Register:
    name: str
    addr: int              # word address
    fields: tuple[Field, ...]
    desc: str = ""
    region: int | None = None   # region index for the per-region group

    @property
    def reset(self) -> int:
        return sum(f.reset << f.lsb for f in self.fields)


def _check(regs: list[Register], cfg: T3Config) -> list[Register]:
    seen: dict[int, str] = {}
    for r in regs:
        if r.addr >= (1 << cfg.csr_addr_bits):
            raise ConfigError(f"config: csr_addr_bits={cfg.csr_addr_bits}: register {r.name} at "
                              f"{r.addr:#x} does not fit (regions={cfg.regions})")
        if r.addr in seen:
            raise AssertionError(f"{r.name} overlaps {seen[r.addr]}")   # map bug, not user input
        seen[r.addr] = r.name
        used = 0
        for f in r.fields:
            assert f.access in ACCESS and f.lsb + f.width <= cfg.csr_data_bits, (r.name, f.name)
            assert not used & f.mask, (r.name, f.name)
            used |= f.mask
    return regs


def _config_regs(cfg: T3Config) -> list[Register]:
    def const(name, lsb, width, value, desc):
        assert value < (1 << width), (name, value)
        return Field(name, lsb, width, "const", value, desc)
    dtype_code = list(spec.FORMATS).index(cfg.dtype)
    return [
        Register("ID", 0x000, (const("version", 0, 16, VERSION, "register map version"),
                               const("magic", 16, 16, ID_MAGIC, '0x5433 = "T3"')),
                 "identification"),
        Register("CFG0", 0x001, (
            const("cfg_lanes", 0, 9, cfg.lanes, "elements per memory line"),
            const("cfg_dtype", 9, 2, dtype_code, "0 fp16, 1 bf16, 2 fp32"),
            const("cfg_regions", 11, 7, cfg.regions, "region register groups"),
            const("cfg_ring_devices", 18, 7, cfg.ring_devices, "devices in the ring"),
            const("cfg_addr_bits", 25, 6, cfg.addr_bits, "line address width")),
            "configuration read-back"),
        Register("CFG1", 0x002, (
            const("cfg_tracker_entries", 0, 13, cfg.tracker_entries, "tracker table entries"),
            const("cfg_count_bits", 13, 5, cfg.count_bits, "tracker count width"),
            const("cfg_wf_outer_bits", 18, 5, cfg.wf_outer_bits, "WF id outer field width"),
            const("cfg_wf_inner_bits", 23, 5, cfg.wf_inner_bits, "WF id inner field width")),
            "configuration read-back"),
        Register("CFG2", 0x003, (
            const("cfg_mem_depth_lines", 0, 25, cfg.mem_depth_lines, "lines of local memory"),),
            "configuration read-back"),
    ]


def global_registers(cfg: T3Config) -> list[Register]:
    db = cfg.device_bits
    occ_bits = (cfg.tracker_entries).bit_length()
    regs = _config_regs(cfg) + [
        Register("CTRL", 0x004, (
            Field("enable", 0, 1, "rw", 0, "accept producer requests and link packets"),
            Field("device", 8, db, "rw", 0, "this device's ring index"),
            Field("next_device", 16, db, "rw", 0, "ring neighbour that receives link packets")),
            "control"),
        Register("CMD", 0x005, (
            Field("clear_counters", 0, 1, "w1p", 0, "zero every counter"),
            Field("clear_history", 1, 1, "w1p", 0,
                  "forget the fired-key history (between GEMMs that reuse WF ids)")),
            "commands"),
        Register("STATUS", 0x006, (
            Field("occupancy", 0, occ_bits, "ro", 0,
                  "tiles cached in the tracker table (more may be live in its backing store)"),
            Field("busy", 16, 1, "ro", 0, "a request, fire or DMA line is in flight"),
            Field("error", 17, 1, "ro", 0, "any ERR flag set (the irq output)"),
            Field("kick_pending", 18, 1, "ro", 0, "a DMA_KICK waits for the DMA queue")),
            "status"),
        Register("ARB", 0x00B, (
            Field("policy", 0, 1, "rw", int(cfg.arbiter_policy == "mca"),
                  "memory-controller arbitration: 0 plain round-robin, 1 MCA (compute first)"),
            Field("threshold", 8, (cfg.mem_queue_depth).bit_length(), "rw",
                  cfg.mca_queue_threshold,
                  "MCA: communication issues only while the memory queue holds fewer requests"),
            Field("starve_limit", 16, spec.MCA_STARVE_BITS, "rw", cfg.mca_starvation_limit,
                  "MCA: a communication request waits at most starve_limit - 1 cycles")),
            "memory-controller arbiter (hw/arbiter.py)"),
        Register("DMA_KICK", 0x00C, (
            Field("kick", 0, 1, "w1p", 0, "write 1: DMA the whole region kick_region"),
            Field("kick_phase", 1, 1, "w1p", 0,
                  "0: as UPDATEs (region's update_fire), 1: as STOREs (store_fire)"),
            Field("kick_region", 8, cfg.region_bits, "w1p", 0, "the region to move")),
            "software-triggered DMA of a whole region (the unfused baseline's ring steps)"),
        Register("ARB_STATUS", 0x00D, (
            Field("comm_wait_max", 0, spec.MCA_STARVE_BITS + 1, "ro", 0,
                  "longest wait of a communication request, cycles (saturates)"),
            Field("threshold_used", 20, (cfg.mem_queue_depth).bit_length(), "ro", 0,
                  "MCA threshold in use: the measured one once `measured`, else ARB.threshold"),
            Field("measured", 31, 1, "ro", 0,
                  "the GEMM-intensity window of ARB_AUTO has completed")),
            "arbiter status"),
        Register("ARB_AUTO", 0x007, (
            Field("window_log2", 0, (spec.MCA_WINDOW_LOG2_MAX).bit_length(), "rw",
                  cfg.mca_window_log2,
                  "MCA: measure the compute stream's requests over 2**window_log2 cycles "
                  "from its first request after CMD.clear_counters, then set the threshold "
                  "to clamp(Q - count * Q / 2**window_log2, 1, Q) (docs/memory.md); 0: off"),),
            "MCA threshold from the GEMM's measured memory intensity (hw/mca_threshold.py)"),
        Register("ARB_WINDOW", 0x00F, (
            Field("window_reqs", 0, spec.COUNTER_BITS, "ro", 0,
                  "compute-stream memory requests counted in the MCA window"),),
            "MCA measurement"),
        Register("TRACKER_PEAK", 0x00E, (
            Field("occupancy_peak", 0, occ_bits, "ro", 0,
                  "most tiles cached in the tracker table at once since the counters were "
                  "cleared"),),
            "tracker occupancy high-water mark (cleared by CMD.clear_counters)"),
        Register("ERR", 0x008, tuple(Field(n, i, 1, "w1c", 0, d)
                                     for i, (n, d) in enumerate(ERROR_FLAGS.items())),
                 "sticky error flags (write 1 to clear)"),
        Register("ERR_ADDR", 0x009, (
            Field("err_addr", 0, min(cfg.addr_bits + 1, 31), "ro", 0,
                  "line address of the first address-map error since its flags were clear"),
            Field("err_addr_ingress", 31, 1, "ro", 0, "1: it came from the link, 0: producer")),
            "address-map error detail"),
        Register("ERR_KEY", 0x00A, (
            Field("err_wf_id", 0, cfg.wf_id_bits, "ro", 0,
                  "WF id of the first tracker error since its flags were clear"),
            Field("err_phase", cfg.wf_id_bits, 1, "ro", 0, "its phase (0 UPDATE, 1 STORE)"),
            Field("err_region", 24, cfg.region_bits, "ro", 0, "its region")),
            "tracker error detail"),
    ]
    for i, (n, d) in enumerate(COUNTERS.items()):
        regs.append(Register(n.upper(), 0x010 + i, (Field(n, 0, spec.COUNTER_BITS, "ro", 0, d),), "counter"))
    return regs


# Per-region group: register name -> [(region field, lsb)] (widths from spec.region_fields)
_REGION_GROUP: list[tuple[str, list[tuple[str, int]], str]] = [
    ("BASE", [("base", 0)], "first line of the region"),
    ("LIMIT", [("limit", 0)], "one past the last line; limit <= base disables the region"),
    ("REMOTE_BASE", [("remote_base", 0)], "REMOTE producer stores go to addr - base + remote_base"),
    ("DEST_BASE", [("dest_base", 0)], "DMA packets go to addr - base + dest_base"),
    ("PITCH", [("pitch", 0)], "lines between rows"),
    ("OUTER_EXTENT", [("outer_extent", 0)], "rows in the region"),
    ("INNER_EXTENT", [("inner_extent", 0)], "lines per row"),
    ("TILE_OUTER", [("tile_outer", 0)], "rows per WF tile"),
    ("TILE_INNER", [("tile_inner", 0)], "lines per WF tile row"),
    ("TILE_ORIGIN", [("tile_outer0", 0), ("tile_inner0", 16)], "grid position of the first tile"),
    ("ACTION", [("producer", 0), ("update_contribs", 4), ("update_fire", 8),
                ("store_contribs", 12), ("store_fire", 16)],
     "producer action (0 LOCAL, 1 REMOTE, 2 TRACKED), contributions per line and fire op "
     "(0 NONE, 1 UPDATE, 2 STORE) per phase"),
]


def region_addr(region: int, reg: str) -> int:
    names = [n for n, _, _ in _REGION_GROUP]
    return REGION_BASE + region * REGION_STRIDE + names.index(reg)


def region_registers(cfg: T3Config) -> list[Register]:
    widths = dict(spec.region_fields(cfg))
    assert len(_REGION_GROUP) <= REGION_STRIDE
    assert {f for _, fs, _ in _REGION_GROUP for f, _ in fs} == set(widths)
    regs = []
    for i in range(cfg.regions):
        for j, (name, fs, desc) in enumerate(_REGION_GROUP):
            regs.append(Register(f"R{i}_{name}", REGION_BASE + i * REGION_STRIDE + j,
                                 tuple(Field(f, lsb, widths[f], "rw", 0, "") for f, lsb in fs),
                                 desc, region=i))
    return regs


def registers(cfg: T3Config) -> list[Register]:
    """Every register of the map, in address order."""
    return _check(global_registers(cfg) + region_registers(cfg), cfg)


# ---- bus ----------------------------------------------------------------------------

def csr_request_fields(cfg: T3Config) -> spec.Fields:
    """One bus request (LSB first): word address, write flag, write data."""
    return [("addr", cfg.csr_addr_bits), ("write", 1), ("wdata", cfg.csr_data_bits)]


def csr_response_fields(cfg: T3Config) -> spec.Fields:
    """One bus response: read data (0 for writes)."""
    return [("rdata", cfg.csr_data_bits)]


# ---- driver side ---------------------------------------------------------------------

def field_value(cfg: T3Config, name: str, value: int) -> int:
    """Check that a region field value fits its register field (ConfigError otherwise)."""
    width = dict(spec.region_fields(cfg))[name]
    if not (0 <= int(value) < (1 << width)):
        raise ConfigError(f"region {name}={value}: does not fit its {width}-bit register")
    return int(value)


def region_values(cfg: T3Config, region: Region | None) -> dict[str, int]:
    """The register field values of ``region`` (None: an empty region), by the names of
    :func:`spec.region_fields`; ConfigError when a value does not fit its field."""
    if region is None:
        return {f: 0 for f, _ in spec.region_fields(cfg)}
    out = {}
    for f, _ in spec.region_fields(cfg):
        v = int(getattr(region, f))
        if f in ("tile_outer", "tile_inner") and not region.tracked:
            v = min(v, cfg.max_tile_count)     # geometry unused by an untracked region
        out[f] = field_value(cfg, f, v)
    return out


def _region_word(values: dict[str, int], fields: Iterable[tuple[str, int]]) -> int:
    return sum(values[f] << lsb for f, lsb in fields)


def program_writes(cfg: T3Config, prog: DeviceProgram, *, enable: bool = True) -> list[tuple[int, int]]:
    """The (word address, value) writes that program ``prog``: every region group (unused
    groups written empty), then CTRL (device, next device, enable last)."""
    prog.validate(cfg)
    writes = []
    for i in range(cfg.regions):
        # unused groups are written all zero: base = limit = 0 matches nothing
        vals = region_values(cfg, prog.regions[i] if i < len(prog.regions) else None)
        for j, (name, fs, _) in enumerate(_REGION_GROUP):
            writes.append((REGION_BASE + i * REGION_STRIDE + j, _region_word(vals, fs)))
    ctrl = [r for r in global_registers(cfg) if r.name == "CTRL"][0]
    f = {x.name: x for x in ctrl.fields}
    writes.append((ctrl.addr, (prog.device << f["device"].lsb) | (prog.next_device << f["next_device"].lsb)
                   | (int(enable) << f["enable"].lsb)))
    return writes


def reg(cfg: T3Config, name: str) -> Register:
    for r in registers(cfg):
        if r.name == name:
            return r
    raise KeyError(name)


def decode(register: Register, value: int) -> dict[str, int]:
    return {f.name: (value >> f.lsb) & ((1 << f.width) - 1) for f in register.fields}


# ---- documentation -------------------------------------------------------------------

def render_markdown(cfg: T3Config = spec.DEFAULT_CONFIG) -> str:
    out = ["# Track & trigger register map", "",
           "Generated by `python -m contract.regmap > docs/regmap.md` from "
           "`contract/regmap.py` for the default configuration; do not edit by hand "
           "(a test checks it is up to date).", "",
           "## Bus", "",
           "Word addressed, 32-bit data. Two valid/ready streams (`amaranth.lib.stream`):",
           f"`csr_req` = {{addr: {cfg.csr_addr_bits} bits, write: 1, wdata: 32}} and `csr_resp` = "
           "{rdata: 32}. Every request gets exactly one response, in order (writes answer "
           "rdata = 0); a read of an unmapped address returns 0, a write to it is ignored. "
           "One request is in flight at a time: the next is accepted in the cycle the "
           f"response is taken. A request accepted in cycle t is answered in cycle t + "
           f"{latency.CSR} (`contract.latency.CSR`) when `csr_resp` is ready; a read returns "
           f"the hardware fields (ro, w1c) as they are in cycle t + {latency.CSR_SAMPLE}, every "
           "field of one register from that cycle; a write updates rw storage and raises its "
           f"w1p/w1c one-cycle pulses in cycle t + {latency.CSR}, the cycle its response "
           "becomes valid.", "",
           "Access: " + ", ".join(f"`{a}`" for a in ACCESS) +
           " (const = read-only constant, ro = read-only hardware value, rw = storage, "
           "w1c = sticky flag cleared by writing 1, w1p = write 1 for a one-cycle pulse).", "",
           "## Global registers", "",
           "| addr | register | field | bits | access | reset | description |",
           "|---|---|---|---|---|---|---|"]

    def rows(r: Register, name: str):
        for i, f in enumerate(r.fields):
            bits = f"[{f.lsb + f.width - 1}:{f.lsb}]" if f.width > 1 else f"[{f.lsb}]"
            desc = f.desc or (r.desc if i == 0 else "")
            out.append(f"| {r.addr:#05x} | {name if i == 0 else ''} | {f.name} | {bits} | "
                       f"{f.access} | {f.reset:#x} | {desc} |")
    for r in global_registers(cfg):
        rows(r, r.name)
    out += ["", "## Region group", "",
            f"Region i (0 <= i < regions = {cfg.regions}) at word address "
            f"`{REGION_BASE:#x} + i * {REGION_STRIDE:#x} + offset`; all fields rw, reset 0 "
            "(an all-zero group is an empty region). Semantics: `contract/program.py`.", "",
            "| offset | register | field | bits | description |", "|---|---|---|---|---|"]
    for r in region_registers(cfg)[:len(_REGION_GROUP)]:
        for i, f in enumerate(r.fields):
            bits = f"[{f.lsb + f.width - 1}:{f.lsb}]" if f.width > 1 else f"[{f.lsb}]"
            out.append(f"| {r.addr - REGION_BASE:#04x} | {r.name[3:] if i == 0 else ''} | {f.name} | "
                       f"{bits} | {r.desc if i == 0 else ''} |")
    out += ["", f"Total: {len(registers(cfg))} registers.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
