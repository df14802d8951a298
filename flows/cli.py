"""The `hris-runbook` command: `up` runs the local stack; more subcommands arrive with their issues."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hris-runbook", description="The 10KC HRIS-integration runbook.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="run Prefect server, stand-ins, deployments and a worker (make up)")
    commands.add_parser("bootstrap", help="register blocks, save sandbox blocks, create the work pool")
    args = parser.parse_args(argv)

    from flows import stack

    if args.command == "up":
        return stack.up()
    stack.configure_environment()
    print("uses sandbox" if stack.bootstrap() else "uses configured blocks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
