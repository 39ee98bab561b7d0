"""The one exception of the contract: an invalid configuration or programming value.

Its own module so that every contract module can raise it without importing another
(contract.spec holds the configuration, which holds a contract.dram.DramTiming, which
raises this).
"""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """An invalid configuration or programming value.

    The message is one line that names the field, the value and what is allowed, so
    the CLI can print it as is (exit status 2, no traceback).
    """
