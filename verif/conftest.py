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
