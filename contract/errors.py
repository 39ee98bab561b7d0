"""Sticky error flags of the T3 unit: the one list, each tagged with its source block.

Nothing is ever dropped in hardware: a request that cannot be applied as programmed is
consumed (or applied uncounted) and raises a sticky flag visible to software in the
``ERR`` register (cleared by writing 1), with the offending address or key in
``ERR_ADDR`` / ``ERR_KEY``. The hardware builds each block's error port from
:func:`flags_of`; the register map (:mod:`contract.regmap`) lays the flags out in this
order; the testbenches and the coverage points take their names from here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ErrorFlag", "ERROR_FLAGS", "BLOCKS", "BLOCK_TITLES", "flags_of", "describe"]

#: source blocks, in register order
BLOCKS = ("addrmap", "tracker", "track_trigger")
#: how the register map names each block
BLOCK_TITLES = {"addrmap": "address map", "tracker": "tracker", "track_trigger": "DMA kick"}


@dataclass(frozen=True)
class ErrorFlag:
    """One sticky error flag: its ``name`` (the ERR register field), the ``block`` that
    raises it (one of :data:`BLOCKS`) and ``doc``: what sets it and where its detail is."""
    name: str
    block: str
    doc: str


#: every flag, in ERR register bit order (LSB first)
ERROR_FLAGS: tuple[ErrorFlag, ...] = (
    ErrorFlag("addr_range", "addrmap",
              "a producer request or link packet addresses a line >= mem_depth_lines "
              "(consumed, not applied); address in ERR_ADDR"),
    ErrorFlag("bad_op", "addrmap",
              "a READ arrived as a link packet (consumed, not applied); address in ERR_ADDR"),
    ErrorFlag("tile_outside", "tracker",
              "a tracked request's wf_id names a tile outside its region (applied to "
              "memory, not counted); key in ERR_KEY"),
    ErrorFlag("threshold_zero", "tracker",
              "a tracked arrival into a region whose contribs for that phase is 0 "
              "(applied, not counted); key in ERR_KEY"),
    ErrorFlag("count_over", "tracker",
              "an entry's count passed its threshold (the threshold changed under a live "
              "entry); the entry fires and is freed; key in ERR_KEY"),
    ErrorFlag("refire", "tracker",
              "an arrival for one of the last fired tiles (fired-key history); applied, "
              "not counted; key in ERR_KEY"),
    ErrorFlag("counter_range", "tracker",
              "a tracked request's tile has no backing counter (its first line >= "
              "tracker_counters / 2): applied to memory, not counted, the tile will not "
              "fire; key in ERR_KEY. Size tracker_counters for the memory the regions use"),
    ErrorFlag("kick_overflow", "track_trigger",
              "DMA_KICK written while the previous kick was still pending (the new kick is "
              "not taken; wait for STATUS.kick_pending = 0)"),
)

_BY_NAME = {f.name: f for f in ERROR_FLAGS}
assert len(_BY_NAME) == len(ERROR_FLAGS), "duplicate error flag name"
assert all(f.block in BLOCKS for f in ERROR_FLAGS), "error flag of an unknown block"


def flags_of(block: str) -> tuple[str, ...]:
    """Names of the flags ``block`` raises, in register order."""
    if block not in BLOCKS:
        raise ValueError(f"flags_of: block={block!r}: must be one of {', '.join(BLOCKS)}")
    return tuple(f.name for f in ERROR_FLAGS if f.block == block)


def describe(name: str) -> str:
    """``"<block>: <doc>"`` of flag ``name`` (the register map's description)."""
    f = _BY_NAME[name]
    return f"{BLOCK_TITLES[f.block]}: {f.doc}"
