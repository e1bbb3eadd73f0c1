"""Leak accounting: what of a run's labs is still on the machine after teardown.

Other runs (another pytest-xdist worker, another user's session, a grader) may have labs on
the same machine at the same time, so a run never looks at "every vpnsim namespace": it
asks about the labs it built, by name (`leftovers`), or, when another process built them,
by where that run keeps its logs (`labs_logging_under`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

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


def labs_logging_under(folder: Path) -> list[str]:
    """Labs still on this machine whose logs go under `folder`: those a run keeping its
    artifacts there (a pytest session's basetemp, `vpnsim run --artifacts`, `vpnsim grade
    --out`) built and has not removed. Labs of other runs are never among them.

    Found by the state each lab records: it is written before the lab's first namespace is
    made and removed after its last one is, so a lab with anything left has it."""
    folder = folder.resolve()
    found = []
    for state in STATE_ROOT.glob("*/lab.json"):
        try:
            log_dir = json.loads(state.read_text())["log_dir"]
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            continue  # removed meanwhile, or not a lab's state
        if isinstance(log_dir, str) and Path(log_dir).resolve().is_relative_to(folder):
            found.append(state.parent.name)
    return sorted(found)
