"""The task registry: for each lab, every task id with its check, what it needs, and the
evidence it keeps, in the report's order; and the runs (fresh labs) that attempt them.

One registry per lab (`vpnsim.grade.tunnel_lab.TUNNEL`, `vpnsim.grade.tls_lab.TLS`); `LABS`
names them for `vpnsim grade --lab` and a submission's `lab` key. Nothing here imports a
lab's checks: `lab_tasks(name)` loads a lab's module when it is asked for, so the report
writers stay light.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vpnsim.errors import UsageError

# What a task keeps beside the report, in its folder (see the grader's `_evidence`):
CAPTURES = "captures"  # every captured link's frames during the task, as pcaps
HOSTS = "hosts"  # each host's links, routes and ip_forward after the task (hosts.txt)
LOG = "log"  # the commands the check ran and what they printed (log.txt)
PROGRAMS = "programs"  # the run's program logs (stdout/stderr of every end)
EVERYTHING = (CAPTURES, HOSTS, LOG, PROGRAMS)

# The labs `--lab` selects: name -> the module that holds its registry (attribute REGISTRY).
LABS = {"tunnel": "vpnsim.grade.tunnel_lab", "tls": "vpnsim.grade.tls_lab"}
DEFAULT_LAB = "tunnel"


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    checks: str  # one sentence a student can read
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entry:
    """A task, the check that decides it (called with its run's context; returns the pass
    reason or raises the lab's Failed with the fail reason), and the evidence it keeps."""

    task: Task
    check: Callable[[Any], str]
    evidence: tuple[str, ...] = EVERYTHING


@dataclass(frozen=True)
class Run:
    """One fresh lab of a grading: its name (a folder of the evidence), the letter in the
    lab's name, and the tasks it attempts, in the order it attempts them."""

    name: str
    letter: str
    tasks: tuple[str, ...]


@dataclass(frozen=True)
class LabTasks:
    """One lab's registry."""

    lab: str
    entries: tuple[Entry, ...]  # in the report's order
    runs: tuple[Run, ...]
    rubric: str  # the default rubric's file name, in vpnsim/grade/

    def __post_init__(self) -> None:
        ids = [e.task.id for e in self.entries]
        if len(set(ids)) != len(ids):
            raise ValueError(f"lab {self.lab}: a task id twice in {ids}")
        for entry in self.entries:  # a prerequisite comes earlier in the report
            for need in entry.task.needs:
                if need not in ids[: ids.index(entry.task.id)]:
                    raise ValueError(f"lab {self.lab}: {entry.task.id} needs unknown {need}")
        run_ids = sorted(t for run in self.runs for t in run.tasks)
        if run_ids != sorted(ids):
            raise ValueError(f"lab {self.lab}: the runs attempt {run_ids}, the tasks are {ids}")

    @property
    def tasks(self) -> tuple[Task, ...]:
        return tuple(e.task for e in self.entries)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(e.task.id for e in self.entries)

    @property
    def by_id(self) -> dict[str, Task]:
        return {e.task.id: e.task for e in self.entries}

    def entry(self, task_id: str) -> Entry:
        for entry in self.entries:
            if entry.task.id == task_id:
                return entry
        raise KeyError(task_id)

    def run(self, name: str) -> Run:
        return next(run for run in self.runs if run.name == name)


class UnknownLab(UsageError):
    """A lab name that `vpnsim grade` cannot grade."""


def lab_tasks(name: str) -> LabTasks:
    """The registry of lab `name` ("tunnel", "tls")."""
    module = LABS.get(name)
    if module is None:
        raise UnknownLab(f"lab {name!r} cannot be graded (known: {', '.join(LABS)})")
    registry: LabTasks = importlib.import_module(module).REGISTRY
    return registry


def lab_of(task_ids: object) -> LabTasks:
    """The registry whose tasks these are (a report's verdicts); the tunnel lab's when no
    lab has them all."""
    wanted = set(task_ids)  # type: ignore[call-overload]
    for name in LABS:
        registry = lab_tasks(name)
        if wanted and wanted <= set(registry.ids):
            return registry
    return lab_tasks(DEFAULT_LAB)
