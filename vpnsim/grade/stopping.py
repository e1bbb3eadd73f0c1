"""Stopping a grading run midway (SIGTERM, Ctrl-C) with nothing left behind.

A grading process builds labs, jails and work copies for itself, owned by its PID. Told to
stop, it unwinds their with/finally teardowns (`vpnsim.interrupt`); what a signal amid a
teardown broke off, or what a worker killed outright (SIGKILL, out of memory) left, is found
by that PID and removed here (`remove_left_by`), the way `vpnsim clean` would.

The parent of the workers (`vpnsim.grade.course`) tells each to stop (SIGTERM), waits for
them a bounded time (`STOP_GRACE`), kills the ones still running, then removes what all of
them left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Collection, Iterable
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path

from vpnsim.grade.cgroups import jail_cleanup
from vpnsim.grade.workcopy import copies_of, remove_copy
from vpnsim.leaks import jail_cgroups, labs_logging_under, labs_owned_by, leftovers
from vpnsim.proc import is_alive
from vpnsim.topology import destroy

# Seconds a worker has to remove its labs and jails once told to stop: a check in progress
# ends (probes and waits are bounded by seconds), then the teardowns run.
STOP_GRACE = 30.0


def stop_workers(workers: Iterable[BaseProcess], grace: float = STOP_GRACE) -> list[int]:
    """SIGTERM each live worker, wait up to `grace` seconds for all to end, SIGKILL the
    rest. Returns the PIDs of those that had to be killed."""
    live = [w for w in workers if w.exitcode is None and w.pid is not None]
    for worker in live:
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile (not reaped yet)
            os.kill(worker.pid or 0, signal.SIGTERM)
    # Waited on by their sentinels, never reaped here: the pool's own thread joins them.
    deadline = time.monotonic() + grace
    running = {w.sentinel: w for w in live}
    while running and (left := deadline - time.monotonic()) > 0:
        ended = set(wait(list(running), timeout=left))
        running = {sentinel: w for sentinel, w in running.items() if sentinel not in ended}
    killed = []
    for worker in running.values():
        worker.kill()  # alive (its sentinel is open), so its PID is still its own
        killed.append(worker.pid or 0)
    if running:  # (wait([]) would wait for ever)
        wait([w.sentinel for w in running.values()])
    return killed


def remove_left_by(pids: Collection[int], under: Path) -> list[str]:
    """Remove the labs (with their processes and jails) that processes `pids` own and that
    log under `under` (a grading's artifacts), and their work copies; none of the processes
    may still be grading. Returns the labs removed."""
    labs = _labs(pids, under)
    for lab in labs:
        destroy(lab)  # kills the jails' supervisors: their cgroups stay, empty
        for cgroup in jail_cgroups(lab):
            jail_cleanup(cgroup.name)
    for copy in copies_of(pids):
        remove_copy(copy)
    return labs


def left_behind(labs: Iterable[str], pids: Collection[int], under: Path) -> list[str]:
    """What is still on the machine of labs `labs` and of graders `pids` (see
    `remove_left_by`): namespaces, processes, state, jail cgroups, work copies, graders still
    running. Empty if clean."""
    labs = list(labs)
    left = [item for found in leftovers(labs).values() for item in found]
    left += [f"lab {lab}" for lab in _labs(pids, under) if lab not in labs]
    left += [f"work copy {copy}" for copy in copies_of(pids)]
    left += [f"grader pid {pid}" for pid in pids if pid != os.getpid() and is_alive(pid)]
    return left


def _labs(pids: Collection[int], under: Path) -> list[str]:
    return sorted(set(labs_owned_by(pids)) & set(labs_logging_under(under)))
