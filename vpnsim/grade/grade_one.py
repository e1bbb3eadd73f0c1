"""Grading one submission: the lab's grading (the Tunneling lab's `grader._Grading`, or the
TLS lab's `tls_grader.TlsGrading`) run, and its verdicts scored into a report row.

Apart from both gradings, since the TLS one extends the Tunneling one."""

from __future__ import annotations

import os
import shutil
import time

from vpnsim import interrupt
from vpnsim.grade.grader import GradeOptions, Progress, _Grading
from vpnsim.grade.jail import limits_mechanism
from vpnsim.grade.report import SubmissionResult
from vpnsim.grade.submission import Submission, load_submission
from vpnsim.grade.tls_grader import TlsGrading

GRADINGS: dict[str, type[_Grading]] = {"tunnel": _Grading, "tls": TlsGrading}


def grade_submission(
    submission: Submission, name: str, options: GradeOptions, progress: Progress | None = None
) -> SubmissionResult:
    """Grade `submission`; its evidence goes to `options.artifacts_root / name`."""
    started = time.monotonic()
    folder = options.artifacts_root / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if submission.lab != options.lab:  # its files' default names depend on the lab
        submission = load_submission(submission.path, options.lab)
    grading = GRADINGS[options.lab](
        submission, name, options, folder, progress or (lambda *a: None)
    )
    with interrupt.calling(lambda: _stop_checks(grading)):
        grading.run()
    verdicts = grading.outcome.ordered()
    return SubmissionResult(
        path=str(submission.path),
        name=name,
        tasks=verdicts,
        score=options.rubric.score(verdicts),
        max_score=options.rubric.total,
        artifacts=os.path.relpath(folder.resolve(), options.report_dir.resolve()),
        seconds=time.monotonic() - started,
        limits="; ".join(filter(None, (limits_mechanism(), grading.caps_text))),
    )


def _stop_checks(grading: _Grading) -> None:
    """Told to stop: the interop runs beside the pair run (threads: the signal's exception
    reaches only the main thread) start no further check, so their labs go down at once."""
    grading.deadline = float("-inf")
