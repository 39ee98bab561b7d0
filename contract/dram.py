"""DRAM timing of the memory controller: parameters, their published sources, address map.

One RTL memory stands for **one HBM2 pseudo-channel** (64 bit, 16 banks in 4 bank
groups, 1 KiB rows); the device's 64 pseudo-channels are taken to see statistically the
same traffic, so one RTL line per cycle stands for the whole device's peak bandwidth (1
TB/s in the paper's GPU) as the rest of the RTL assumes. One RTL cycle is one data burst
of that channel (``tBURST`` = 2 ns: BL4 at 1 GHz DDR), so the streaming peak is exactly
one line per cycle, and every timing parameter below is its published value in ns
divided by 2 ns, rounded up (a DRAM constraint is a minimum: rounding up keeps it).

HBM2 has separate row and column command buses, so the controller issues at most one
row command (ACT or PRE) and at most one column command (RD, WR or UPD) per cycle.

Source of the ns values (:data:`HBM2_NS`): gem5's ``HBM_2000_4H_1x64`` pseudo-channel
interface (``src/python/gem5/components/memory/dram_interfaces/hbm.py``, "based on HBM
gen2 specifications"), cross-checked against gem5's gen1 x128 set and the JEDEC JESD235
structure (banks, bank groups, separate row/column command buses). docs/memory.md quotes
the table. Refresh (tRFC 220 ns every tREFI 3.9 us, about 5.6 % of the time) is not
modelled.

Bank XOR (``bank_xor``, on by default): the bank-group and bank fields of a line address
are XORed with its row folded to their width (every row bit XORed in: :func:`row_hash`;
permutation-based page interleaving, Zhang, Zhu and Zhang, MICRO 2000), as GPU memory
controllers hash addresses: two sequential streams whose addresses differ only in the
row (the fused reduce-scatter's DMA READs of one chunk and UPDATEs into another) then
walk different banks instead of conflicting in every bank, whatever the distance
between them. Lines of one row still share a bank (the XOR term is constant in a row).

The UPDATE (near-memory read-add-write) is our choice, documented in docs/memory.md: on
the data bus it is a write (the addend travels to the bank, ``tCWL`` after the command);
inside the bank the column circuitry reads the line, adds and writes it back, so the bank
takes no other column command for ``t_rmw`` cycles (default ``tRTW``: a read followed by
a write to the same bank), and its row may be precharged only ``t_wr`` after that
internal write-back.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

from .config_error import ConfigError

__all__ = ["HBM2_NS", "CYCLE_NS", "MAPPINGS", "DramTiming", "DramAddress", "decode", "row_hash"]

#: gem5 HBM_2000_4H_1x64 (one pseudo-channel), in ns; see the module doc
HBM2_NS: dict[str, float] = {
    "t_burst": 2.0,    # BL4 at 1 GHz DDR: 4 x 64 bit
    "t_rcd": 12.0,     # activate -> read
    "t_rcd_wr": 6.0,   # activate -> write
    "t_cl": 18.0,      # read CAS latency
    "t_cwl": 7.0,      # write CAS latency
    "t_rp": 14.0,      # precharge
    "t_ras": 28.0,     # activate -> precharge, minimum
    "t_ccd_l": 3.0,    # column -> column, same bank group (other groups: t_burst)
    "t_wr": 14.0,      # write recovery (end of write data -> precharge)
    "t_rtp": 5.0,      # read -> precharge
    "t_wtr_s": 4.0,    # end of write data -> read, other bank group
    "t_wtr_l": 9.0,    # end of write data -> read, same bank group
    "t_rtw": 18.0,     # read -> write turnaround
    "t_rrd_s": 4.0,    # activate -> activate, other bank group
    "t_rrd_l": 6.0,    # activate -> activate, same bank group
    "t_faw": 16.0,     # four-activate window (at most 4 ACTs in any window this long)
}
#: one RTL cycle = one data burst of the pseudo-channel
CYCLE_NS = HBM2_NS["t_burst"]

#: address mappings: line-address fields from the least significant bit up. "bg" = bank
#: group, "bank" = bank within its group, "col" = line within the row, "row" = the rest.
#: The default puts the bank group lowest, so consecutive lines rotate over the groups
#: (tCCD_S apart: one line per cycle) and stay in one row per bank for row_lines lines.
MAPPINGS: dict[str, tuple[str, ...]] = {
    "bg-col-bank-row": ("bg", "col", "bank", "row"),
    "bg-bank-col-row": ("bg", "bank", "col", "row"),
    "col-bg-bank-row": ("col", "bg", "bank", "row"),
}

_TIMING_FIELDS = ("t_rcd", "t_rcd_wr", "t_cl", "t_cwl", "t_rp", "t_ras", "t_ccd_s", "t_ccd_l",
                  "t_wr", "t_rtp", "t_wtr_s", "t_wtr_l", "t_rtw", "t_rrd_s", "t_rrd_l", "t_faw",
                  "t_rmw")


def _cycles(ns: float) -> int:
    return max(1, math.ceil(round(ns / CYCLE_NS, 9)))


@dataclass(frozen=True)
class DramTiming:
    """Banks, address map, timing (in RTL cycles) and scheduling limits of one controller.

    Every ``t_*`` is a minimum distance in cycles between two commands (docs/memory.md
    lists which pair each constrains). :meth:`hbm2` builds the published set; the
    dataclass defaults are that set.
    """
    bank_groups: int = 4
    banks_per_group: int = 4
    row_lines: int = 32                 # lines (bursts) per row: 1 KiB row / 32 B burst
    mapping: str = "bg-col-bank-row"
    t_rcd: int = _cycles(HBM2_NS["t_rcd"])
    t_rcd_wr: int = _cycles(HBM2_NS["t_rcd_wr"])
    t_cl: int = _cycles(HBM2_NS["t_cl"])
    t_cwl: int = _cycles(HBM2_NS["t_cwl"])
    t_rp: int = _cycles(HBM2_NS["t_rp"])
    t_ras: int = _cycles(HBM2_NS["t_ras"])
    t_ccd_s: int = 1                    # = t_burst: back-to-back bursts, other groups
    t_ccd_l: int = _cycles(HBM2_NS["t_ccd_l"])
    t_wr: int = _cycles(HBM2_NS["t_wr"])
    t_rtp: int = _cycles(HBM2_NS["t_rtp"])
    t_wtr_s: int = _cycles(HBM2_NS["t_wtr_s"])
    t_wtr_l: int = _cycles(HBM2_NS["t_wtr_l"])
    t_rtw: int = _cycles(HBM2_NS["t_rtw"])
    t_rrd_s: int = _cycles(HBM2_NS["t_rrd_s"])
    t_rrd_l: int = _cycles(HBM2_NS["t_rrd_l"])
    t_faw: int = _cycles(HBM2_NS["t_faw"])
    t_rmw: int = _cycles(HBM2_NS["t_rtw"])  # UPDATE holds its bank (our choice, module doc)
    age_cap: int = 64                   # a request older than this is served first
    #                                    (docs/memory.md "Measured": 256 measured better)
    bank_xor: bool = True               # permutation-based interleaving: bank group and bank
                                        # XOR the folded row (module doc, row_hash)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, where: str = "dram") -> None:
        def bad(name: str, allowed: str) -> None:
            raise ConfigError(f"{where}: {name}={getattr(self, name)!r}: {allowed}")

        for name in ("bank_groups", "banks_per_group", "row_lines"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 1024 or v & (v - 1):
                bad(name, "must be a power of two in [1, 1024]")
        if self.mapping not in MAPPINGS:
            bad("mapping", f"must be one of {', '.join(MAPPINGS)}")
        for name in _TIMING_FIELDS:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 255:
                bad(name, "must be an integer number of cycles in [1, 255]")
        if self.t_ccd_l < self.t_ccd_s:
            bad("t_ccd_l", f"must be >= t_ccd_s ({self.t_ccd_s})")
        if not isinstance(self.bank_xor, bool):
            bad("bank_xor", "must be true or false")
        if not isinstance(self.age_cap, int) or isinstance(self.age_cap, bool) \
                or not 1 <= self.age_cap <= 4095:
            bad("age_cap", "must be an integer number of cycles in [1, 4095]")

    # ---- derived -----------------------------------------------------------------------
    @property
    def banks(self) -> int:
        return self.bank_groups * self.banks_per_group

    @property
    def field_bits(self) -> dict[str, int]:
        """Width of each fixed address field (``row`` takes the remaining bits)."""
        return {"bg": self.bank_groups.bit_length() - 1,
                "bank": self.banks_per_group.bit_length() - 1,
                "col": self.row_lines.bit_length() - 1}

    @property
    def write_to_read_same(self) -> int:
        """Write (or UPDATE) -> read, same bank group: tCWL + burst + tWTR_L."""
        return self.t_cwl + 1 + self.t_wtr_l

    @property
    def write_to_read_other(self) -> int:
        """Write (or UPDATE) -> read, other bank group: tCWL + burst + tWTR_S."""
        return self.t_cwl + 1 + self.t_wtr_s

    @property
    def write_to_precharge(self) -> int:
        """Write -> precharge of its bank: tCWL + burst + tWR."""
        return self.t_cwl + 1 + self.t_wr

    @property
    def update_to_precharge(self) -> int:
        """UPDATE -> precharge of its bank: the internal write-back ends after t_rmw, then tWR."""
        return self.t_rmw + self.t_wr

    @property
    def read_latency(self) -> int:
        """Read command -> its data complete (tCL + one burst)."""
        return self.t_cl + 1

    # ---- construction ------------------------------------------------------------------
    @classmethod
    def hbm2(cls, **changes: Any) -> "DramTiming":
        """The published HBM2 set (the defaults), with ``changes`` applied."""
        return cls(**changes)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "dram") -> "DramTiming":
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(f"{where}: {key}={data[key]!r}: unknown key "
                                  f"(known: {', '.join(sorted(known))})")
        try:
            return cls(**dict(data))
        except ConfigError as e:
            raise ConfigError(f"{where}: {str(e).split(': ', 1)[-1]}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DramAddress:
    """Where a line lives: ``bank`` = group * banks_per_group + bank within the group."""
    bank: int
    group: int
    row: int
    col: int


def row_hash(timing: DramTiming, row: int) -> int:
    """The bank XOR term of ``row``: all its bits folded (XORed) into one bank-index-wide
    value, bank-group bits lowest (``bank_xor``; the module doc)."""
    w = timing.field_bits["bg"] + timing.field_bits["bank"]
    h = 0
    while row and w:
        h ^= row & ((1 << w) - 1)
        row >>= w
    return h


def decode(timing: DramTiming, addr: int) -> DramAddress:
    """Split line address ``addr`` by ``timing.mapping`` (fields LSB first)."""
    widths = timing.field_bits
    fields: dict[str, int] = {}
    shift = 0
    for name in MAPPINGS[timing.mapping]:
        if name == "row":
            fields["row"] = addr >> shift
            continue
        fields[name] = (addr >> shift) & ((1 << widths[name]) - 1)
        shift += widths[name]
    if timing.bank_xor:
        h = row_hash(timing, fields["row"])
        fields["bg"] ^= h & (timing.bank_groups - 1)
        fields["bank"] ^= h >> widths["bg"]
    return DramAddress(bank=fields["bg"] * timing.banks_per_group + fields["bank"],
                       group=fields["bg"], row=fields["row"], col=fields["col"])
