"""The tracker's count table: a set-associative cache of per-tile counts over a backing
counter store, and the lookup stage ``L`` that reads, counts and writes them back.

Every tracked tile has one **backing counter**, indexed by :func:`counter_index` =
{tile's first line (origin), phase} (phase in bit 0): a counter SRAM of
``cfg.tracker_counter_slots`` counts of ``count_bits``, zero when no request of the tile
is counted. The **table** caches the live ones: ``tracker_sets`` sets of
``tracker_assoc`` ways, each way {valid, counter index, count}, one set per SRAM word.
A tile's set is :func:`set_index` of its counter index (an XOR fold, so tiles whose
origins share their low bits still spread over the sets).

Invariant: the count of a tile is the table's when the tile is cached, else its backing
counter. A backing counter is stale only while its tile is cached, and every way that
leaves the table makes it exact again: an evicted way writes its count back (a *spill*),
a way that fires clears it. So nothing is lost or counted twice whatever the number of
live tiles, and no request ever waits for a free entry.

Stage L holds one request (the one granted in front of it): the set word it read when it
was granted (the write-back of the cycle it was granted is forwarded: ``fwd``), then

* hit: the way's count;
* miss: one backing read (:data:`contract.latency.TRACKER_MISS` cycles), the backing
  count (a *fill* when the tile then takes a way);

and when it leaves (``leave``: resolved and the output register free) it writes the set
word back (count + 1, or the way freed when the tile completes, or the victim way
replaced) and the backing store at most once (a spill, or the completed tile's counter
cleared). Only L reads or writes either memory, one request at a time, so the backing
store is never read and written in one cycle (a single-port SRAM suffices), and a
request always sees every earlier request's update.

Victim: the lowest invalid way of the set, else the way of a round-robin pointer shared
by all sets (advanced at each eviction). ``sim_models.tracker_cache`` is the Python
model of the same policy (hits, misses, spills, fills for an order of requests).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data
from amaranth.lib.memory import Memory

from contract.spec import T3Config

__all__ = ["counter_index", "set_index", "way_layout", "CountTable", "Lookup"]


def counter_index(cfg: T3Config, origin, phase) -> tuple[Value, Value]:
    """(index, in range) of the backing counter of the tile whose first line is
    ``origin`` (``addr_bits``) in ``phase``: {origin, phase}, phase in bit 0. Out of range
    when the origin needs more bits than ``tracker_counter_index_bits - 1``."""
    ib = cfg.tracker_counter_index_bits
    origin = Value.cast(origin)
    in_range = Const(1) if ib - 1 >= len(origin) else (origin[ib - 1:] == 0)
    return Cat(phase, origin)[:ib], in_range


def set_index(cfg: T3Config, idx) -> Value:
    """The table set of counter index ``idx``: fold = XOR of its ``k``-bit pieces
    (k = bits of sets - 1), then ``fold * sets >> k`` (= fold when sets is a power of
    two). sim_models.tracker_cache.set_index is the same function on integers."""
    sets = cfg.tracker_sets
    if sets == 1:
        return Const(0, 1)
    k = (sets - 1).bit_length()
    idx = Value.cast(idx)
    fold = Const(0, k)
    for lsb in range(0, len(idx), k):
        fold = fold ^ idx[lsb:lsb + k]
    fold = fold[:k]
    if sets == 1 << k:
        return fold
    return ((fold * sets) >> k)[:k]


def way_layout(cfg: T3Config) -> data.StructLayout:
    """One way of a set: the tile's counter index and its count (> 0 while valid)."""
    return data.StructLayout({"valid": 1, "idx": cfg.tracker_counter_index_bits,
                              "count": cfg.count_bits})


@dataclass(frozen=True)
class Lookup:
    """What stage L decided for its request (valid with ``resolved``)."""
    resolved: Value     # hit, or the fill has arrived, or untracked
    hit: Value          # tracked and cached
    miss: Value         # tracked and not cached (it reads the backing store)
    counted: Value      # tracked, not a refire: its tile's count steps
    fire: Value         # ... and completes the tile
    over: Value         # ... past the threshold (count_over)
    refire: Value       # a new tile among the recently fired ones: not counted
    fill: Value         # a miss that takes a way
    spill: Value        # ... whose victim was valid (its count written back)
    new: Value          # the tile's count after this request


class CountTable:
    """The table and backing memories, the forwarding register and stage L's decision.

    ``completes(count_after, threshold)`` and ``spill_value(count)`` are the tracker's
    design-decision hooks (a broken variant overrides them, verif/formal/mutants.py);
    ``recent(idx)`` is the fired-key history's compare."""

    def __init__(self, m: Module, cfg: T3Config, *, completes, spill_value, recent):
        self.cfg = cfg
        ways = cfg.tracker_assoc
        self.ways = ways
        self.set_shape = data.ArrayLayout(way_layout(cfg), ways)
        m.submodules.sets = self.sets = Memory(shape=self.set_shape, depth=cfg.tracker_sets,
                                               init=[])
        m.submodules.backing = self.backing = Memory(shape=cfg.count_bits,
                                                     depth=cfg.tracker_counter_slots, init=[])
        self.rd = self.sets.read_port(domain="sync")
        self.wr = self.sets.write_port()
        self.bk_rd = self.backing.read_port(domain="sync")
        self.bk_wr = self.backing.write_port()
        self._completes, self._spill_value, self._recent = completes, spill_value, recent
        self.fwd_use = Signal(name="fwd_use")
        self.fwd_data = Signal(self.set_shape, name="fwd_data")
        self.filled = Signal(name="filled")          # the backing read of L's miss is back
        self.rr = Signal(range(ways), name="victim_rr")

    def read(self, m: Module, set_addr, admit) -> None:
        """The set read of the request granted this cycle (``admit``), and the forwarding
        of this cycle's write-back when it is to the same set (the read port does not see
        a write of its own cycle)."""
        m.d.comb += [self.rd.addr.eq(set_addr), self.rd.en.eq(admit)]
        with m.If(admit):
            m.d.sync += [self.fwd_use.eq(self.wr.en & (self.wr.addr == set_addr)),
                         self.fwd_data.eq(self.wr.data), self.filled.eq(0)]

    def decide(self, m: Module, *, valid, track, idx, thr) -> tuple[Lookup, dict]:
        """Stage L for its request (``valid``, tracked ``track``, counter index ``idx``,
        threshold ``thr``): hit or miss (issuing the backing read), the count after it,
        whether it fires; returns the decision and the victim way's nets."""
        cfg = self.cfg
        ways = _named(m, "l_ways", Mux(self.fwd_use, self.fwd_data, self.rd.data))
        ways = data.View(self.set_shape, ways)
        hitvec = Signal(self.ways, name="l_hitvec")
        m.d.comb += hitvec.eq(Cat(*(ways[w].valid & (ways[w].idx == idx)
                                    for w in range(self.ways))))
        hit = _named(m, "l_hit", valid & track & hitvec.any())
        miss = _named(m, "l_miss", valid & track & ~hitvec.any())
        hit_count = _or_reduce([Mux(hitvec[w], ways[w].count, 0) for w in range(self.ways)])
        # a miss reads its backing counter once; the data port holds it until the next read
        issue = miss & ~self.filled
        m.d.comb += [self.bk_rd.addr.eq(idx), self.bk_rd.en.eq(issue)]
        with m.If(issue):
            m.d.sync += self.filled.eq(1)
        before = _named(m, "l_before", Mux(hitvec.any(), hit_count, self.bk_rd.data))
        new = Signal(cfg.count_bits + 1, name="l_new")
        m.d.comb += new.eq(before + 1)
        refire = _named(m, "l_refire", track & (before == 0) & self._recent(idx))
        counted = _named(m, "l_counted", valid & track & ~refire)
        fire = _named(m, "l_fire", counted & self._completes(new, thr))
        victim = self._victim(m, ways)
        fill = _named(m, "l_fill", counted & ~hitvec.any() & ~fire)
        spill = _named(m, "l_spill", fill & victim["valid"])
        lk = Lookup(resolved=_named(m, "l_resolved", valid & (~track | hitvec.any() | self.filled)),
                    hit=hit, miss=miss, counted=counted, fire=fire,
                    over=counted & (new > thr), refire=valid & refire, fill=fill,
                    spill=spill, new=new)
        return lk, {"ways": ways, "hitvec": hitvec, **victim}

    def _victim(self, m: Module, ways) -> dict:
        """The way a fill replaces: the lowest invalid one, else the round-robin one."""
        invalid = Cat(*(~ways[w].valid for w in range(self.ways)))
        way = Signal(range(self.ways), name="l_victim")
        m.d.comb += way.eq(self.rr)
        for w in reversed(range(self.ways)):
            with m.If(invalid[w]):
                m.d.comb += way.eq(w)
        entry = data.View(way_layout(self.cfg), _named(
            m, "l_victim_way", Value.cast(ways).word_select(way, len(Value.cast(ways[0])))))
        return {"way": way, "valid": ~invalid.any(), "entry": entry}

    def write_back(self, m: Module, lk: Lookup, v: dict, *, leave, set_addr, idx,
                   occupancy) -> None:
        """When L's request leaves: the set word (count + 1 in the hit way, the hit way
        freed on a fire, or the victim way replaced by the filled tile), and at most one
        backing write (the spilled victim's count, or the fired tile's counter cleared)."""
        new_ways = Signal(self.set_shape, name="l_new_ways")
        m.d.comb += new_ways.eq(v["ways"])
        for w in range(self.ways):
            with m.If(v["hitvec"][w]):
                m.d.comb += new_ways[w].count.eq(lk.new)
                with m.If(lk.fire):
                    m.d.comb += new_ways[w].valid.eq(0)
            with m.If(lk.fill & (v["way"] == w)):
                m.d.comb += [new_ways[w].valid.eq(1), new_ways[w].idx.eq(idx),
                             new_ways[w].count.eq(lk.new)]
        m.d.comb += [self.wr.addr.eq(set_addr), self.wr.data.eq(new_ways),
                     self.wr.en.eq(leave & (lk.hit & lk.counted | lk.fill))]
        m.d.comb += [self.bk_wr.addr.eq(Mux(lk.fire, idx, v["entry"].idx)),
                     self.bk_wr.data.eq(Mux(lk.fire, 0, self._spill_value(v["entry"].count))),
                     self.bk_wr.en.eq(leave & (lk.fire | lk.spill))]
        with m.If(leave & lk.spill):
            m.d.sync += self.rr.eq(Mux(self.rr == self.ways - 1, 0, self.rr + 1))
        grow, shrink = lk.fill & ~lk.spill, lk.hit & lk.fire
        with m.If(leave & grow):
            m.d.sync += occupancy.eq(occupancy + 1)
        with m.If(leave & shrink):
            m.d.sync += occupancy.eq(occupancy - 1)


def _or_reduce(values: list[Value]) -> Value:
    """Balanced OR tree (the one-hot read mux of the hit way)."""
    while len(values) > 1:
        values = [values[i] | values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


def _named(m: Module, name: str, value):
    """``value`` as a named net (later uses share it)."""
    value = Value.cast(value)
    if isinstance(value, Signal):
        return value
    sig = Signal(value.shape(), name=name)
    m.d.comb += sig.eq(value)
    return sig
