"""Model of the tracker's count table (hw/tracker_table.py): a set-associative cache of
per-tile counts over a backing counter store.

Given the tracked requests in the order the tracker counts them (the order they reach
``mem``), :class:`TrackerCacheModel` predicts, request by request, whether the tile was
cached (hit), read from the backing store (miss), took a way (fill), evicted a live tile
(spill) and completed its tile (fire), and keeps the counts. Written from the policy as
docs/tracker.md states it, not from the RTL:

* a tile is named by its backing-counter index ``2 * origin + phase`` (origin = the
  tile's first line); its set is :func:`set_index` of the index;
* a hit adds 1 to the way's count; a miss reads the backing counter and adds 1;
* the request whose count reaches the tile's threshold fires: the tile leaves the table
  (if cached) and its backing counter is cleared;
* otherwise a miss takes a way: the lowest invalid way of the set, else the way a
  round-robin pointer shared by all sets names (the pointer advances after each
  eviction); an evicted tile's count is written to its backing counter (a spill).

Pure Python (contract only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contract.spec import ConfigError, T3Config

__all__ = ["set_index", "counter_index", "Access", "TrackerCacheModel"]


def counter_index(origin: int, phase: int) -> int:
    """The backing-counter index of the tile whose first line is ``origin``."""
    return 2 * origin + phase


def set_index(cfg: T3Config, idx: int) -> int:
    """The table set of counter index ``idx``: XOR of its k-bit pieces (k = bits of
    sets - 1), scaled to the number of sets (``fold * sets >> k``)."""
    sets = cfg.tracker_sets
    if sets == 1:
        return 0
    k = (sets - 1).bit_length()
    fold = 0
    rest = idx
    while rest:
        fold ^= rest & ((1 << k) - 1)
        rest >>= k
    return fold if sets == 1 << k else (fold * sets) >> k


@dataclass(frozen=True)
class Access:
    """What the table did with one tracked request."""
    hit: bool
    fill: bool
    spill: bool
    fire: bool
    count: int         # the tile's count after the request (0 once it fired)


@dataclass
class TrackerCacheModel:
    """The table state and its event counts (``hits``, ``misses``, ``fills``,
    ``spills``, ``fires``, ``peak_live``: most tiles live at once, cached or not)."""
    cfg: T3Config
    ways: list = field(init=False)      # per set: list of [idx, count] or None
    backing: dict = field(init=False, default_factory=dict)
    rr: int = 0
    counts: dict = field(init=False, default_factory=lambda: dict.fromkeys(
        ("hits", "misses", "fills", "spills", "fires"), 0))
    peak_live: int = 0

    def __post_init__(self):
        self.ways = [[None] * self.cfg.tracker_assoc for _ in range(self.cfg.tracker_sets)]
        self._live: set[int] = set()

    def access(self, origin: int, phase: int, threshold: int) -> Access:
        """Count one tracked request of the tile (``origin``, ``phase``) whose threshold
        is ``threshold`` (>= 1)."""
        if threshold < 1:
            raise ConfigError(f"TrackerCacheModel.access: threshold={threshold}: must be >= 1")
        idx = counter_index(origin, phase)
        if idx >= self.cfg.tracker_counter_slots:
            raise ConfigError(f"TrackerCacheModel.access: origin={origin}: no backing counter "
                              f"(tracker_counters={self.cfg.tracker_counter_slots})")
        ways = self.ways[set_index(self.cfg, idx)]
        hit_way = next((w for w, e in enumerate(ways) if e is not None and e[0] == idx), None)
        hit = hit_way is not None
        self.counts["hits" if hit else "misses"] += 1
        count = (ways[hit_way][1] if hit else self.backing.get(idx, 0)) + 1
        if count >= threshold:
            self.counts["fires"] += 1
            if hit:
                ways[hit_way] = None
            self.backing[idx] = 0
            self._live.discard(idx)
            return Access(hit=hit, fill=False, spill=False, fire=True, count=0)
        self._live.add(idx)
        self.peak_live = max(self.peak_live, len(self._live))
        if hit:
            ways[hit_way][1] = count
            return Access(hit=True, fill=False, spill=False, fire=False, count=count)
        return self._fill(ways, idx, count)

    def _fill(self, ways: list, idx: int, count: int) -> Access:
        free = next((w for w, e in enumerate(ways) if e is None), None)
        spill = free is None
        if spill:
            free = self.rr
            old_idx, old_count = ways[free]
            self.backing[old_idx] = old_count
            self.rr = (self.rr + 1) % len(ways)
            self.counts["spills"] += 1
        ways[free] = [idx, count]
        self.counts["fills"] += 1
        return Access(hit=False, fill=True, spill=spill, fire=False, count=count)

    def count(self, origin: int, phase: int) -> int:
        """The tile's current count (table or backing store)."""
        idx = counter_index(origin, phase)
        for e in self.ways[set_index(self.cfg, idx)]:
            if e is not None and e[0] == idx:
                return e[1]
        return self.backing.get(idx, 0)

    @property
    def cached(self) -> int:
        """Valid ways (the tracker's ``occupancy``)."""
        return sum(e is not None for s in self.ways for e in s)
