"""Probe outcomes that are findings about the network under test, not harness faults."""

from __future__ import annotations

from vpnsim.errors import Finding


class ProbeFailed(Finding, AssertionError):
    """Traffic did not arrive, or arrived different from what was sent. A finding.

    An AssertionError, so pytest reports it as a test failure with this message.
    """


class NoRoute(ProbeFailed):
    """The sender had no route, or a router answered "unreachable"."""
