"""Verdicts, and the outcome of a grading as its tasks run.

A lab's tasks (ids as in the JSON report, what each checks and needs) are in its registry
(`vpnsim.grade.registry`); TASKS here are the Tunneling lab's, the default. A task whose
prerequisite did not pass is "not reached" (passed=None) with the headline of that
prerequisite's reason (one short line, not its traceback), never failed for it twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vpnsim.grade import tunnel_lab
from vpnsim.grade.path import PacketPath
from vpnsim.grade.registry import LabTasks, Task

TUNNEL = tunnel_lab.REGISTRY
# The Tunneling lab's tasks (the default lab); another lab's are in its registry.
TASKS: tuple[Task, ...] = TUNNEL.tasks
TASK_IDS: tuple[str, ...] = TUNNEL.ids
BY_ID: dict[str, Task] = TUNNEL.by_id


@dataclass(frozen=True)
class Verdict:
    """One task's outcome: passed True/False, or None when not reached (or not run)."""

    passed: bool | None
    reason: str
    log: tuple[str, ...] = ()  # commands run and what they printed, in order
    evidence: tuple[str, ...] = ()  # files beside the report, relative to its artifacts folder
    seconds: float = 0.0
    path: PacketPath | None = None  # where the task's probe was seen (None: it traced none)

    @property
    def status(self) -> str:
        return {True: "passed", False: "failed", None: "not reached"}[self.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "log": list(self.log),
            "evidence": list(self.evidence),
            "seconds": round(self.seconds, 3),
            "path": None if self.path is None else self.path.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        return cls(
            passed=data["passed"],
            reason=data["reason"],
            log=tuple(data.get("log", ())),
            evidence=tuple(data.get("evidence", ())),
            seconds=float(data.get("seconds", 0.0)),
            path=None if data.get("path") is None else PacketPath.from_dict(data["path"]),
        )


HEADLINE = 100  # characters of a reason that a task it blocks repeats


def headline(reason: str) -> str:
    """A reason's first, short part: its first line up to the first ": " (reasons read
    "what: detail"), at most HEADLINE characters. A task that is not reached names its
    cause with this, not with a whole traceback."""
    line = reason.strip().split("\n", 1)[0]
    line = line.split(": ", 1)[0]
    if len(line) > HEADLINE:
        line = line[: HEADLINE - 1].rsplit(" ", 1)[0] + "…"
    return line


@dataclass
class Outcome:
    """Verdicts as tasks run: a task is attempted only when its prerequisites passed."""

    verdicts: dict[str, Verdict] = field(default_factory=dict)
    lab: LabTasks = TUNNEL

    def blocker(self, task_id: str) -> str | None:
        """Why `task_id` cannot run (the first prerequisite that did not pass), or None."""
        by_id = self.lab.by_id
        for need in by_id[task_id].needs:
            verdict = self.verdicts.get(need)
            if verdict is None:
                return f"needs {need} ({by_id[need].title}), which was not run"
            if verdict.passed is None:  # the root cause, not a chain of "needs"
                return verdict.reason
            if verdict.passed is False:
                return (
                    f"needs {need} ({by_id[need].title}), which failed: {headline(verdict.reason)}"
                )
        return None

    def record(self, task_id: str, verdict: Verdict) -> None:
        self.verdicts[task_id] = verdict

    def not_reached(self, task_id: str, reason: str) -> Verdict:
        verdict = Verdict(None, reason)
        self.verdicts[task_id] = verdict
        return verdict

    def ordered(self) -> dict[str, Verdict]:
        """Every task of the lab, in its order; one never recorded is not reached."""
        return {
            task_id: self.verdicts.get(task_id, Verdict(None, "not run"))
            for task_id in self.lab.ids
        }
