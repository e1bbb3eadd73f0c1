"""`vpnsim`: the parser made of the command groups, and the one place errors become exit codes.

Harness problems (not root, unknown lab or host, a bad scenario or flag) print one line saying
what to do and exit 2; a failing program under test exits 1 with its stderr. Nothing is left
behind on either path.

A command that owns labs while it runs (`run`, `demo`, `grade`: `set_defaults(owns_labs=True)`)
handles SIGTERM like Ctrl-C: the exception unwinds its teardowns, what a signal amid one left
is removed after, and it exits 128+N (130, 143) saying whether anything was left behind.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from vpnsim import interrupt
from vpnsim.cli.common import EXIT_FINDING, EXIT_USAGE
from vpnsim.errors import Finding, VpnsimError
from vpnsim.proc import ProgramFailed

# Commands import the netlink layer (pyroute2) only after `preflight()`: a user without root
# gets the one-line explanation fast, even where pyroute2 is not importable for them.

# Each command, and the module whose `add_parser(sub)` defines it. A command line naming one
# imports that module alone (`vpnsim lab up` needs neither grading nor the PKI); anything else
# (no command, --help, a typo) gets the whole parser. Keys in the order `--help` lists them.
COMMANDS = {
    "lab": "vpnsim.cli.lab",
    "run": "vpnsim.cli.scenarios",
    "validate": "vpnsim.cli.scenarios",
    "schema": "vpnsim.cli.scenarios",
    "draw": "vpnsim.cli.draw",
    "clean": "vpnsim.cli.maintenance",
    "demo": "vpnsim.cli.maintenance",
    "bench": "vpnsim.cli.maintenance",
    "grade": "vpnsim.grade.cli",
    "pki": "vpnsim.pki_cli",
}


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(given[0] if given else None)
    args = parser.parse_args(given)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    owns_labs = getattr(args, "owns_labs", False)
    if owns_labs:
        interrupt.raise_on_signals()
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
    except KeyboardInterrupt as exc:
        if owns_labs:
            _after_interrupt(exc)
        return interrupt.exit_status(exc)
    except BrokenPipeError:  # `vpnsim lab status NAME | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; with `command` (a known one), of that command's module
    only."""
    parser = argparse.ArgumentParser(
        prog="vpnsim", description="The SEED VPN labs in Linux network namespaces."
    )
    sub = parser.add_subparsers(metavar="COMMAND")
    chosen = [COMMANDS[command]] if command in COMMANDS else COMMANDS.values()
    for module in dict.fromkeys(chosen):
        importlib.import_module(module).add_parser(sub)
    return parser


def _after_interrupt(exc: KeyboardInterrupt) -> None:
    """Remove the labs this process still owns (a signal amid a teardown breaks it off) and
    say whether anything is left."""
    from vpnsim.leaks import labs_owned_by, leftovers
    from vpnsim.topology import destroy

    mine = labs_owned_by([os.getpid()])
    for lab in mine:
        destroy(lab)
    left = leftovers(mine)
    print(
        f"vpnsim: {interrupt.Interrupted(interrupt.signal_of(exc))}: "
        + (f"LEFT BEHIND: {left}" if left else "nothing left behind"),
        file=sys.stderr,
    )
