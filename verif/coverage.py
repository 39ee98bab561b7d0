"""Functional coverage points, recorded by the testbenches and summarised by
`make coverage` (python -m verif.coverage).

Testbenches call ``cover(point)`` (cheap: a dict increment). When the environment has
``T3_COVERAGE_DIR`` (set by `make coverage`), each cocotb run writes its counts there as
JSON at the end of the test (``save()``); the summary merges all files and lists every
point of :data:`POINTS` with its hit count. A point with zero hits fails the summary.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import uuid
from pathlib import Path

from sim_models.regmap import ERROR_FLAGS
from sim_models.spec import FORMATS, Op

#: point -> what it means. Parametrised families are expanded below.
POINTS: dict[str, str] = {
    "tracker.full_stall": "a new tile arrived while every tracker entry was live (stall path)",
    "tracker.same_entry_back_to_back": "two consecutive tracked requests hit the same entry",
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
        POINTS[f"nmc.{_op.name.lower()}.{_dt}"] = f"the memory executed a {_op.name} on {_dt} data"
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


def merge(directory: str | Path) -> collections.Counter:
    total: collections.Counter = collections.Counter()
    for f in sorted(Path(directory).glob("*.json")):
        total.update(json.loads(f.read_text()))
    return total


def summary(directory: str | Path) -> tuple[str, int]:
    total = merge(directory)
    lines = [f"{'point':44} {'hits':>10}  meaning", "-" * 100]
    missing = 0
    for p, meaning in POINTS.items():
        h = total.get(p, 0)
        missing += h == 0
        lines.append(f"{p:44} {h:10d}  {meaning}" + ("   <-- NOT HIT" if h == 0 else ""))
    lines.append(f"{len(POINTS) - missing}/{len(POINTS)} functional coverage points hit")
    return "\n".join(lines), missing


if __name__ == "__main__":
    d = sys.argv[1] if len(sys.argv) > 1 else "build/coverage/functional"
    text, missing = summary(d)
    print(text)
    sys.exit(1 if missing else 0)
