"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse

from contract.spec import DEFAULT_CONFIG, T3Config, load_config

from .errors import UsageError


def add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE",
                   help="hardware configuration TOML (keys of contract.spec.T3Config, "
                        "optionally under [t3]); default: the paper's")


def config_from_args(args: argparse.Namespace) -> T3Config:
    return load_config(args.config) if getattr(args, "config", None) else DEFAULT_CONFIG


def _int_at_least(minimum: int, name: str):
    """An argparse type: an integer (any base ``int(text, 0)`` takes) >= ``minimum``.
    The parser keeps ``name`` as its ``__name__`` (argparse's error messages and the CLI
    fuzz test use it)."""
    def parse(text: str) -> int:
        try:
            v = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be >= {minimum}")
        return v
    parse.__name__ = parse.__qualname__ = name
    return parse


positive_int = _int_at_least(1, "positive_int")
nonneg_int = _int_at_least(0, "nonneg_int")


def choice_error(name: str, value, allowed) -> UsageError:
    return UsageError(f"{name}={value!r}: must be one of {', '.join(map(str, allowed))}")


def out_dir(path: str, what: str):
    """Create output directory ``path`` (an option named ``what``) or raise a one-line
    UsageError (exists as a file, no permission, ...)."""
    from pathlib import Path
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{what} {path}: exists and is not a directory")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{what} {path}: cannot create: {e.strerror}") from None
    return p
