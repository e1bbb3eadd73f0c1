"""Grading one submission: the lab's grading (the Tunneling lab's `grader._Grading`, or the
TLS lab's `tls_grader.TlsGrading`) run, and its verdicts scored into a report row.

Apart from both gradings, since the TLS one extends the Tunneling one."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable

from vpnsim import interrupt
from vpnsim.grade.cgroups import jail_cleanup
from vpnsim.grade.grader import GradeOptions, Progress, _Grading
from vpnsim.grade.jail import limits_mechanism
from vpnsim.grade.report import SubmissionResult
from vpnsim.grade.submission import Submission, load_submission
from vpnsim.grade.tls_grader import TlsGrading
from vpnsim.leaks import jail_cgroups

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
    try:
        with interrupt.calling(lambda: _stop_checks(grading)):
            grading.run()
    finally:
        _remove_jail_cgroups(grading.run_names)
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


def _remove_jail_cgroups(labs: Iterable[str]) -> None:
    """The cgroups of the labs' jails, once the labs are gone. A jail removes its own when it
    ends, and `Sides.cleanup` those of jails it stopped; but a signal amid that cleanup, or a
    jail still starting when it ran, leaves one behind its killed supervisor."""
    for lab in labs:
        for cgroup in jail_cgroups(lab):
            jail_cleanup(cgroup.name)
