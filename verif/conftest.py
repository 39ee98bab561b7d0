import pytest

from verif.runner import SIMULATORS


@pytest.fixture(params=SIMULATORS)
def sim(request) -> str:
    """Every cocotb test runs once per simulator."""
    return request.param
