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


def positive_int(text: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return v


def nonneg_int(text: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return v


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
