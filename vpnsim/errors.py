"""One root, `VpnsimError`, and three kinds of failure kept apart (ARCHITECTURE.md,
principle 6), as h11 keeps its own mistakes (LocalProtocolError) apart from its peer's
(RemoteProtocolError):

- HarnessError: vpnsim cannot do what was asked (not root, no /dev/net/tun, a netlink
  request refused, a wire that died). Ours or the machine's; the message says what to do.
- UsageError: what the user gave is wrong (a scenario file, an option, a course or rubric
  file, a --vpn-impl value). The message names the file, key or option.
- Finding: the program or network under test misbehaved (`vpnsim.proc.ProgramFailed`,
  `vpnsim.traffic.errors.ProbeFailed`); it carries evidence, such as the program's stderr.

A front end catches `VpnsimError` once and exits with its `exit_status`. Each class keeps
the built-in base it had (RuntimeError, ValueError, AssertionError), so older `except`
clauses and pytest's reporting of an AssertionError still hold.

This module imports nothing: the CLI reports errors before loading pyroute2.
"""

from __future__ import annotations

EXIT_FINDING = 1
EXIT_USAGE = 2


class VpnsimError(Exception):
    """Anything vpnsim raises on purpose; the message is meant for the user."""

    exit_status = EXIT_USAGE


class HarnessError(VpnsimError, RuntimeError):
    """vpnsim itself cannot do what was asked; the message says what to do."""


class UsageError(VpnsimError, ValueError):
    """The user's input is wrong (a file, a key, an option); the message names it."""


class Finding(VpnsimError):
    """The program or network under test did not do what it should: a result, not a crash."""

    exit_status = EXIT_FINDING


class PacketError(Finding, ValueError):
    """Bytes from the wire that are not the packet or frame they should be: what a peer,
    or the program under test, sent. The reference tunnel counts and drops them."""
