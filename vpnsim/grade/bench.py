"""Grading throughput on a mixed class: correct submissions and the common failures (a crash,
a hang, a one-way tunnel, no route, a flood, ...), graded with --jobs 1, 2 and 4 in the same
run (`python -m vpnsim.grade.bench`, `nox -s bench`).

A report, never a pass/fail timing: per --jobs (and per --labs: a submission's labs one
after another, "1", or as many at once as the cores allow, "auto", the default; both give
a side-by-side comparison in one run), wall time, seconds per submission and what a
course of 150 would take at that rate; per submission, its score and seconds (failures cost
differently from passes: a hang waits out its timeouts, a crash ends tasks early). Scores
that differ between --jobs values are printed, since they would be a grading bug, not a cost.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from vpnsim.grade.course import grade_course
from vpnsim.grade.environment import StudentEnvironment, ensure_environment, find_environment
from vpnsim.grade.grader import GradeOptions, labs_at_once
from vpnsim.grade.preflight import check_imports
from vpnsim.grade.report import GradeReport
from vpnsim.grade.rubric import load_rubric

COURSE = 150
CORPUS = Path(__file__).parents[2] / "tests" / "data" / "submissions"
# What a class hands in: passes, a crash, a hang, a one-way tunnel, no route, a flood, ...
MIXED = (
    "correct",
    "classic",
    "server_crashes",
    "hostile_hang",
    "server_never_reads_tun",
    "no_client_route",
    "hostile_flood",
    "client_reads_1000",
    "wrong_port",
    "syntax_error",
)
JOBS = (1, 2, 4)
TIMEOUT = 120.0  # `vpnsim grade`'s default


@dataclass(frozen=True)
class Run:
    jobs: int
    labs: int  # of a submission's labs at once
    seconds: float
    report: GradeReport

    @property
    def label(self) -> str:
        return f"--jobs {self.jobs} labs {self.labs}"

    @property
    def count(self) -> int:
        return len(self.report.submissions)

    @property
    def each(self) -> float:
        return self.seconds / self.count

    def scores(self) -> dict[str, float]:
        return {sub.name: sub.score for sub in self.report.submissions}


def class_of(names: list[str], copies: int, into: Path, corpus: Path = CORPUS) -> list[Path]:
    """`copies` copies of each named corpus submission, as one class's folders."""
    folders = []
    for copy in range(1, copies + 1):
        for name in names:
            folder = into / (name if copies == 1 else f"{name}-{copy}")
            shutil.copytree(corpus / name, folder)
            folders.append(folder)
    return folders


def grade_run(
    folders: list[Path],
    jobs: int,
    out: Path,
    environment: StudentEnvironment,
    timeout: float,
    labs: int | None = None,
) -> Run:
    labs = labs or labs_at_once(jobs)
    options = GradeOptions(load_rubric(), out / "artifacts", out, timeout=timeout, labs=labs)
    start = time.monotonic()
    report = grade_course(folders, options, jobs=jobs, environment=environment)
    return Run(jobs, labs, time.monotonic() - start, report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vpnsim.grade.bench")
    parser.add_argument(
        "--submissions", default=",".join(MIXED), metavar="A,B,...",
        help="corpus folders (tests/data/submissions) making up the class",
    )  # fmt: skip
    parser.add_argument("--copies", type=int, default=1, help="copies of each in the class")
    parser.add_argument("--jobs", default=",".join(map(str, JOBS)), metavar="1,2,4")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, metavar="S")
    parser.add_argument(
        "--labs", default="auto", metavar="1,auto",
        help="a submission's labs at once: 1 (one after another), N, or auto (as cores allow)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    names = [n for n in args.submissions.split(",") if n]
    jobs_list = [int(j) for j in args.jobs.split(",") if j]
    labs_list = [None if n == "auto" else int(n) for n in args.labs.split(",") if n]

    start = time.monotonic()
    cached = find_environment() is not None
    environment = ensure_environment()
    how = "found built" if cached else "built"
    print(
        f"student environment {environment.prefix}: {how} in {time.monotonic() - start:.2f} s",
        flush=True,
    )
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="vpnsim-grade-bench-") as tmp:
        folders = class_of(names, args.copies, Path(tmp) / "class")
        check_imports(folders, environment)
        print(
            f"a class of {len(folders)}: {', '.join(names)}"
            + (f" (x{args.copies})" if args.copies > 1 else ""),
            flush=True,
        )
        for jobs in jobs_list:
            for labs in dict.fromkeys(n or labs_at_once(jobs) for n in labs_list):
                out = Path(tmp) / f"jobs{jobs}-labs{labs}"
                run = grade_run(folders, jobs, out, environment, args.timeout, labs)
                runs.append(run)
                _print(run)
    _per_submission(runs)
    first = runs[0]
    for run in runs[1:]:
        print(f"{run.label} vs {first.label}: {first.seconds / run.seconds:.2f}x the rate")
        differ = {n: (s, run.scores().get(n)) for n, s in first.scores().items()}
        differ = {n: pair for n, pair in differ.items() if pair[0] != pair[1]}
        if differ:
            print(f"  scores differ from {first.label}: {differ}")
    best = min(runs, key=lambda r: r.each)
    print(
        f"fastest: {best.label}, {best.each:.2f} s per submission: a course of {COURSE} "
        f"in {COURSE * best.each / 60:.1f} min"
    )
    return 0


def _print(run: Run) -> None:
    print(
        f"{run.label}: {run.count} submissions in {run.seconds:.1f} s = "
        f"{run.each:.2f} s each, {60 / run.each:.1f} per minute; a course of {COURSE} "
        f"would take {COURSE * run.each / 60:.1f} min",
        flush=True,
    )


def _per_submission(runs: list[Run]) -> None:
    """Each submission's score and seconds under every --jobs value (its own wall time)."""
    width = max(len(sub.name) for sub in runs[0].report.submissions)
    header = "  ".join(f"{f'j{run.jobs} labs{run.labs}':>10}" for run in runs)
    print(f"{'submission':<{width}}  score  {header}")
    by_jobs = [{sub.name: sub for sub in run.report.submissions} for run in runs]
    for sub in runs[0].report.submissions:
        cells = "  ".join(f"{table[sub.name].seconds:8.1f} s" for table in by_jobs)
        print(f"{sub.name:<{width}}  {sub.score:5g}  {cells}")


if __name__ == "__main__":
    raise SystemExit(main())
