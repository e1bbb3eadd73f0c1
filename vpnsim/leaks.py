"""Leak accounting: what of a run's labs is still on the machine after teardown."""

from __future__ import annotations

from collections.abc import Iterable

from vpnsim.net import namespace
from vpnsim.topology import NS_PREFIX, STATE_ROOT


def leftovers(labs: Iterable[str]) -> dict[str, list[str]]:
    """For each lab name, its remaining namespaces, processes and state files; empty if clean."""
    found: dict[str, list[str]] = {}
    for lab in labs:
        names = namespace.list_names(f"{NS_PREFIX}{lab}.")
        left = [f"netns {n}" for n in names]
        left += [f"pid {p}" for p in namespace.pids_in(names)]
        if (STATE_ROOT / lab).exists():
            left.append(f"state {STATE_ROOT / lab}")
        if left:
            found[lab] = left
    return found
