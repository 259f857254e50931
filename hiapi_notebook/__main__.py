"""The ``hiapi-notebook`` command: ``hiapi-notebook sandbox [options]`` runs the local sandbox;
``hiapi-notebook --version`` prints the installed version."""

from __future__ import annotations

import argparse
import sys

from . import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hiapi-notebook")
    parser.add_argument("--version", action="version", version=f"hiapi-notebook {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    sandbox = commands.add_parser(
        "sandbox",
        help="run a local HiAPI-compatible server",
        description="A local HiAPI-compatible server with synthetic results.",
    )
    from .sandbox.__main__ import add_arguments, run  # imported here: other commands skip it

    add_arguments(sandbox)
    sandbox.set_defaults(handler=run)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
