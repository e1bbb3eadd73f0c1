"""What the command groups share: exit codes, the option naming the implementation under test,
and finding a running lab."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TypeAlias

# The exit codes live with the errors; re-exported for the command modules.
from vpnsim.errors import EXIT_FINDING as EXIT_FINDING
from vpnsim.errors import EXIT_USAGE as EXIT_USAGE
from vpnsim.features import preflight

if TYPE_CHECKING:
    from vpnsim.impl import TunnelImpl
    from vpnsim.topology import Lab

# The reference's variants are impl.REFERENCE_VARIANTS (not imported here: `vpnsim --help` stays
# light; a unit test keeps the two the same).
IMPL_HELP = (
    "the implementation under test: reference (default), reference-aead, reference-offload, "
    "reference-aead-offload, reference-gso, reference-aead-gso, a folder with tun_client.py and "
    "tun_server.py, or client=CMD / server=CMD (repeatable); the reference's variants run TUN "
    "scenarios only"
)
LAB_NAME_HELP = "the lab's name, as `lab up` printed it (`lab list` shows them)"

# A string: argparse's class is subscriptable for the type checker only.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_impl_option(parser: argparse.ArgumentParser, extra: str = "") -> None:
    """`--vpn-impl VALUE`, as in pytest. `--tunnel` (the old name of `lab up` and `run`) is
    kept as a hidden alias."""
    parser.add_argument(
        "--vpn-impl", action="append", dest="vpn_impl", metavar="VALUE", help=IMPL_HELP + extra
    )
    parser.add_argument(
        "--tunnel", action="append", dest="vpn_impl", metavar="VALUE", help=argparse.SUPPRESS
    )


def impl_of(args: argparse.Namespace) -> TunnelImpl:
    """The implementation `--vpn-impl` names (the reference when not given)."""
    from vpnsim.impl import TunnelImpl

    return TunnelImpl.parse(args.vpn_impl or [])


def attach(name: str) -> Lab:
    """A running lab by name; not root, or no such lab, is a one-line error."""
    preflight()
    from vpnsim.topology import attach as attach_lab

    return attach_lab(name)
