"""Grade a course: find the submissions, take this shard's slice, grade them N at a time.

Each submission is graded in a worker process of its own (labs, captures and jails never
share a process), and workers report each task's verdict as it comes, for the progress
display. Results are ordered by path, so a report does not depend on which worker was first.
Every worker's student programs run the one student environment resolved here.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import queue
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpnsim.errors import HarnessError
from vpnsim.grade.environment import StudentEnvironment, ensure_environment
from vpnsim.grade.grader import GradeOptions, grade_submission
from vpnsim.grade.report import GradeReport, SubmissionResult, unique
from vpnsim.grade.submission import CONFIG, SCRIPTS, load_submission
from vpnsim.grade.tasks import Verdict

# name, task id ("" when the submission starts), verdict (None at the start)
Event = tuple[str, str, Verdict | None]
Listener = Callable[[Event], None]


class CourseError(HarnessError, ValueError):
    """Bad arguments to `vpnsim grade`: a shard spec, a path that is not there."""


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """'I/N' with 1 <= I <= N (a Kubernetes index or Slurm task id 0..N-1: add 1)."""
        index, sep, count = text.partition("/")
        try:
            shard = cls(int(index), int(count))
        except ValueError:
            raise CourseError(f"--shard {text}: expected I/N, e.g. 1/4") from None
        if not sep or not 1 <= shard.index <= shard.count:
            raise CourseError(f"--shard {text}: expected I/N with 1 <= I <= N")
        return shard

    def take(self, paths: list[Path]) -> list[Path]:
        """This shard's slice: every N-th of the submissions sorted by path, round robin."""
        return [p for i, p in enumerate(sorted(paths)) if i % self.count == self.index - 1]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def is_submission(folder: Path) -> bool:
    scripts = [script for pair in SCRIPTS.values() for script in pair]
    return any((folder / name).is_file() for name in (*scripts, CONFIG))


def discover(paths: list[Path]) -> list[Path]:
    """Submission folders: each path given, or, for a folder of folders (a whole class),
    each of its subfolders. Sorted, without duplicates."""
    found: set[Path] = set()
    for path in paths:
        if not path.exists():
            raise CourseError(f"{path}: no such file or folder")
        if path.is_dir() and not is_submission(path):
            subfolders = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]
            if subfolders:
                found.update(p.resolve() for p in subfolders)
                continue
        found.add(path.resolve())
    return sorted(found)


def unique_names(paths: list[Path]) -> dict[Path, str]:
    """A page and folder name per submission: its folder name, with -2, -3 on clashes."""
    ordered = sorted(paths)
    return dict(zip(ordered, unique([_safe(p.name) or "submission" for p in ordered]), strict=True))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")


def grade_course(
    paths: list[Path],
    options: GradeOptions,
    *,
    jobs: int = 1,
    shard: Shard | None = None,
    listener: Listener | None = None,
    environment: StudentEnvironment | None = None,
) -> GradeReport:
    """Grade the submissions in `paths` (after `discover`), `jobs` at a time.

    Student programs run `python3` from `environment` (default: `options.environment`, else
    the grade extra's environment, built the first time)."""
    environment = environment or options.environment or ensure_environment()
    options = dataclasses.replace(options, environment=environment)
    chosen = shard.take(paths) if shard else sorted(paths)
    names = unique_names(chosen)
    report = GradeReport(options.lab, options.rubric, shard=str(shard or ""))
    notify = listener or (lambda event: None)
    if jobs <= 1:
        for path in chosen:
            report.submissions.append(_grade(path, names[path], options, notify))
    else:
        report.submissions = _in_parallel(chosen, names, options, jobs, notify)
    report.submissions.sort(key=lambda s: s.path)
    return report


def _in_parallel(
    paths: list[Path], names: dict[Path, str], options: GradeOptions, jobs: int, notify: Listener
) -> list[SubmissionResult]:
    # spawn: a worker must not inherit the parent's threads (progress display, captures).
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        events: queue.Queue[Event] = manager.Queue()
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures: list[Future[dict[str, Any]]] = [
                pool.submit(_worker, str(path), names[path], options, events) for path in paths
            ]
            pending = set(futures)
            while pending:
                _relay(events, notify, timeout=0.1)
                pending = {f for f in pending if not f.done()}
            _relay(events, notify, timeout=0)
            return [SubmissionResult.from_dict(f.result()) for f in futures]


def _relay(events: queue.Queue[Event], notify: Listener, timeout: float) -> None:
    try:
        event = events.get(timeout=timeout) if timeout else events.get_nowait()
        while True:
            notify(event)
            event = events.get_nowait()
    except queue.Empty:
        return


def _grade(path: Path, name: str, options: GradeOptions, notify: Listener) -> SubmissionResult:
    notify((name, "", None))
    return grade_submission(
        load_submission(path, options.lab), name, options,
        lambda sub, task, verdict: notify((sub, task, verdict)),
    )  # fmt: skip


def _worker(
    path: str, name: str, options: GradeOptions, events: queue.Queue[Event]
) -> dict[str, Any]:
    return _grade(Path(path), name, options, events.put).to_dict()
