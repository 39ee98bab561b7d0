"""Pytest plugin of the mutation campaign (verif/mutation.py): with ``T3_MUTANT=<mutant
class>`` set, the tests of this folder build that mutant wherever they build its block
(substituted before the test modules are collected). Unset: nothing happens."""

from verif.mutation import ENV, substitute_from_env

_MUTANT = substitute_from_env()


def pytest_report_header(config):
    if _MUTANT:
        return f"{ENV}={_MUTANT}: every {_MUTANT} block built is the mutant"
    return None
