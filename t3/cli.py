"""`t3`: the project's front door. Each subcommand lives in its own module ``t3.cmd_*``
exposing ``register(subparsers)``; its ``run(args)`` returns an exit status.

Error contract: invalid arguments (argparse's own complaints included), configs, traces
or programming print one line ``t3 <command>: error: <message>`` on stderr and exit with
status 2, never a traceback; the message names the offending option, value or file (and
the field inside it). Only a command line naming no valid command says ``t3: error:``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from contract.spec import ConfigError

from .errors import UsageError

#: subcommand modules, in help order
COMMANDS = ["verilog", "trace", "golden", "sim", "model", "report", "bench"]


class ArgumentError(UsageError):
    """argparse's complaint about the command line; ``command`` names the subcommand
    whose parser complained (None: no valid subcommand was named)."""

    def __init__(self, message: str, command: str | None = None):
        super().__init__(message)
        self.command = command


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse would print usage too)
        # a subcommand's parser has prog "t3 COMMAND" ("t3 report area" for a report part)
        words = self.prog.split()
        raise ArgumentError(message, words[1] if len(words) > 1 else None)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="t3", description="T3 track & trigger: RTL, golden models, system model.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"t3.cmd_{name}")
        except ModuleNotFoundError as e:
            if e.name == f"t3.cmd_{name}":
                continue           # subcommand not built yet
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    prog = "t3"
    try:
        parser = build_parser()
        # parse_known_args: an unknown option is reported here, under the subcommand's
        # name (argparse's parse_args would report it from the top-level parser, "t3")
        args, unknown = parser.parse_known_args(argv)
        if args.command is None and not unknown:
            parser.print_help()
            return 2
        if args.command is not None:
            prog = f"t3 {args.command}"
        if unknown:
            raise UsageError(f"unrecognized arguments: {' '.join(unknown)}")
        return int(args.func(args) or 0)
    except (UsageError, ConfigError) as e:
        if isinstance(e, ArgumentError) and e.command:
            prog = f"t3 {e.command}"
        msg = " ".join(str(e).split("\n")).strip()
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:          # e.g. `t3 model | head`: the reader left; not an error
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
