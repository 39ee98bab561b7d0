"""Pacing of stream drivers, in pure Python (no simulator): pause generators and issue-time
jitter. Shared by the cocotb drivers (verif/streams.py) and the Amaranth-simulator
helpers (tests/amaranth_util.py), so both pace their streams the same way.

A **pause generator** is an iterator of booleans, consulted once per clock cycle in which
a driver could transfer (as cocotbext-axi's ``set_pause_generator``):

* a stream *source* asks it in each cycle in which it has a beat ready to present and is
  not presenting one; ``True`` keeps ``valid`` low for that cycle (an idle cycle). Once a
  beat is presented, ``valid`` stays high until ``ready`` (stream rules), whatever the
  generator says;
* a stream *sink* asks it in each cycle in which it is willing to take an item; ``True``
  holds ``ready`` low for that cycle (backpressure).

``None`` means no pauses (the default everywhere). Built in: :func:`random_pauses` (a
seeded coin per cycle), :func:`pause_burst` (hold for a number of cycles, then go on with
another generator). Any iterable of booleans works (e.g. ``itertools.cycle([True,
False])``); :func:`pause_generator` normalises what a caller passes.

**Jitter** delays a timed trace's issue times at random without reordering it
(:func:`jittered_times`).
"""

from __future__ import annotations

import itertools
import random
from typing import Callable, Iterable, Iterator, Sequence, Union

__all__ = ["PauseGenerator", "Pauses", "pause_generator", "random_pauses",
           "optional_random_pauses", "pause_burst", "jittered_times", "JITTER_PROBABILITY"]

#: an iterator of per-cycle pause flags (True: pause this cycle)
PauseGenerator = Iterator[bool]
#: what a driver accepts as pauses: None (never pause), an iterable of booleans, or a
#: callable returning one (called once, when the driver takes it)
Pauses = Union[None, Iterable[bool], Callable[[], Iterable[bool]]]

#: probability, per request of a timed trace, that the jitter grows before it
JITTER_PROBABILITY = 0.1


def pause_generator(pauses: Pauses) -> PauseGenerator | None:
    """``pauses`` as an iterator (None stays None: no pauses)."""
    if pauses is None:
        return None
    if callable(pauses) and not hasattr(pauses, "__iter__"):
        pauses = pauses()
    return iter(pauses)


def random_pauses(rng: random.Random, probability: float) -> PauseGenerator:
    """Pause with ``probability`` per cycle, drawn from ``rng`` (one ``rng.random()`` per
    cycle asked, also when ``probability`` is 0: callers that share ``rng`` between
    streams keep the same draw sequence whatever the probabilities)."""
    if not 0.0 <= probability < 1.0:
        raise ValueError(f"random_pauses: probability={probability}: must be in [0, 1)")
    draw = rng.random
    while True:
        yield draw() < probability


def optional_random_pauses(rng: random.Random, probability: float) -> PauseGenerator | None:
    """:func:`random_pauses`, or None (no pauses and no draws) when ``probability`` is 0."""
    return random_pauses(rng, probability) if probability else None


def pause_burst(cycles: int, then: Pauses = None) -> PauseGenerator:
    """Pause for the first ``cycles`` cycles asked, then follow ``then`` (None: never pause
    again)."""
    if cycles < 0:
        raise ValueError(f"pause_burst: cycles={cycles}: must be >= 0")
    rest = pause_generator(then)
    return itertools.chain(itertools.repeat(True, cycles),
                           itertools.repeat(False) if rest is None else rest)


def jittered_times(times: Sequence[int], jitter: int, rng: random.Random) -> list[int]:
    """Issue times of a timed trace with a random, order-preserving delay: before each
    request, with probability :data:`JITTER_PROBABILITY`, the delay of it and of every
    later request grows by ``rng.randint(1, jitter)`` cycles. ``jitter`` 0: the times
    unchanged (and no draws)."""
    if jitter < 0:
        raise ValueError(f"jittered_times: jitter={jitter}: must be >= 0")
    if not jitter:
        return [int(t) for t in times]
    shift, out = 0, []
    for t in times:
        if rng.random() < JITTER_PROBABILITY:
            shift += rng.randint(1, jitter)
        out.append(int(t) + shift)
    return out
