"""Reading TOML data files for the performance model with one-line errors.

Every error names the file, the key (dotted: ``table.key``) and the problem, and is a
:class:`contract.spec.ConfigError`, which the CLI prints as one line (exit status 2).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Iterable

from contract.spec import ConfigError, read_text

__all__ = ["CONFIG_DIR", "read_toml", "Table"]

#: the data files shipped with the package (sim_models/configs/)
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    text = read_text(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {' '.join(str(e).split())}") from None


class Table:
    """A TOML table being read: typed getters that fail with ``file: key=value: problem``
    and a final :meth:`done` that rejects unknown keys (typos must not pass silently)."""

    def __init__(self, data: Any, file: str | Path, name: str):
        self.file, self.name = str(file), name
        if not isinstance(data, dict):
            raise ConfigError(f"{self.file}: [{name}] must be a table, not {type(data).__name__}")
        self.data = data
        self.used: set[str] = set()

    def key(self, k: str) -> str:
        return f"{self.name}.{k}" if self.name else k

    def fail(self, k: str, problem: str) -> None:
        v = self.data.get(k, None)
        shown = f"={v!r}" if k in self.data else ""
        raise ConfigError(f"{self.file}: {self.key(k)}{shown}: {problem}")

    def sub(self, k: str, *, required: bool = True) -> "Table":
        self.used.add(k)
        if k not in self.data:
            if required:
                raise ConfigError(f"{self.file}: [{self.key(k)}]: missing table")
            return Table({}, self.file, self.key(k))
        return Table(self.data[k], self.file, self.key(k))

    def _value(self, k: str, default: Any) -> tuple[bool, Any]:
        """Mark ``k`` read; (True, its value) when present, else (False, ``default``),
        and a missing-key error when there is no default either."""
        self.used.add(k)
        if k in self.data:
            return True, self.data[k]
        if default is None:
            raise ConfigError(f"{self.file}: {self.key(k)}: missing key")
        return False, default

    def number(self, k: str, lo: float, hi: float, default: float | None = None,
               *, integer: bool = False) -> float:
        present, v = self._value(k, default)
        if not present:
            return v
        ok = isinstance(v, int) if integer else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok:
            self.fail(k, f"must be {'an integer' if integer else 'a number'}")
        if not (lo <= v <= hi):
            self.fail(k, f"must be in [{lo}, {hi}]")
        return int(v) if integer else float(v)

    def integer(self, k: str, lo: int, hi: int, default: int | None = None) -> int:
        return int(self.number(k, lo, hi, default, integer=True))

    def string(self, k: str, allowed: tuple[str, ...], default: str | None = None) -> str:
        present, v = self._value(k, default)
        if not present:
            return v
        if v not in allowed:
            self.fail(k, f"must be one of {', '.join(allowed)}")
        return v

    def unique_name(self, taken: Iterable[str], what: str) -> str:
        """The table's ``name``: a non-empty string not in ``taken`` (``what`` names the
        kind in the duplicate message)."""
        name = self.data.get("name")
        if not isinstance(name, str) or not name:
            self.fail("name", "must be a non-empty string")
        self.used.add("name")
        if name in taken:
            self.fail("name", f"duplicate {what} name")
        return name

    def only(self, known: tuple[str, ...]) -> None:
        """Reject keys outside ``known`` now (before reading, so a misspelt table is
        reported as unknown rather than as the correct one missing)."""
        extra = sorted(set(self.data) - set(known))
        if extra:
            self.fail(extra[0], f"unknown key (known: {', '.join(known)})")

    def done(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            known = ", ".join(sorted(self.used))
            self.fail(extra[0], f"unknown key (known: {known})")
