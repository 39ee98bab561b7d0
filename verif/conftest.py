import pytest

from verif.runner import SIMULATORS


@pytest.fixture(params=SIMULATORS)
def sim(request) -> str:
    """Every cocotb test runs once per simulator."""
    return request.param


def sims(group: str):
    """Parametrisation of ``sim`` that also keeps each simulator's tests of ``group`` in
    one pytest-xdist worker (they share a build directory; builds must not race)."""
    return pytest.mark.parametrize("sim", [
        pytest.param(s, marks=pytest.mark.xdist_group(f"{group}-{s}")) for s in SIMULATORS])


def sims_slow_on(slow: str):
    """Parametrisation of ``sim`` whose ``slow`` simulator's case is marked ``slow``: it
    runs in ``make test-slow`` (and ``make soak``), not in ``make test``, which keeps the
    other simulator's case. For a check whose run is heavy on one simulator only (the
    8,192-tile chunk takes minutes under Icarus, seconds under Verilator)."""
    assert slow in SIMULATORS, slow
    return pytest.mark.parametrize("sim", [
        pytest.param(s, marks=[pytest.mark.slow] if s == slow else []) for s in SIMULATORS])
