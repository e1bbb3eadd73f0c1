"""`vpnsim lab impair`: a seeded wire on a link (or the kernel's netem), set, shown, removed."""

from __future__ import annotations

import argparse
import json

from vpnsim.cli.common import LAB_NAME_HELP, Subcommands, attach
from vpnsim.errors import HarnessError
from vpnsim.impair.spec import Impairment, add_cli_flags


def add_parser(lab: Subcommands) -> None:
    impair = lab.add_parser(
        "impair",
        help="seeded loss, delay, duplication, reordering, corruption, rate on a link",
        description="Put a seeded userspace wire on a link and set its impairment: the same "
        "seed and traffic give the same packet fates. Without flags, show its counters.",
    )
    impair.add_argument("name", help=LAB_NAME_HELP)
    impair.add_argument("link", help="HOST:IFNAME as `lab status` prints it, e.g. U:eth0")
    add_cli_flags(impair)
    what = impair.add_mutually_exclusive_group()
    what.add_argument("--clear", action="store_true", help="a clean wire (forward only)")
    what.add_argument("--remove", action="store_true", help="take the wire out of the link")
    what.add_argument("--log", action="store_true", help="print each packet's fate as JSON")
    impair.add_argument(
        "--netem", action="store_true", help="the kernel's netem instead (unseeded; if present)"
    )
    impair.set_defaults(run=_impair)


def _impair(args: argparse.Namespace) -> int:
    lab = attach(args.name)
    from vpnsim.impair.link import impair, parse_link, wire_on

    parse_link(lab, args.link)
    impairment = Impairment.from_cli(args)
    try:
        if args.netem:
            from vpnsim.impair.netem import apply_netem, clear_netem

            if args.clear or args.remove:
                clear_netem(lab, args.link)
                print(f"{args.link}: netem removed")
            else:
                impairment = impairment or Impairment()
                apply_netem(lab, args.link, impairment)
                print(f"{args.link}: netem {impairment.summary()} (unseeded, out only)")
            return 0
        wire = wire_on(lab, args.link)
        if args.remove:
            if wire is None:
                raise HarnessError(f"no wire on {args.link}")
            wire.remove()
            print(f"{args.link}: wire removed, the link is plain again")
        elif args.log:
            if wire is None:
                raise HarnessError(f"no wire on {args.link}")
            for entry in wire.log():
                print(json.dumps(entry.to_dict()))
        elif args.clear and wire is None:
            print(f"{args.link}: no wire, nothing to clear")
        elif impairment is not None or args.clear:
            wire = impair(lab, args.link, impairment or Impairment(seed=args.seed))
            print(f"{args.link}: {wire.stats().impairment.describe()}")
        elif wire is None:
            print(f"{args.link}: no wire (a plain link)")
        else:
            stats = wire.stats()
            print(f"{args.link}: {stats.lines()[0]}; wire pid {stats.pid}")
            for line in stats.lines()[1:]:
                print(f"  {line}")
    finally:
        lab.close()
    return 0
