"""Grade one submission: three fresh labs, every task, a verdict and evidence for each.

1. The student's client and server together ("pair"): task1-task7, large, robust.
2. The student's client with the reference server ("client_interop").
3. The reference client with the student's server ("server_interop").

The interop runs keep one broken side from hiding the other's work, and point a failing
task at the side to look at. Each lab is built for the run and removed after it, whatever
the student's programs did.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vpnsim.errors import HarnessError
from vpnsim.grade.environment import StudentEnvironment, ensure_environment
from vpnsim.grade.jail import JailLimits, limits_mechanism
from vpnsim.grade.observe import Observation, host_state
from vpnsim.grade.probing import PROBE_TIMEOUT
from vpnsim.grade.registry import CAPTURES, HOSTS, LOG, PROGRAMS, lab_tasks
from vpnsim.grade.report import SubmissionResult
from vpnsim.grade.rubric import Rubric
from vpnsim.grade.sides import Sides
from vpnsim.grade.submission import Submission, load_submission
from vpnsim.grade.tasks import Outcome, Verdict
from vpnsim.grade.trace import EPHEMERAL, Failed
from vpnsim.grade.tunnel_checks import Tunnel, lab_damage
from vpnsim.grade.tunnel_lab import TunnelRun, restarter
from vpnsim.grade.workcopy import WORK_ROOT, SubmissionTooLarge, folder_name, work_copy
from vpnsim.seed import builtin_scenario
from vpnsim.topology import Lab, build_lab
from vpnsim.traffic.errors import ProbeFailed
from vpnsim.traffic.probes import Probes

CONFINED_HOSTS = frozenset({"U", "server"})
BUILD_TIMEOUT = 60.0
Progress = Callable[[str, str, Verdict | None], None]  # submission name, task id, verdict


@dataclass(frozen=True)
class GradeOptions:
    rubric: Rubric
    artifacts_root: Path  # each submission's evidence goes in a folder of its own here
    report_dir: Path  # `artifacts` paths in the report are relative to this
    timeout: float = 120.0  # seconds for one whole submission
    limits: JailLimits = field(default_factory=JailLimits)
    environment: StudentEnvironment | None = None
    lab: str = "tunnel"  # which lab's tasks (vpnsim.grade.registry.LABS)


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
    kind = _Grading
    if options.lab == "tls":
        from vpnsim.grade.tls_grader import TlsGrading  # lazy: it builds on this module

        kind = TlsGrading
    grading = kind(submission, name, options, folder, progress or (lambda *a: None))
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
        limits=limits_mechanism(),
    )


class _Grading:
    # Whose links and routes a task's hosts.txt shows.
    STATE_HOSTS: tuple[str, ...] = ("U", "server", "V")

    def __init__(
        self,
        submission: Submission,
        name: str,
        options: GradeOptions,
        folder: Path,
        progress: Progress,
    ) -> None:
        self.submission = submission
        self.name = name
        self.options = options
        self.folder = folder
        self.progress = progress
        self.outcome = Outcome(lab=lab_tasks(options.lab))
        self.deadline = time.monotonic() + options.timeout
        self.token = secrets.token_hex(3)
        # Built once and cached: a grade_submission call without one gets the default.
        self.environment = options.environment or ensure_environment()

    def run(self) -> None:
        if self.submission.problem:
            for task in self.outcome.lab.ids:
                self._record(task, Verdict(False, f"cannot be graded: {self.submission.problem}"))
            return
        work = WORK_ROOT / folder_name(self.name, self.token)
        try:
            with work_copy(self.submission.path, work, self.options.limits.disk_bytes):
                self._runs(work)
        except SubmissionTooLarge as exc:
            for task in self.outcome.lab.ids:
                self._record(task, Verdict(False, f"cannot be graded: {exc}"))

    def _runs(self, work: Path) -> None:
        """The lab's runs, each in a fresh lab (a TLS grading has its own)."""
        self._pair(work)
        if len(self.outcome.verdicts) == len(self.outcome.lab.ids):  # the build failed
            return
        self._interop(work, "client_interop", student="client")
        self._interop(work, "server_interop", student="server")
        self._hint()

    # -- the runs -------------------------------------------------------------------------

    def _pair(self, work: Path) -> None:
        lab_tasks = self.outcome.lab
        with self._run("pair", "p", work) as (lab, observe, probes, sides):
            run = TunnelRun(lab, observe, probes, sides)
            if self.submission.build:
                problem = sides.build(self.submission.build, BUILD_TIMEOUT)
                if problem is not None:
                    for task in lab_tasks.ids:
                        self._record(task, Verdict(False, problem))
                    return
            first, *rest = lab_tasks.run("pair").tasks  # task1: before any program starts
            self._check(first, run, run.log)
            server = sides.start("server", student=True)
            client = sides.start("client", student=True)
            run.tunnel = Tunnel(
                lab, probes, observe, client, server, restarter(sides, lambda: run.ends)
            )
            for task in rest:
                if task == "task3":  # the server must be up before anything reaches it
                    run.server_problem = run.ends.wait_server_up() if self._reached(task) else None
                self._check(task, run, run.ends.log, run.ends)

    def _check(
        self, task: str, run: TunnelRun, log: list[str], tunnel: Tunnel | None = None
    ) -> None:
        check = self.outcome.lab.entry(task).check
        self._attempt(task, run.lab, run.observe, log, lambda: check(run), tunnel)

    def _interop(self, work: Path, task: str, student: str) -> None:
        blocker = self.outcome.blocker(task)
        if blocker is not None:
            self._record(task, Verdict(None, blocker))
            return
        with self._run(task, task[0], work) as (lab, observe, probes, sides):
            server = sides.start("server", student=student == "server")
            client = sides.start("client", student=student == "client")
            run = TunnelRun(lab, observe, probes, sides)
            run.tunnel = Tunnel(lab, probes, observe, client, server, lambda: client)
            self._check(task, run, run.ends.log, run.ends)

    def _hint(self) -> None:
        """Point a failing end-to-end task at the side that the interop runs blame."""
        client_ok = self.outcome.verdicts["client_interop"].passed
        server_ok = self.outcome.verdicts["server_interop"].passed
        if client_ok is True and server_ok is False:
            hint = "your client works with the reference server: look at your server"
        elif server_ok is True and client_ok is False:
            hint = "your server works with the reference client: look at your client"
        else:
            return
        for task in ("task4", "task5"):
            verdict = self.outcome.verdicts.get(task)
            if verdict is not None and verdict.passed is False:
                hinted = dataclasses.replace(verdict, reason=f"{verdict.reason} ({hint})")
                self.outcome.record(task, hinted)

    # -- plumbing -------------------------------------------------------------------------

    def _limits(self) -> JailLimits:
        left = max(1.0, self.deadline - time.monotonic())
        # The grader stops them first; this is the backstop.
        return dataclasses.replace(self.options.limits, wall_seconds=left + 5.0)

    @contextlib.contextmanager
    def _run(
        self, run: str, letter: str, work: Path
    ) -> Iterator[tuple[Lab, Observation, Probes, Sides]]:
        """A fresh lab with its links captured, probes, and the submission's ends to start;
        all stopped and removed after, whatever the programs did."""
        with self._lab(run, letter) as lab:
            observe = Observation(lab)
            probes = Probes(lab, None, PROBE_TIMEOUT)
            sides = Sides(
                lab, work, self.submission.client, self.submission.server, self._limits(),
                self.environment,
            )  # fmt: skip
            try:
                yield lab, observe, probes, sides
            finally:
                sides.cleanup()
                probes.close()
                observe.stop()

    @contextlib.contextmanager
    def _lab(self, run: str, letter: str) -> Iterator[Lab]:
        lab = build_lab(
            builtin_scenario("seed-tunnel"),
            name=f"gr{self.token}{letter}",
            log_dir=self.folder / run / "logs",
            owner_pid=os.getpid(),  # `vpnsim clean` elsewhere must not pull it from under us
            confined=CONFINED_HOSTS,  # where student programs run as root
        )
        self.run_name = run
        try:
            yield lab
        finally:
            lab.teardown()

    def _reached(self, task: str) -> bool:
        return self.outcome.blocker(task) is None

    def _attempt(
        self,
        task: str,
        lab: Lab,
        observe: Observation,
        log: list[str],
        check: Callable[[], str],
        tunnel: Tunnel | None = None,  # its last judged probe is the task's path
    ) -> None:
        blocker = self.outcome.blocker(task)
        if blocker is None and time.monotonic() > self.deadline:
            blocker = f"the submission's time limit ({self.options.timeout:g} s) ran out"
        if blocker is not None:
            self._record(task, Verdict(None, blocker))
            return
        log.clear()
        if tunnel is not None:
            tunnel.last_judged = None
        since, start = time.time(), time.monotonic()
        try:
            reason, passed = check(), True
        except Failed as exc:
            reason, passed = exc.reason, False
        except (ProbeFailed, HarnessError, OSError) as exc:
            reason, passed = f"the check could not run: {exc}", False
        seconds = time.monotonic() - start
        if not passed and (damage := lab_damage(lab)) is not None:
            reason = f"{reason} (the lab's interfaces were deleted during the run: {damage})"
        reason = steady(reason, lab.name, self.token)
        evidence = self._evidence(task, lab, observe, log, since)
        path = tunnel.packet_path() if tunnel is not None else None
        if path is not None and path.stop is not None:  # the task's words, beside the stop
            path = dataclasses.replace(path, reason=reason)
        self._record(task, Verdict(passed, reason, tuple(log), evidence, seconds, path))

    def _evidence(
        self, task: str, lab: Lab, observe: Observation, log: list[str], since: float
    ) -> tuple[str, ...]:
        """What the task's registry entry says it keeps (see `vpnsim.grade.registry`)."""
        keeps = self.outcome.lab.entry(task).evidence
        folder = self.folder / self.run_name / task
        folder.mkdir(parents=True, exist_ok=True)
        files: list[Path] = []
        if CAPTURES in keeps:
            with contextlib.suppress(HarnessError):  # a capture that cannot catch up: as it is
                observe.sync()
            files += observe.save(folder, since - 0.05, time.time())
        if HOSTS in keeps:
            state = folder / "hosts.txt"
            state.write_text("\n".join(host_state(lab, self.STATE_HOSTS)) + "\n")
            files.append(state)
        if LOG in keeps:
            (folder / "log.txt").write_text("\n".join(log) + "\n")
            files.append(folder / "log.txt")
        if PROGRAMS in keeps:
            files += sorted((self.folder / self.run_name / "logs").glob("*"))
        return tuple(str(path.relative_to(self.folder)) for path in files)

    def _record(self, task: str, verdict: Verdict) -> None:
        self.outcome.record(task, verdict)
        self.progress(self.name, task, verdict)


def steady(reason: str, lab: str, token: str) -> str:
    """The reason without what changes from run to run, so that two gradings of a class
    differ only where a verdict did: the lab's name (in namespace and jail names), the work
    copy's folder, PIDs, the jail's wall time limit (the time left), object addresses and
    ephemeral ports (in a program's own error messages)."""
    reason = reason.replace(lab, "<lab>")
    # The work copy's folder: <name>-<token>.<grader's pid> (workcopy.folder_name).
    folder = rf"{re.escape(str(WORK_ROOT))}/[^/\s'\"]*{re.escape(token)}[^/\s'\"]*/?"
    reason = re.sub(folder, "", reason)
    reason = re.sub(r"\bpid \d+", "pid N", reason)
    reason = re.sub(r"\bwall time limit of [\d.]+ s\b", "wall time limit", reason)
    reason = re.sub(r"\bat 0x[0-9a-f]{6,}\b", "at 0x…", reason)
    return EPHEMERAL_PORT.sub(_port, reason)


# An address with a port: "10.9.0.5:52752", "('10.9.0.5', 52752)".
EPHEMERAL_PORT = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3}(?:['\"]?, |:))(\d{5})\b")


def _port(match: re.Match[str]) -> str:
    port = int(match.group(2))
    return match.group(1) + ("…" if EPHEMERAL[0] <= port <= EPHEMERAL[1] else match.group(2))
