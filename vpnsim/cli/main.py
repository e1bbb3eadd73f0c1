"""`vpnsim`: the parser made of the command groups, and the one place errors become exit codes.

Harness problems (not root, unknown lab or host, a bad scenario or flag) print one line saying
what to do and exit 2; a failing program under test exits 1 with its stderr. Nothing is left
behind on either path.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from vpnsim import pki_cli
from vpnsim.cli import draw, lab, maintenance, scenarios
from vpnsim.cli.common import EXIT_FINDING, EXIT_USAGE
from vpnsim.errors import Finding, VpnsimError
from vpnsim.grade import cli as grade_cli
from vpnsim.proc import ProgramFailed

# Commands import the netlink layer (pyroute2) only after `preflight()`: a user without root
# gets the one-line explanation fast, even where pyroute2 is not importable for them.


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except ProgramFailed as exc:
        print(f"vpnsim: program under test failed: {exc}", file=sys.stderr)
        return EXIT_FINDING
    except Finding as exc:
        print(f"vpnsim: {exc}", file=sys.stderr)
        return exc.exit_status
    except VpnsimError as exc:  # the harness's or the user's: one line saying what to do
        print(f"vpnsim: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `vpnsim lab status NAME | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vpnsim", description="The SEED VPN labs in Linux network namespaces."
    )
    sub = parser.add_subparsers(metavar="COMMAND")
    lab.add_parser(sub)
    scenarios.add_parser(sub)
    draw.add_parser(sub)
    maintenance.add_parser(sub)
    grade_cli.add_parser(sub)
    pki_cli.add_parser(sub)
    return parser
