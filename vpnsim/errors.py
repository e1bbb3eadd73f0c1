"""The two kinds of failure, kept apart (see ARCHITECTURE.md, principle 6).

- HarnessError: vpnsim cannot do what was asked (not root, no /dev/net/tun, unknown lab,
  a netlink request refused). The message says what to do.
- Findings about the program under test live beside the code that observes them
  (`vpnsim.proc.ProgramFailed`); they carry evidence, such as the program's stderr.

This module imports nothing heavy: the CLI reports harness errors before loading pyroute2.
"""

from __future__ import annotations


class HarnessError(RuntimeError):
    """vpnsim itself cannot do what was asked; the message says what to do."""
