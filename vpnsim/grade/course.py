"""Grade a course: find the submissions, take this shard's slice, grade them N at a time.

Each submission is graded in a worker process of its own (labs, captures and jails never
share a process), and workers report each task's verdict as it comes, for the progress
display. Results are ordered by path, so a report does not depend on which worker was first.
Every worker's student programs run the one student environment resolved here.

A harness fault while grading one submission (an exception of the grader's own, a worker
process that died) does not stop the course: that submission gets an error row (its
`error` says what failed, it has no task verdicts: nothing the student did was judged), the
others are graded, and `vpnsim grade` exits with status 2 at the end.

Told to stop (SIGTERM, Ctrl-C: `vpnsim.interrupt`), a course stops every worker, waits for
them to tear their labs and jails down (a bounded time, then they are killed), removes what
any of them left (`vpnsim.grade.stopping`) and raises `CourseInterrupted` with what was
graded so far; the other submissions are marked not graded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import queue
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.managers import SyncManager
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from vpnsim import interrupt
from vpnsim.errors import UsageError
from vpnsim.grade.environment import StudentEnvironment, ensure_environment
from vpnsim.grade.grade_one import grade_submission
from vpnsim.grade.grader import GradeOptions, Progress, labs_at_once
from vpnsim.grade.report import GradeReport, SubmissionResult, unique
from vpnsim.grade.stopping import left_behind, remove_left_by, stop_workers
from vpnsim.grade.submission import CONFIG, SCRIPTS, Submission, load_submission
from vpnsim.grade.tasks import Verdict

# name, task id ("" when the submission starts), verdict (None at the start)
Event = tuple[str, str, Verdict | None]
Listener = Callable[[Event], None]
# The task id of the event saying the harness failed on a submission (its verdict's reason).
HARNESS_ERROR = "harness-error"
# What grades one submission: `grade_submission`, or a double in tests (a module-level
# function, so that worker processes can be handed it).
Grader = Callable[[Submission, str, GradeOptions, Progress], SubmissionResult]
TRACEBACK_FILE = "harness-error.txt"  # in the submission's artifacts folder


class CourseError(UsageError, ValueError):
    """Bad arguments to `vpnsim grade`: a shard spec, a path that is not there."""


class CourseInterrupted(interrupt.Interrupted):
    """The course was told to stop: `report` has the submissions graded before, the others
    as not graded; `left` is what could not be removed (empty: nothing left behind)."""

    def __init__(self, signum: int, report: GradeReport, left: list[str]) -> None:
        super().__init__(signum)
        self.report = report
        self.left = left

    @property
    def graded(self) -> int:
        return sum(1 for sub in self.report.submissions if not sub.error)


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
    grade: Grader = grade_submission,
) -> GradeReport:
    """Grade the submissions in `paths` (after `discover`), `jobs` at a time.

    Student programs run `python3` from `environment` (default: `options.environment`, else
    the grade extra's environment, built the first time). A submission the harness failed
    on gets an error row (`SubmissionResult.error`); the others are still graded."""
    environment = environment or options.environment or ensure_environment()
    labs = options.labs or labs_at_once(jobs)  # a submission's labs at once, as cores allow
    options = dataclasses.replace(options, environment=environment, labs=labs)
    chosen = shard.take(paths) if shard else sorted(paths)
    names = unique_names(chosen)
    report = GradeReport(options.lab, options.rubric, shard=str(shard or ""))
    notify = listener or (lambda event: None)
    results: dict[Path, SubmissionResult] = {}
    graders = {os.getpid()}  # the processes whose labs and jails these are
    try:
        if jobs <= 1:
            for path in chosen:
                with interrupt.armed():
                    results[path] = _grade(path, names[path], options, notify, grade)
        else:
            _in_parallel(chosen, names, options, jobs, notify, grade, results, graders)
    except KeyboardInterrupt as exc:
        # What a signal amid a teardown broke off, and what killed workers left.
        removed = remove_left_by(graders, options.artifacts_root)
        left = left_behind(removed, graders, options.artifacts_root)
        why = f"not graded ({interrupt.Interrupted(interrupt.signal_of(exc))})"
        for path in chosen:
            if path not in results:
                results[path] = _not_graded(path, names[path], options, why)
        report.submissions = sorted(results.values(), key=lambda s: s.path)
        raise CourseInterrupted(interrupt.signal_of(exc), report, left) from exc
    report.submissions = sorted(results.values(), key=lambda s: s.path)
    return report


def _in_parallel(
    paths: list[Path],
    names: dict[Path, str],
    options: GradeOptions,
    jobs: int,
    notify: Listener,
    grade: Grader,
    results: dict[Path, SubmissionResult],
    graders: set[int],
) -> None:
    """Grade `paths` in worker processes into `results`; every worker's PID goes into
    `graders`. Told to stop, it stops the workers before the exception goes on."""
    started: set[str] = set()  # submissions a worker began (their start event came)

    def relay(event: Event) -> None:
        if event[1] == "":
            started.add(event[0])
        notify(event)

    # spawn: a worker must not inherit the parent's threads (progress display, captures).
    context = multiprocessing.get_context("spawn")
    remaining = list(paths)
    # The event queue's server ignores SIGINT and SIGTERM: a Ctrl-C reaching the whole process
    # group must not take the queue from workers that are still tearing their labs down.
    manager = SyncManager(ctx=context)
    manager.start(interrupt.ignore_signals)
    with manager:
        events: queue.Queue[Event] = manager.Queue()
        while remaining:
            workers: dict[int, BaseProcess] = {}
            futures: dict[Path, Future[dict[str, Any]]] = {}
            with ProcessPoolExecutor(jobs, context, initializer=_worker_started) as pool:
                try:  # from the first submit: the pool's exit would wait for all submitted
                    for path in remaining:
                        futures[path] = pool.submit(
                            _worker, str(path), names[path], options, events, grade
                        )
                    pending = set(futures.values())
                    while pending:
                        workers.update(_workers_of(pool))
                        _relay(events, relay, timeout=0.1)
                        pending = {f for f in pending if not f.done()}
                    _relay(events, relay, timeout=0)
                except KeyboardInterrupt:
                    workers.update(_workers_of(pool))  # before the shutdown forgets them
                    pool.shutdown(wait=False, cancel_futures=True)
                    graders.update(workers)
                    stop_workers(workers.values())
                    _collect(futures, results)
                    raise
            graders.update(workers)
            remove_left_by(workers, options.artifacts_root)  # what a killed worker left
            retry = []
            for path, future in futures.items():
                try:
                    results[path] = SubmissionResult.from_dict(future.result())
                except BrokenProcessPool as exc:
                    # A worker process died (killed, out of memory): the pool is gone. Those
                    # being graded then get an error row; those not begun go to a new pool.
                    if names[path] in started:
                        results[path] = _failed(path, names[path], options, notify, exc)
                    else:
                        retry.append((path, exc))
                except BaseException as exc:  # a result that did not come back whole; a
                    # worker told to stop on its own (KeyboardInterrupt) while this one goes on
                    results[path] = _failed(path, names[path], options, notify, exc)
            if len(retry) == len(remaining):  # no worker began any: a new pool would not either
                for path, broken in retry:
                    results[path] = _failed(path, names[path], options, notify, broken)
                retry = []
            remaining = [path for path, _ in retry]


def _workers_of(pool: ProcessPoolExecutor) -> dict[int, BaseProcess]:
    # The pool's own record of its processes (no public API names them): to stop them, and
    # to find by their PIDs what one that was killed left.
    return dict(pool._processes or {})


def _collect(
    futures: dict[Path, Future[dict[str, Any]]], results: dict[Path, SubmissionResult]
) -> None:
    """The results of the submissions that were graded whole."""
    for path, future in futures.items():
        if future.done() and not future.cancelled() and future.exception() is None:
            results[path] = SubmissionResult.from_dict(future.result())


def _worker_started() -> None:
    """A worker's set-up: told to stop (SIGTERM from the parent, or a Ctrl-C reaching the
    process group), it unwinds the grading in progress and grades no more."""
    interrupt.raise_on_signals(armed=False)


def _relay(events: queue.Queue[Event], notify: Listener, timeout: float) -> None:
    try:
        event = events.get(timeout=timeout) if timeout else events.get_nowait()
        while True:
            notify(event)
            event = events.get_nowait()
    except queue.Empty:
        return


def _grade(
    path: Path, name: str, options: GradeOptions, notify: Listener, grade: Grader
) -> SubmissionResult:
    notify((name, "", None))
    try:
        return grade(
            load_submission(path, options.lab), name, options,
            lambda sub, task, verdict: notify((sub, task, verdict)),
        )  # fmt: skip
    except Exception as exc:  # the harness's own fault: this row says so, the course goes on
        return _failed(path, name, options, notify, exc)


def _failed(
    path: Path, name: str, options: GradeOptions, notify: Listener, exc: BaseException
) -> SubmissionResult:
    """The error row of a submission the harness failed on: no verdicts, the exception in
    one line, its traceback in the artifacts folder."""
    folder = options.artifacts_root / name
    error = harness_error(exc)
    with contextlib.suppress(OSError):  # the folder itself may be what failed
        folder.mkdir(parents=True, exist_ok=True)
        text = "".join(traceback.format_exception(exc))
        (folder / TRACEBACK_FILE).write_text(f"{error}\n\n{text}")
    notify((name, HARNESS_ERROR, Verdict(None, error)))
    return _not_graded(path, name, options, error)


def harness_error(exc: BaseException) -> str:
    """'the grader failed (not the submission): KIND: message (at FILE:LINE in FUNCTION)',
    the place being the innermost frame in vpnsim (else the innermost one)."""
    if isinstance(exc, BrokenProcessPool):  # its traceback is the pool's, not the grader's
        return "the grader failed (not the submission): its worker process died (killed?)"
    what = "".join(traceback.format_exception_only(exc)).strip().replace("\n", " ")
    frames = traceback.extract_tb(exc.__traceback__)
    package = Path(__file__).parents[1]
    ours = [f for f in frames if Path(f.filename).is_relative_to(package)]
    if frames:
        frame = (ours or frames)[-1]
        where = Path(frame.filename)
        top = package.parent
        shown = where.relative_to(top) if where.is_relative_to(top) else where
        what += f" (at {shown}:{frame.lineno} in {frame.name})"
    return f"the grader failed (not the submission): {what}"


def _not_graded(path: Path, name: str, options: GradeOptions, why: str) -> SubmissionResult:
    """The row of a submission with no verdicts: the harness failed on it, or the course
    stopped before its grading was whole; `why` says which."""
    folder = options.artifacts_root / name
    return SubmissionResult(
        path=str(path),
        name=name,
        tasks={},
        score=0.0,
        max_score=options.rubric.total,
        artifacts=os.path.relpath(folder.resolve(), options.report_dir.resolve()),
        error=why,
    )


def _worker(
    path: str, name: str, options: GradeOptions, events: queue.Queue[Event], grade: Grader
) -> dict[str, Any]:
    try:
        with interrupt.armed():  # told to stop before: grade no more
            return _grade(Path(path), name, options, events.put, grade).to_dict()
    except KeyboardInterrupt:
        # The teardowns have run; a signal amid one may have broken it off. (The parent
        # removes all this too, after the worker ended; done here, it ends sooner.)
        with contextlib.suppress(Exception):
            remove_left_by([os.getpid()], options.artifacts_root)
        raise
