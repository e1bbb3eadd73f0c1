"""The grade report: one record per submission, written as JSON and read back (for `merge`).

    {"lab": "tunnel", "rubric": {...},
     "submissions": [{"path": ..., "name": ..., "tasks": {"task1": {"passed": true,
       "reason": "...", ...}, ...}, "score": 85.0, "max_score": 100.0, "artifacts": "..."}]}

`artifacts` is relative to the folder the JSON report is in, so a report and its artifacts
can be moved (or gathered from several machines) together.

Each task also has `path`: where the ping the task judged was seen, hop by hop (null when it
traced none: task1, task2, task6, or a task that failed before its ping). See
`vpnsim.grade.path`:

    "path": {"probe": "64-byte ping from U to 192.168.60.5", "required": 12, "stop": 9,
             "reason": "your server never reads its TUN: ...",
             "hops": [{"host": "U", "point": "U-tun", "device": "tun0", "leg": "out",
                       "state": "seen"}, ...]}

`hops` are the 12 places out and back (U's TUN, U's eth0, the server's eth0, TUN and eth1,
V's eth0, then the same way back), `state` "seen", "not seen" or "not looked at";
`required`: how many of them the task needs; `stop`: the index of the hop where the packet
stopped (null: it did not); `reason`: why.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vpnsim.errors import UsageError
from vpnsim.grade.registry import lab_tasks
from vpnsim.grade.rubric import Rubric
from vpnsim.grade.tasks import Verdict

FORMAT = 1


class ReportError(UsageError, ValueError):
    """A report file that cannot be read or merged: names the file."""


@dataclass
class SubmissionResult:
    path: str  # as given on the command line, resolved
    name: str  # unique within a report: the folder's name (plus a suffix on clashes)
    tasks: dict[str, Verdict]
    score: float
    max_score: float
    artifacts: str  # folder with this submission's evidence, relative to the report
    seconds: float = 0.0
    limits: str = ""  # how the sandbox enforced its limits (cgroup v1/v2, rlimit)
    # Set when the harness failed while grading it: what went wrong. Such a row has no task
    # verdicts (nothing the student did was judged) and is regraded, never marked.
    error: str = ""

    @property
    def passed(self) -> int:
        return sum(1 for v in self.tasks.values() if v.passed is True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "name": self.name,
            "tasks": {task: verdict.to_dict() for task, verdict in self.tasks.items()},
            "score": self.score,
            "max_score": self.max_score,
            "artifacts": self.artifacts,
            "seconds": round(self.seconds, 3),
            "limits": self.limits,
            **({"error": self.error} if self.error else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubmissionResult:
        return cls(
            path=data["path"],
            name=data["name"],
            tasks={task: Verdict.from_dict(v) for task, v in data["tasks"].items()},
            score=float(data["score"]),
            max_score=float(data["max_score"]),
            artifacts=data["artifacts"],
            seconds=float(data.get("seconds", 0.0)),
            limits=data.get("limits", ""),
            error=data.get("error", ""),
        )


@dataclass
class GradeReport:
    lab: str
    rubric: Rubric
    submissions: list[SubmissionResult] = field(default_factory=list)
    shard: str = ""  # "I/N" when this report is one slice of a course

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "lab": self.lab,
            "shard": self.shard,
            "tasks": list(lab_tasks(self.lab).ids),
            "rubric": self.rubric.to_dict(),
            "submissions": [s.to_dict() for s in self.submissions],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GradeReport:
        return cls(
            lab=data["lab"],
            rubric=Rubric.from_dict(data["rubric"]),
            submissions=[SubmissionResult.from_dict(s) for s in data["submissions"]],
            shard=data.get("shard", ""),
        )

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        tmp.replace(path)


def read_report(path: Path) -> GradeReport:
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ReportError(f"{path}: not a vpnsim grade report (format {FORMAT})")
        return GradeReport.from_dict(data)
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror}") from exc
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ReportError):
            raise
        raise ReportError(f"{path}: not a vpnsim grade report: {exc}") from exc


def merge_reports(paths: list[Path], out_dir: Path) -> GradeReport:
    """Join shard reports into one whose artifact paths are relative to `out_dir`.

    Shards must agree on the lab and the rubric; a submission graded twice is an error."""
    if not paths:
        raise ReportError("merge: no reports given")
    reports = [(path, read_report(path)) for path in paths]
    first_path, first = reports[0]
    merged = GradeReport(first.lab, first.rubric)
    seen: dict[str, Path] = {}
    for path, report in reports:
        if report.lab != first.lab or report.rubric.points != first.rubric.points:
            raise ReportError(
                f"{path}: graded with another lab or rubric than {first_path}; cannot merge"
            )
        for sub in report.submissions:
            if sub.path in seen:
                raise ReportError(f"{path}: {sub.path} was graded in {seen[sub.path]} too")
            seen[sub.path] = path
            where = (path.parent / sub.artifacts).resolve()
            sub.artifacts = os.path.relpath(where, out_dir.resolve())
            merged.submissions.append(sub)
    merged.submissions.sort(key=lambda s: s.path)
    for sub, name in zip(
        merged.submissions, unique([s.name for s in merged.submissions]), strict=True
    ):
        sub.name = name
    return merged


def unique(names: list[str]) -> list[str]:
    """Names made unique in order (a, a-2, a-3...): they are pages, folders and test names."""
    taken: set[str] = set()
    result = []
    for base in names:
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        result.append(name)
        taken.add(name)
    return result
