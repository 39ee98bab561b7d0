"""verif/pacing.py: the pause generators and the issue-time jitter shared by the cocotb
stream drivers (verif/streams.py) and the Amaranth-simulator helpers
(tests/amaranth_util.py). Pure Python: no simulator."""

import itertools
import random

import pytest

from verif.pacing import (JITTER_PROBABILITY, jittered_times, optional_random_pauses,
                          pause_burst, pause_generator, random_pauses)

SEED = 7


def take(gen, n):
    return list(itertools.islice(gen, n))


def test_random_pauses_are_seeded_and_have_their_rate():
    print(f"seed={SEED}")
    a = take(random_pauses(random.Random(SEED), 0.3), 20_000)
    assert a == take(random_pauses(random.Random(SEED), 0.3), 20_000)
    assert a != take(random_pauses(random.Random(SEED + 1), 0.3), 20_000)
    assert 0.28 < sum(a) / len(a) < 0.32


def test_random_pauses_draw_once_per_cycle_even_at_zero():
    """Streams that share one rng keep the same draw sequence whatever the probabilities
    (tests/amaranth_util.py's helpers always drew, also at probability 0)."""
    rng, ref = random.Random(SEED), random.Random(SEED)
    assert take(random_pauses(rng, 0.0), 5) == [False] * 5
    for _ in range(5):
        ref.random()
    assert rng.random() == ref.random()
    assert optional_random_pauses(random.Random(SEED), 0.0) is None
    assert take(optional_random_pauses(random.Random(SEED), 0.5), 50) == \
        take(random_pauses(random.Random(SEED), 0.5), 50)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_random_pauses_reject_bad_probabilities(bad):
    with pytest.raises(ValueError, match="probability"):
        next(random_pauses(random.Random(0), bad))


def test_pause_burst_then_another_generator():
    assert take(pause_burst(3), 6) == [True, True, True, False, False, False]
    assert take(pause_burst(2, [False, True, False]), 5) == [True, True, False, True, False]
    assert take(pause_burst(0, lambda: itertools.repeat(True)), 2) == [True, True]
    with pytest.raises(ValueError):
        pause_burst(-1)


def test_pause_generator_normalises():
    assert pause_generator(None) is None
    assert take(pause_generator([True, False]), 2) == [True, False]
    assert take(pause_generator(lambda: iter([False, True])), 2) == [False, True]


def test_jitter_keeps_order_only_delays_and_is_seeded():
    times = sorted(random.Random(SEED).randrange(500) for _ in range(400))
    out = jittered_times(times, 5, random.Random(SEED))
    assert out == jittered_times(times, 5, random.Random(SEED))
    shifts = [o - t for o, t in zip(out, times)]
    assert all(b >= a for a, b in zip(shifts, shifts[1:])), "jitter must not reorder"
    assert shifts[0] >= 0 and shifts[-1] > 0
    steps = [b - a for a, b in zip([0] + shifts, shifts) if b != a]
    assert all(1 <= s <= 5 for s in steps)
    # about JITTER_PROBABILITY of the requests grow the delay
    assert 0.5 * JITTER_PROBABILITY < len(steps) / len(times) < 1.5 * JITTER_PROBABILITY


def test_no_jitter_no_draws():
    rng, ref = random.Random(SEED), random.Random(SEED)
    assert jittered_times([0, 3, 3, 9], 0, rng) == [0, 3, 3, 9]
    assert rng.random() == ref.random()
    with pytest.raises(ValueError):
        jittered_times([0], -1, rng)
