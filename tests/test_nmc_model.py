"""Golden model of the compute-enhanced memory: zero init, masks, order, errors."""

import os
import random

import numpy as np
import pytest

from sim_models.fparith import from_float, to_float
from sim_models.nmc_model import ComputeMemoryModel
from contract.spec import ConfigError, Op, T3Config

DTYPES = ("fp16", "bf16", "fp32")


def new_seed() -> int:
    """A random seed, or T3_SEED when set; printed so a failing run can be repeated."""
    seed = int(os.environ.get("T3_SEED") or random.randrange(1 << 30))
    print(f"seed={seed} (T3_SEED={seed} reproduces)")
    return seed


def small(dtype: str) -> T3Config:
    return T3Config(dtype=dtype, line_bytes=16, mem_depth_lines=32)


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_init_and_dtype(dtype):
    m = ComputeMemoryModel(small(dtype))
    assert m.mem.shape == (32, m.lanes)
    assert m.mem.dtype == np.dtype({"fp16": "uint16", "bf16": "uint16", "fp32": "uint32"}[dtype])
    for addr in (0, 17, 31):
        assert not m.apply(Op.READ, addr).any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_store_update_masks(dtype):
    m = ComputeMemoryModel(small(dtype))
    n = m.lanes
    ones = from_float(dtype, np.full(n, 1.5))
    twos = from_float(dtype, np.arange(n) + 2.0)
    m.apply(Op.STORE, 3, (1 << n) - 1, ones)
    m.apply(Op.UPDATE, 3, 0b0101, twos)            # lanes 0 and 2 only
    got = to_float(dtype, m.apply(Op.READ, 3))
    want = np.full(n, 1.5)
    want[0] += 2.0
    want[2] += 4.0
    assert list(got) == list(want)
    m.apply(Op.STORE, 3, 0b10, twos)               # lane 1 only
    assert to_float(dtype, m.apply(Op.READ, 3))[1] == 3.0
    assert not m.apply(Op.READ, 4).any()           # neighbours untouched
    m.apply(Op.UPDATE, 3, 0, twos)                 # empty mask: no effect
    assert to_float(dtype, m.apply(Op.READ, 3))[1] == 3.0


def test_program_order_and_rounding():
    """fp add is not associative: (1 + 2^-11) + 2^-11 != 1 + 2^-10 in fp16; the model
    must apply updates one at a time, in order."""
    cfg = small("fp16")
    m = ComputeMemoryModel(cfg)
    n = m.lanes
    full = (1 << n) - 1
    one = from_float("fp16", np.ones(n))
    tiny = from_float("fp16", np.full(n, 2.0 ** -11))
    reqs = [(Op.STORE, 5, full, one), (Op.UPDATE, 5, full, tiny), (Op.UPDATE, 5, full, tiny),
            (Op.READ, 5, 0, None)]
    (line,) = ComputeMemoryModel(cfg).run(reqs)
    # each update is a tie rounding to even (1.0): the sum stays 1.0
    assert list(to_float("fp16", line)) == [1.0] * n
    for r in reqs[:3]:
        m.apply(*r)
    assert list(to_float("fp16", m.apply(Op.READ, 5))) == [1.0] * n


@pytest.mark.parametrize("dtype", DTYPES)
def test_run_matches_apply(dtype):
    seed = new_seed()
    rng = random.Random(seed)
    cfg = small(dtype)
    a, b = ComputeMemoryModel(cfg), ComputeMemoryModel(cfg)
    n = a.lanes
    reqs = []
    for _ in range(400):
        op = rng.choice([Op.READ, Op.STORE, Op.UPDATE, Op.UPDATE])
        data = from_float(dtype, [rng.uniform(-4, 4) for _ in range(n)])
        reqs.append((op, rng.randrange(4), rng.randrange(1 << n), data))
    want = [x for x in (a.apply(*r) for r in reqs) if x is not None]
    got = b.run(reqs)
    assert len(got) == len(want) == sum(r[0] == Op.READ for r in reqs)
    for g, w in zip(got, want):
        assert (g == w).all()
    assert (a.snapshot() == b.snapshot()).all()


def test_nan_is_canonical():
    m = ComputeMemoryModel(small("fp16"))
    n = m.lanes
    m.apply(Op.STORE, 0, 1, [0x7C01] + [0] * (n - 1))   # signalling NaN pattern stored as is
    assert m.apply(Op.READ, 0)[0] == 0x7C01
    m.apply(Op.UPDATE, 0, 1, [0x3C00] * n)
    assert m.apply(Op.READ, 0)[0] == 0x7E00


@pytest.mark.parametrize("args,field", [
    ((3, 0, 0, None), "op="), ((Op.READ, 32, 0, None), "addr="), ((Op.READ, -1, 0, None), "addr="),
    ((Op.STORE, 0, 1 << 8, [0] * 8), "mask="), ((Op.STORE, 0, 1, [0] * 3), "data shape"),
    ((Op.STORE, 0, 1, [1 << 16] * 8), "data:"),
])
def test_bad_requests_are_one_line_errors(args, field):
    m = ComputeMemoryModel(small("fp16"))
    with pytest.raises(ConfigError) as e:
        m.apply(*args)
    assert field in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigError):
        m.run([args])
    assert not m.snapshot().any()


def test_accept_schedule_rule():
    from sim_models.nmc_model import accept_schedule
    U, R, S = Op.UPDATE, Op.READ, Op.STORE
    r = lambda op, a, m: (op, a, m, None)
    # L = 2: back-to-back overlapping UPDATEs to one line wait 1 cycle; READ never waits
    assert accept_schedule([r(U, 1, 1), r(U, 1, 3), r(R, 1, 0), r(U, 1, 2)], 2) == [0, 2, 3, 4]
    # disjoint masks and other lines do not wait; distance 2 at L = 3 waits 1
    assert accept_schedule([r(U, 1, 1), r(U, 1, 2), r(U, 2, 1), r(U, 1, 1)], 3) == [0, 1, 2, 3]
    assert accept_schedule([r(U, 1, 1), r(S, 1, 1), r(U, 1, 1)], 3) == [0, 1, 3]
    assert accept_schedule([r(U, 5, 7)] * 4, 1) == [0, 1, 2, 3]
    assert accept_schedule([r(U, 5, 7)] * 4, 4) == [0, 4, 8, 12]
