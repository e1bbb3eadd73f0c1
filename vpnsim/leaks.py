"""Leak accounting: what of a run's labs is still on the machine after teardown.

Other runs (another pytest-xdist worker, another user's session, a grader) may have labs on
the same machine at the same time, so a run never looks at "every vpnsim namespace": it
asks about the labs it built, by name (`leftovers`), or, when another process built them,
by where that run keeps its logs (`labs_logging_under`), or by the processes that own
them (`labs_owned_by`: a grader's workers, a command that was interrupted).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from pathlib import Path

from vpnsim.net import namespace
from vpnsim.topology import NS_PREFIX, STATE_ROOT

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Where jails keep their cgroups (vpnsim.grade.cgroups): <hierarchy>/vpnsim/<jail>, cgroup
# v2 or any v1 hierarchy. A jail of lab L is named L-<what> (vpnsim.grade.sides).
JAIL_CGROUPS = ("vpnsim", "*/vpnsim")


def leftovers(labs: Iterable[str]) -> dict[str, list[str]]:
    """For each lab name, its remaining namespaces, processes, state files and jail cgroups;
    empty if clean."""
    found: dict[str, list[str]] = {}
    for lab in labs:
        names = namespace.list_names(f"{NS_PREFIX}{lab}.")
        left = [f"netns {n}" for n in names]
        left += [f"pid {p}" for p in namespace.pids_in(names)]
        if (STATE_ROOT / lab).exists():
            left.append(f"state {STATE_ROOT / lab}")
        left += [f"cgroup {path}" for path in jail_cgroups(lab)]
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


def jail_cgroups(lab: str, root: Path = CGROUP_ROOT) -> list[Path]:
    """The cgroups of lab `lab`'s jails still on this machine (a jail removes its own when
    it ends; one whose supervisor was killed leaves it for `jail_cleanup`)."""
    return sorted(path for base in JAIL_CGROUPS for path in root.glob(f"{base}/{lab}-*"))


def labs_owned_by(pids: Collection[int]) -> list[str]:
    """Labs on this machine whose recorded owner is one of `pids`: those the processes built
    for themselves and have not removed (a process that was killed cannot)."""
    found = []
    for state in STATE_ROOT.glob("*/lab.json"):
        try:
            owner = json.loads(state.read_text()).get("owner_pid")
        except (FileNotFoundError, ValueError, AttributeError):
            continue  # removed meanwhile, or not a lab's state
        if isinstance(owner, int) and owner in pids:
            found.append(state.parent.name)
    return sorted(found)
