"""`vpnsim grade SUBMISSION...` and `vpnsim grade merge REPORT.json...`.

Without --json/--junit/--html, the report goes to OUT/report.json and OUT/index.html. Every
submission's evidence goes to OUT/artifacts/<name>/, and report paths point there relatively,
so OUT can be zipped, copied or served as it is.

Student programs run `python3` from the student environment (`vpnsim.grade.environment`:
vpnsim's grade extra plus `--requirements FILE`), never the grader's own. Before any lab is
built, the preflight (`vpnsim.grade.preflight`) checks that it has every module the
submissions import; when it lacks one, the command says what to install, exits 2 and grades
nothing.

Stopped midway (SIGTERM, as CI runners, `timeout`, systemd and Kubernetes do, or Ctrl-C), it
stops its workers, which tear their labs and jails down; removes whatever a killed one left;
writes the reports of what was graded (the rest marked "not graded (interrupted by ...)");
says whether anything was left behind; and exits 143 (SIGTERM) or 130 (SIGINT).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpnsim.grade.registry import DEFAULT_LAB, LABS, lab_tasks
from vpnsim.grade.report import GradeReport

if TYPE_CHECKING:  # imported by `run` only: `grade merge` needs no grading
    from vpnsim.grade.course import CourseInterrupted

DEFAULT_OUT = "vpnsim-grade"
DEFAULT_TIMEOUT = 120.0
EXIT_OK = 0
EXIT_HARNESS = 2  # the harness failed on some submission: its row says why; regrade it


MERGE_DESCRIPTION = (
    "Join the JSON reports of a course's shards (`vpnsim grade --shard I/N --json FILE`) into "
    "one. The shards must share the lab and the rubric and grade each submission once; the "
    "evidence paths become relative to the merged report's folder."
)


def add_parser(sub: Any) -> None:
    grade = sub.add_parser(
        "grade",
        help="grade student submissions task by task (or: grade merge REPORT.json...)",
        description="Grade SEED VPN lab submissions: each folder holds tun_client.py and "
        "tun_server.py (--lab tls: tls_client.py and tls_server.py), or a vpnsim.toml naming "
        "what to run. A folder of such folders grades them all. `vpnsim grade merge A.json "
        "B.json ...` joins shard reports instead (`vpnsim grade merge --help`).",
        add_help=False,  # -h below: `grade merge --help` is merge's help, not grade's
    )
    grade.add_argument(
        "-h", "--help", action=_GradeHelp, nargs=0, help="show this help message and exit"
    )
    grade.add_argument("paths", nargs="+", metavar="SUBMISSION", help="submission folders")
    grade.add_argument(
        "--lab", default=DEFAULT_LAB, choices=list(LABS),
        help="the SEED lab whose tasks to grade: tunnel (the VPN Tunneling lab, default) or "
        "tls (the TLS/SSL VPN lab)",
    )  # fmt: skip
    grade.add_argument("--jobs", "-j", type=int, default=1, help="submissions at once")
    _add_report_options(grade)
    grade.add_argument("--rubric", metavar="FILE", help="points per task (TOML)")
    grade.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
        help=f"seconds for one whole submission (default {DEFAULT_TIMEOUT:g})",
    )  # fmt: skip
    grade.add_argument("--memory", type=int, default=512, metavar="MIB", help="per submission side")
    grade.add_argument("--shard", metavar="I/N", help="grade only slice I of N (1-based)")
    grade.add_argument(
        "--requirements", metavar="FILE",
        help="a pip requirements file: what student programs may import besides vpnsim's "
        "grade extra (scapy), installed once into the student environment",
    )  # fmt: skip
    grade.add_argument(
        "--progress", choices=["auto", "bar", "lines"], default="auto",
        help="a live bar (terminal) or a line per submission (auto: bar on a terminal, not in CI)",
    )  # fmt: skip
    grade.set_defaults(run=run, owns_labs=True)


def _add_report_options(parser: argparse.ArgumentParser) -> None:
    """Where reports go: the same options for grading and for merging."""
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help="reports and evidence")
    parser.add_argument("--json", metavar="FILE", help="JSON report")
    parser.add_argument("--junit", metavar="FILE", help="JUnit XML report")
    parser.add_argument("--html", metavar="FILE", help="HTML report (class page)")


def merge_parser(prog: str) -> argparse.ArgumentParser:
    """`vpnsim grade merge`'s usage and options, for its help: the grade parser parses its
    command line (`merge` is its first SUBMISSION), so the options here are the ones it
    reads for a merge."""
    merge = argparse.ArgumentParser(prog=f"{prog} merge", description=MERGE_DESCRIPTION)
    merge.add_argument("reports", nargs="+", metavar="REPORT.json", help="shard JSON reports")
    _add_report_options(merge)
    return merge


class _GradeHelp(argparse.Action):
    """-h/--help: merge's help after `merge`, grade's otherwise."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        # argparse has consumed the positionals before the -h when it gets here.
        paths = getattr(namespace, "paths", None) or []
        if paths[:1] == ["merge"]:
            merge_parser(parser.prog).print_help()
        else:
            parser.print_help()
        parser.exit()


def run(args: argparse.Namespace) -> int:
    if args.paths[0] == "merge":
        return _merge(args, [Path(p) for p in args.paths[1:]])
    from vpnsim.features import preflight

    preflight()
    from vpnsim.grade.course import CourseError, CourseInterrupted, Shard, discover, grade_course
    from vpnsim.grade.environment import ensure_environment, find_environment
    from vpnsim.grade.grader import GradeOptions
    from vpnsim.grade.jail import JailLimits
    from vpnsim.grade.preflight import check_imports
    from vpnsim.grade.progress import ProgressDisplay
    from vpnsim.grade.rubric import load_rubric

    if args.jobs < 1:
        raise CourseError(f"--jobs {args.jobs}: at least 1")
    rubric = load_rubric(Path(args.rubric) if args.rubric else None, args.lab)
    shard = Shard.parse(args.shard) if args.shard else None
    paths = discover([Path(p) for p in args.paths])
    requirements = Path(args.requirements) if args.requirements else None
    if find_environment(requirements) is None:
        print("building the student environment (once; later runs reuse it)...", flush=True)
    environment = ensure_environment(requirements)
    # Every submission, not only this shard's: all shards of a course stop alike.
    check_imports(paths, environment, requirements)
    out, report_dir = _places(args)
    options = GradeOptions(
        rubric=rubric,
        artifacts_root=out / "artifacts",
        report_dir=report_dir,
        timeout=args.timeout,
        limits=JailLimits(memory_bytes=args.memory * 2**20),
        lab=args.lab,
    )
    count = len(shard.take(paths)) if shard else len(paths)
    live = {"auto": None, "bar": True, "lines": False}[args.progress]
    try:
        with ProgressDisplay(count, live=live, task_ids=lab_tasks(args.lab).ids) as display:
            report = grade_course(
                paths, options, jobs=args.jobs, shard=shard, listener=display,
                environment=environment,
            )  # fmt: skip
    except CourseInterrupted as stopped:
        return _interrupted(stopped, args, out, report_dir)
    written = _write(report, args, out, report_dir)
    _summary(report)
    print("reports: " + ", ".join(str(p) for p in written))
    return _exit_status(report)


def _interrupted(
    stopped: CourseInterrupted, args: argparse.Namespace, out: Path, report_dir: Path
) -> int:
    """The reports of what was graded before the signal, and one line on what is left."""
    written = _write(stopped.report, args, out, report_dir)
    _summary(stopped.report)
    print("reports (partial): " + ", ".join(str(p) for p in written))
    total = len(stopped.report.submissions)
    left = f"LEFT BEHIND: {'; '.join(stopped.left)}" if stopped.left else "nothing left behind"
    print(
        f"vpnsim grade: {stopped}: {stopped.graded} of {total} submission"
        f"{'s' if total != 1 else ''} graded, the others not; {left}",
        file=sys.stderr,
    )
    return stopped.exit_status


def _merge(args: argparse.Namespace, reports: list[Path]) -> int:
    from vpnsim.grade.report import merge_reports

    out, report_dir = _places(args)
    merged = merge_reports(reports, report_dir)
    written = _write(merged, args, out, report_dir)
    _summary(merged)
    print("reports: " + ", ".join(str(p) for p in written))
    return _exit_status(merged)


def _exit_status(report: GradeReport) -> int:
    """2 when the harness failed on a submission (after every other one was graded)."""
    failed = [sub.name for sub in report.submissions if sub.error]
    if not failed:
        return EXIT_OK
    print(
        f"vpnsim grade: the grader failed on {len(failed)} submission"
        f"{'s' if len(failed) != 1 else ''} ({', '.join(failed)}): not the students' fault, "
        "no verdicts given; the rows say what failed; grade them again",
        file=sys.stderr,
    )
    return EXIT_HARNESS


def _places(args: argparse.Namespace) -> tuple[Path, Path]:
    """OUT, and the folder the report's artifact paths are relative to (the JSON's)."""
    out = Path(args.out)
    return out, Path(args.json).parent if args.json else out


def _write(
    report: GradeReport, args: argparse.Namespace, out: Path, report_dir: Path
) -> list[Path]:
    from vpnsim.grade.html import write_html
    from vpnsim.grade.junit import write_junit

    json_path = Path(args.json) if args.json else None
    html_path = Path(args.html) if args.html else None
    junit_path = Path(args.junit) if args.junit else None
    if not (json_path or html_path or junit_path):
        json_path, html_path = out / "report.json", out / "index.html"
    written = []
    if json_path:
        report.write_json(json_path)
        written.append(json_path)
    if junit_path:
        write_junit(report, junit_path)
        written.append(junit_path)
    if html_path:
        write_html(report, html_path, report_dir)
        written.append(html_path)
    return written


def _summary(report: GradeReport) -> None:
    from vpnsim.grade.progress import marks, path_lines

    width = max([len(s.name) for s in report.submissions] + [10])
    for sub in report.submissions:
        if sub.error:
            print(f"{sub.name:<{width}}  ERROR  {sub.error}")
            continue
        print(f"{sub.name:<{width}}  {marks(sub.tasks)}  {sub.score:g}/{sub.max_score:g}")
        for line in path_lines(sub.tasks):
            print(line)
    sys.stdout.flush()
