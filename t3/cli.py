"""`t3`: the project's front door. Each subcommand lives in its own module ``t3.cmd_*``
exposing ``register(subparsers)``; its ``run(args)`` returns an exit status.

Error contract: invalid arguments, configs, traces or programming print one line
``t3 <command>: error: <message>`` on stderr and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from contract.spec import ConfigError

from .errors import UsageError

#: subcommand modules, in help order
COMMANDS = ["verilog", "trace", "golden", "sim", "model", "report", "bench"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse would print usage too)
        raise UsageError(message)


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
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        prog = f"t3 {args.command}"
        return int(args.func(args) or 0)
    except (UsageError, ConfigError) as e:
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
