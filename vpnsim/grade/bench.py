"""Grading throughput: a folder of N copies of one submission, graded with --jobs 1 and with
--jobs 2 in the same run, side by side (`python -m vpnsim.grade.bench`, `nox -s bench`).

Prints seconds per submission, submissions per minute, the jobs-2/jobs-1 ratio, and what a
course of 150 would take at the faster rate.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from vpnsim.grade.course import grade_course
from vpnsim.grade.grader import GradeOptions
from vpnsim.grade.rubric import load_rubric

COURSE = 150


def copies(submission: Path, count: int, into: Path) -> list[Path]:
    folders = []
    for n in range(1, count + 1):
        folder = into / f"student{n:03d}"
        shutil.copytree(submission, folder)
        folders.append(folder)
    return folders


def grade_rate(folders: list[Path], jobs: int, out: Path) -> tuple[float, int]:
    """Seconds to grade `folders` with `jobs` workers, and how many got every task."""
    options = GradeOptions(load_rubric(), out / "artifacts", out)
    start = time.monotonic()
    report = grade_course(folders, options, jobs=jobs)
    seconds = time.monotonic() - start
    perfect = sum(1 for s in report.submissions if s.score == s.max_score)
    return seconds, perfect


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vpnsim.grade.bench")
    default = Path(__file__).parents[2] / "tests" / "data" / "submissions" / "correct"
    parser.add_argument("--submission", type=Path, default=default)
    parser.add_argument("--copies", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vpnsim-grade-bench-") as tmp:
        folders = copies(args.submission, args.copies, Path(tmp) / "class")
        figures = {}
        for jobs in (1, 2):
            seconds, perfect = grade_rate(folders, jobs, Path(tmp) / f"jobs{jobs}")
            figures[jobs] = seconds
            print(
                f"--jobs {jobs}: {args.copies} submissions in {seconds:.1f} s = "
                f"{seconds / args.copies:.2f} s each, {60 * args.copies / seconds:.1f} per "
                f"minute ({perfect}/{args.copies} got every task)",
                flush=True,
            )
    best = min(figures.values()) / args.copies
    print(
        f"--jobs 2 vs --jobs 1: {figures[1] / figures[2]:.2f}x the rate; a course of {COURSE} "
        f"would take {COURSE * best / 60:.1f} min at the faster rate"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
