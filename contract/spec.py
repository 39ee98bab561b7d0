"""The one specification of T3: configuration, number formats, opcodes and field layouts.

Everything that has a width, an encoding or a default is defined here, once. The
hardware (``hw/``) builds its ports and registers from these descriptions; the golden
models, the trace format and the CLI read them too. This module is pure Python: it
imports no HDL.

Units are in the names: ``*_lines`` counts memory lines (one line = ``line_bytes``
bytes = ``lanes`` elements), ``*_cycles`` counts clock cycles of the T3 unit.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .config_error import ConfigError
from .dram import DramTiming

__all__ = [
    "ConfigError", "FloatFormat", "FORMATS", "float_format",
    "Op", "OP_BITS", "ProducerAction", "FireOp", "FIRE_OP_TO_OP", "fire_packet_op", "Layout",
    "COUNTER_BITS", "MCA_STARVE_BITS", "FP_ADDER_STAGES_MAX", "MCA_WINDOW_LOG2_MAX",
    "MIN_MEM_DEPTH_LINES", "MEMORIES", "T3Config", "DEFAULT_CONFIG", "load_config", "read_text",
    "producer_request_fields", "memory_request_fields", "memory_response_fields",
    "link_packet_fields", "fields_width",
    "CONTRIB_BITS", "PHASE_UPDATE", "PHASE_STORE", "region_fields", "tracked_request_fields",
    "fire_fields",
]


def _fail(where: str, name: str, value: Any, allowed: str) -> None:
    prefix = f"{where}: " if where else ""
    raise ConfigError(f"{prefix}{name}={value!r}: {allowed}")


# --------------------------------------------------------------------------------------
# Number formats
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FloatFormat:
    """An IEEE 754 binary interchange format (or bfloat16, which follows the same rules).

    NaN policy of T3 (hardware and golden model alike): any operation whose IEEE result
    is NaN returns the *canonical quiet NaN*: sign 0, exponent all ones, only the top
    mantissa bit set (fp16 0x7E00, bf16 0x7FC0, fp32 0x7FC00000). Input NaN payloads are
    not propagated.
    """
    name: str
    exp_bits: int
    man_bits: int          # stored (fraction) bits, without the hidden bit

    @property
    def width(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def bytes(self) -> int:
        return self.width // 8

    @property
    def bias(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def exp_max(self) -> int:
        """Biased exponent field value of infinities and NaNs."""
        return (1 << self.exp_bits) - 1

    @property
    def canonical_nan(self) -> int:
        return (self.exp_max << self.man_bits) | (1 << (self.man_bits - 1))

    @property
    def uint_dtype(self) -> str:
        """numpy dtype name of the raw bit pattern."""
        return {16: "uint16", 32: "uint32"}[self.width]

    def is_nan(self, bits: int) -> bool:
        exp = (bits >> self.man_bits) & self.exp_max
        return exp == self.exp_max and (bits & ((1 << self.man_bits) - 1)) != 0


FORMATS: dict[str, FloatFormat] = {
    "fp16": FloatFormat("fp16", exp_bits=5, man_bits=10),
    "bf16": FloatFormat("bf16", exp_bits=8, man_bits=7),
    "fp32": FloatFormat("fp32", exp_bits=8, man_bits=23),
}


def float_format(name: str) -> FloatFormat:
    if name not in FORMATS:
        _fail("", "dtype", name, f"must be one of {', '.join(FORMATS)}")
    return FORMATS[name]


# --------------------------------------------------------------------------------------
# Encodings
# --------------------------------------------------------------------------------------

class Op(enum.IntEnum):
    """Memory request opcode (memory requests, producer requests, link packets)."""
    READ = 0     # return the line
    STORE = 1    # overwrite the line (masked lanes untouched)
    UPDATE = 2   # atomic read-add-write: line[i] = line[i] + data[i] per lane


OP_BITS = 2


class ProducerAction(enum.IntEnum):
    """What the address map does with a *producer* (local GPU) request in a region."""
    LOCAL = 0     # plain local request, untracked
    REMOTE = 1    # sent over the link to the next device (address translated), not local
    TRACKED = 2   # applied locally and counted by the tracker


PRODUCER_ACTION_BITS = 2


class FireOp(enum.IntEnum):
    """What a tracker entry triggers when its count reaches its threshold."""
    NONE = 0      # tile complete, nothing to send (e.g. the last all-gather hop)
    UPDATE = 1    # DMA the tile to the next device as UPDATEs (reduce-scatter)
    STORE = 2     # DMA the tile to the next device as STOREs (all-gather)


FIRE_OP_BITS = 2

#: the memory opcode of the DMA packets a fired tile sends (FireOp.NONE sends nothing)
FIRE_OP_TO_OP: dict[FireOp, Op] = {FireOp.UPDATE: Op.UPDATE, FireOp.STORE: Op.STORE}


def fire_packet_op(fire: FireOp | int) -> Op:
    """The :class:`Op` of the packets a tile fired with ``fire`` sends to the next device
    (ValueError for FireOp.NONE, which sends none)."""
    fire = FireOp(fire)
    if fire not in FIRE_OP_TO_OP:
        raise ValueError(f"fire_packet_op: {fire.name} sends no packets")
    return FIRE_OP_TO_OP[fire]


#: most pipeline registers a FloatAdder supports (hw/fp.py STAGE_CUTS: one per combinational
#: step, docs/fp.md)
FP_ADDER_STAGES_MAX = 6

#: width of every event counter (wrapping) and of the counter registers
COUNTER_BITS = 32

#: width of the MCA starvation limit register and of the arbiter's wait counter
#: (the longest-wait status is one bit wider: it saturates above the limit)
MCA_STARVE_BITS = 16
#: largest MCA measurement window, log2 cycles (hw/mca_threshold.py)
MCA_WINDOW_LOG2_MAX = 20


class Layout(str, enum.Enum):
    """Memory layout of the M x N output matrix."""
    ROW_MAJOR = "row"   # lines run along N; the outer (major) dimension is M
    COL_MAJOR = "col"   # lines run along M; the outer (major) dimension is N


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------

#: the smallest memory a T3 unit has, in lines (T3Config.mem_depth_lines)
MIN_MEM_DEPTH_LINES = 16


#: the memory models of ``T3Config.memory``
MEMORIES = ("ideal", "dram")


def _ceil_log2(n: int) -> int:
    return max(1, math.ceil(math.log2(n))) if n > 1 else 1


@dataclass(frozen=True)
class T3Config:
    """Configuration of one T3 unit and of the ring it sits in.

    Defaults follow the paper where it has a value (256 tracker entries, FP16, ring of
    4, 500 ns link latency at 1.4 GHz = 700 cycles, 150 GB/s link vs 1 TB/s memory =
    0.15 lines per memory-line slot). The rest are our choices, documented in
    docs/architecture.md.
    """
    dtype: str = "fp16"
    line_bytes: int = 64                 # bytes per memory line (one request moves one line)
    mem_depth_lines: int = 16384         # lines of storage per device (16384 x 64 B = 1 MiB)
    tracker_entries: int = 256           # paper: 256 entries (the cached counts)
    tracker_ways: int = 4                # tracker table associativity: entries / ways sets
                                         # (entries <= ways: one fully associative set)
    tracker_counters: int = 0            # backing counter SRAM (counters, a power of two):
                                         # one per phase per tile origin line; 0: enough
                                         # for the whole memory, 2 * 2**addr_bits
    ring_devices: int = 4                # paper's example ring
    link_latency_cycles: int = 700       # 500 ns at 1.4 GHz
    link_lines_per_cycle: float = 0.15   # 150 GB/s link / 1 TB/s memory (1 line per cycle)
    fp_adder_stages: int = 2             # pipeline registers in each FloatAdder
    wf_outer_bits: int = 8               # WF id = {outer tile index, inner tile index}
    wf_inner_bits: int = 8
    regions: int = 16                    # address-map / DMA-command regions per device
    count_bits: int = 12                 # tracker count width: lines x contributions per tile
    dma_queue_depth: int = 8             # fired tiles waiting for the DMA engine (a ring
                                         # needs >= its WF tiles / devices:
                                         # contract.sizing.fire_queue_needed)
    mem_queue_depth: int = 16            # memory-controller request queue (MCA watches it)
    arbiter_policy: str = "mca"          # "fifo" (plain round-robin) or "mca"
    mca_queue_threshold: int = 8         # MCA: communication issues only below this occupancy
    mca_starvation_limit: int = 64       # MCA: max cycles communication waits
    mca_window_log2: int = 0             # MCA: measure the GEMM's intensity over 2**this
                                         # cycles and set the threshold from it
                                         # (hw/mca_threshold.py); 0: fixed threshold
    csr_addr_bits: int = 12              # register bus word-address width
    csr_data_bits: int = 32              # register bus data width
    clock_ghz: float = 1.4               # for converting cycles to time in reports
    memory: str = "ideal"                # "ideal": one line per cycle, any pattern (unit
                                         # tests); "dram": the FR-FCFS DRAM controller
                                         # (hw/dram.py) with timing `dram`
    dram: DramTiming = DramTiming()      # banks, mapping, timing (cycles): HBM2 defaults
                                         # (contract/dram.py, docs/memory.md)

    # ---- validation ------------------------------------------------------------------
    def __post_init__(self) -> None:
        self.validate()

    def validate(self, where: str = "config") -> None:
        def rng(name: str, lo: float, hi: float, *, integer: bool = True) -> None:
            v = getattr(self, name)
            ok_type = (isinstance(v, int) and not isinstance(v, bool)) if integer \
                else (isinstance(v, (int, float)) and not isinstance(v, bool))
            if not ok_type or not (lo <= v <= hi):
                kind = "an integer" if integer else "a number"
                _fail(where, name, v, f"must be {kind} in [{lo}, {hi}]")

        def pow2(name: str) -> None:
            v = getattr(self, name)
            if v & (v - 1):
                _fail(where, name, v, "must be a power of two")

        if not isinstance(self.dtype, str) or self.dtype not in FORMATS:
            _fail(where, "dtype", self.dtype, f"must be one of {', '.join(FORMATS)}")
        rng("line_bytes", 4, 256)
        pow2("line_bytes")
        if self.line_bytes % self.fmt.bytes:
            _fail(where, "line_bytes", self.line_bytes,
                  f"must be a multiple of the {self.dtype} element size ({self.fmt.bytes} B)")
        rng("mem_depth_lines", MIN_MEM_DEPTH_LINES, 1 << 24)
        rng("tracker_entries", 2, 4096)
        rng("tracker_ways", 1, 16)
        if self.tracker_entries > self.tracker_ways and self.tracker_entries % self.tracker_ways:
            _fail(where, "tracker_entries", self.tracker_entries,
                  f"must be a multiple of tracker_ways={self.tracker_ways} (or at most "
                  f"tracker_ways: one fully associative set)")
        rng("tracker_counters", 0, 1 << 25)
        if self.tracker_counters == 1 or self.tracker_counters & (self.tracker_counters - 1):
            _fail(where, "tracker_counters", self.tracker_counters,
                  "must be 0 (one per phase per memory line) or a power of two >= 2")
        rng("ring_devices", 2, 64)
        rng("link_latency_cycles", 1, 1 << 20)
        rng("link_lines_per_cycle", 1e-3, 1.0, integer=False)
        rng("fp_adder_stages", 1, FP_ADDER_STAGES_MAX)
        rng("wf_outer_bits", 1, 16)
        rng("wf_inner_bits", 1, 16)
        rng("regions", 1, 64)
        rng("count_bits", 2, 24)
        rng("dma_queue_depth", 1, 4096)
        rng("mem_queue_depth", 2, 1024)
        if self.arbiter_policy not in ("fifo", "mca"):
            _fail(where, "arbiter_policy", self.arbiter_policy, "must be 'fifo' or 'mca'")
        rng("mca_queue_threshold", 1, self.mem_queue_depth)
        rng("mca_starvation_limit", 1, (1 << MCA_STARVE_BITS) - 1)
        rng("mca_window_log2", 0, MCA_WINDOW_LOG2_MAX)
        rng("csr_addr_bits", 8, 16)
        rng("csr_data_bits", 32, 32)
        rng("clock_ghz", 0.01, 100.0, integer=False)
        if self.memory not in MEMORIES:
            _fail(where, "memory", self.memory, f"must be one of {', '.join(MEMORIES)}")
        if not isinstance(self.dram, DramTiming):
            _fail(where, "dram", self.dram, "must be a contract.dram.DramTiming (a table "
                  "of its fields in TOML)")
        if self.addr_bits > 32:
            _fail(where, "mem_depth_lines", self.mem_depth_lines, "needs more than 32 address bits")

    # ---- derived values --------------------------------------------------------------
    @property
    def fmt(self) -> FloatFormat:
        return FORMATS[self.dtype]

    @property
    def elem_bits(self) -> int:
        return self.fmt.width

    @property
    def lanes(self) -> int:
        """Elements per line (one FloatAdder per lane in the near-memory ALU)."""
        return self.line_bytes // self.fmt.bytes

    @property
    def line_bits(self) -> int:
        return self.line_bytes * 8

    @property
    def addr_bits(self) -> int:
        """Width of a line address (local memory, link packets)."""
        return _ceil_log2(self.mem_depth_lines)

    @property
    def wf_id_bits(self) -> int:
        return self.wf_outer_bits + self.wf_inner_bits

    @property
    def device_bits(self) -> int:
        return _ceil_log2(self.ring_devices)

    @property
    def region_bits(self) -> int:
        return _ceil_log2(self.regions)

    @property
    def tracker_assoc(self) -> int:
        """Ways per tracker set: ``tracker_ways``, or every entry when there are fewer."""
        return min(self.tracker_ways, self.tracker_entries)

    @property
    def tracker_sets(self) -> int:
        """Sets of the tracker table (entries / ways; need not be a power of two)."""
        return self.tracker_entries // self.tracker_assoc

    @property
    def tracker_counter_slots(self) -> int:
        """Counters in the tracker's backing store: ``tracker_counters``, or 0 -> one per
        phase per line address (2 * 2**addr_bits)."""
        return self.tracker_counters or 2 << self.addr_bits

    @property
    def tracker_counter_index_bits(self) -> int:
        """Width of a backing-counter index {origin line, phase} (phase in bit 0)."""
        return self.tracker_counter_slots.bit_length() - 1

    @property
    def max_tile_count(self) -> int:
        """Largest threshold (lines x contributions) one tracker entry can count to."""
        return (1 << self.count_bits) - 1

    @property
    def link_credit_ratio(self) -> tuple[int, int]:
        """``link_lines_per_cycle`` as the exact fraction (num, den), den <= 256, used by
        the hardware link model: ``num`` lines may be sent every ``den`` cycles."""
        from fractions import Fraction
        f = Fraction(self.link_lines_per_cycle).limit_denominator(256)
        return f.numerator, f.denominator

    # ---- construction ----------------------------------------------------------------
    def replace(self, **changes: Any) -> "T3Config":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "config") -> "T3Config":
        """Build from a mapping (e.g. a TOML table). ``lanes`` may be given instead of
        (or consistently with) ``line_bytes``. Unknown keys are errors."""
        known = {f.name for f in dataclasses.fields(cls)}
        data = dict(data)
        lanes = data.pop("lanes", None)
        if isinstance(data.get("dram"), Mapping):
            data["dram"] = DramTiming.from_dict(data["dram"], where=f"{where}: dram")
        for key in data:
            if key not in known:
                _fail(where, key, data[key], f"unknown key (known: lanes, {', '.join(sorted(known))})")
        dtype = data.get("dtype", cls.dtype)
        if lanes is not None:
            if not isinstance(dtype, str) or dtype not in FORMATS:
                _fail(where, "dtype", dtype, f"must be one of {', '.join(FORMATS)}")
            if not isinstance(lanes, int) or isinstance(lanes, bool) or lanes < 1:
                _fail(where, "lanes", lanes, "must be a positive integer")
            lb = lanes * FORMATS[dtype].bytes
            if "line_bytes" in data and data["line_bytes"] != lb:
                _fail(where, "lanes", lanes,
                      f"disagrees with line_bytes={data['line_bytes']} for {dtype}")
            data["line_bytes"] = lb
        try:
            cfg = cls(**data)
        except ConfigError as e:
            msg = str(e)
            if not msg.startswith(where):
                msg = f"{where}: {msg.split(': ', 1)[-1]}"
            raise ConfigError(msg) from None
        if where != "config":
            cfg.validate(where)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


DEFAULT_CONFIG = T3Config()


def read_text(path: str | Path) -> str:
    """The UTF-8 text of an input file, or a one-line ConfigError naming the file and
    why it cannot be read (every loader of the project's input files uses this)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None


def load_config(path: str | Path, *, table: str | None = "t3") -> T3Config:
    """Load a T3Config from a TOML file (its ``[t3]`` table, or the top level when the
    file has no such table). Errors name the file, the key and the problem."""
    path = Path(path)
    text = read_text(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    if table and table in doc:
        doc = doc[table]
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: [{table}] must be a table")
    return T3Config.from_dict(doc, where=str(path))


# --------------------------------------------------------------------------------------
# Field layouts. Each is an ordered list of (name, width in bits), LSB first. The
# hardware turns them into amaranth.lib.data.StructLayout; trace files and the
# register driver use the same names.
# --------------------------------------------------------------------------------------

Fields = list[tuple[str, int]]


def producer_request_fields(cfg: T3Config) -> Fields:
    """A line-granular store from the GPU (the producer) to the T3 unit."""
    return [("op", OP_BITS), ("addr", cfg.addr_bits), ("wf_id", cfg.wf_id_bits),
            ("data", cfg.line_bits)]


def memory_request_fields(cfg: T3Config) -> Fields:
    """A request into the compute-enhanced memory (after the address map / arbiter).
    ``mask`` has one bit per lane: a STORE or UPDATE changes only the lanes whose bit is
    set (READ ignores it)."""
    return [("op", OP_BITS), ("addr", cfg.addr_bits), ("mask", cfg.lanes),
            ("data", cfg.line_bits)]


def memory_response_fields(cfg: T3Config) -> Fields:
    """Response to a READ, in request order."""
    return [("data", cfg.line_bits)]


def link_packet_fields(cfg: T3Config) -> Fields:
    """One line travelling over the ring link to the next device."""
    return [("op", OP_BITS), ("dest", cfg.device_bits), ("addr", cfg.addr_bits),
            ("wf_id", cfg.wf_id_bits), ("data", cfg.line_bits)]


def fields_width(fields: Fields) -> int:
    return sum(w for _, w in fields)


# ---- track & trigger (issue #4) ------------------------------------------------------

CONTRIB_BITS = 4     # update_contribs / store_contribs per line: 0..15 (program.Region)
PHASE_UPDATE = 0     # tracker key phase of UPDATE arrivals (reduce-scatter)
PHASE_STORE = 1      # tracker key phase of STORE arrivals (all-gather)


def region_fields(cfg: T3Config) -> Fields:
    """One programmed region (program.Region) as the hardware holds it. Line addresses
    and extents take ``addr_bits + 1`` bits because ``limit`` may equal the memory
    depth; tile sizes take ``count_bits`` (a tile's lines never exceed its count)."""
    a = cfg.addr_bits + 1
    return [("base", a), ("limit", a), ("remote_base", a), ("dest_base", a),
            ("pitch", a), ("outer_extent", a), ("inner_extent", a),
            ("tile_outer", cfg.count_bits), ("tile_inner", cfg.count_bits),
            ("tile_outer0", cfg.wf_outer_bits), ("tile_inner0", cfg.wf_inner_bits),
            ("producer", PRODUCER_ACTION_BITS),
            ("update_contribs", CONTRIB_BITS), ("update_fire", FIRE_OP_BITS),
            ("store_contribs", CONTRIB_BITS), ("store_fire", FIRE_OP_BITS)]


def tracked_request_fields(cfg: T3Config) -> Fields:
    """A memory request after the address map: the memory request plus what the tracker
    needs (``tracked`` = count it under key (phase, wf_id) in region ``region``)."""
    return memory_request_fields(cfg) + [("wf_id", cfg.wf_id_bits), ("region", cfg.region_bits),
                                         ("phase", 1), ("tracked", 1)]


def fire_fields(cfg: T3Config) -> Fields:
    """A tracker entry that reached its threshold: the tile to hand to the DMA engine.
    ``whole`` = 1 (a software kick through the DMA_KICK register, used by the unfused
    baseline) moves the whole region instead of one tile."""
    return [("wf_id", cfg.wf_id_bits), ("region", cfg.region_bits), ("phase", 1),
            ("whole", 1)]
