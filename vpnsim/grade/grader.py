"""Grade one submission: three fresh labs, every task, a verdict and evidence for each.

1. The student's client and server together ("pair"): task1-task7, large, robust.
2. The student's client with the reference server ("client_interop").
3. The reference client with the student's server ("server_interop").

The interop runs keep one broken side from hiding the other's work, and point a failing
task at the side to look at. Each lab is built for the run and removed after it, whatever
the student's programs did.

Each interop run gets a fresh work copy of the submission as built (copied before the pair
run starts the programs), so no run sees what another's programs left. Where cores allow
(`labs_at_once`: the machine's cores over --jobs), the interop runs go beside the pair run,
started as soon as the build is done. Their verdicts are then kept only if the pair run's
verdicts let them be reached, and recorded after the pair's, in the same order: the
verdicts are those of running the three labs one after another.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from vpnsim.errors import HarnessError
from vpnsim.grade.bandwidth import install_caps, save_caps
from vpnsim.grade.environment import StudentEnvironment, ensure_environment
from vpnsim.grade.jail import JailLimits
from vpnsim.grade.observe import Observation, host_state
from vpnsim.grade.probing import PROBE_TIMEOUT
from vpnsim.grade.registry import CAPTURES, HOSTS, LOG, PROGRAMS, lab_tasks
from vpnsim.grade.rubric import Rubric
from vpnsim.grade.sides import Sides
from vpnsim.grade.submission import Submission
from vpnsim.grade.tasks import Outcome, Verdict
from vpnsim.grade.trace import EPHEMERAL, Failed
from vpnsim.grade.tunnel_checks import Tunnel, lab_damage
from vpnsim.grade.tunnel_lab import TunnelRun, restarter
from vpnsim.grade.workcopy import WORK_ROOT, SubmissionTooLarge, folder_name, work_copy
from vpnsim.model import Scenario
from vpnsim.scenario.bringup import bring_up
from vpnsim.topology import Lab
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
    # How many of a submission's three labs run at once (1: one after another); None: as
    # the machine's cores allow for one submission at a time (`labs_at_once(1)`).
    labs: int | None = None
    lab: str = "tunnel"  # which lab's tasks (vpnsim.grade.registry.LABS)


INTEROPS = (("client_interop", "client"), ("server_interop", "server"))  # task, student side


def labs_at_once(jobs: int, cores: int | None = None) -> int:
    """How many of one submission's labs may run at once when `jobs` submissions are graded
    at a time: a core each, at most the three there are, at least one."""
    return max(1, min(len(INTEROPS) + 1, (cores or os.cpu_count() or 1) // max(1, jobs)))


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
        self.caps_text = ""  # how the labs' bandwidth was capped (bandwidth.Caps.describe)
        self.run_names: dict[str, str] = {}  # lab name -> its run ("pair", ...)
        self.labs = options.labs or labs_at_once(1)
        # The lab each run builds, and its hosts where student programs run as root.
        self.scenario: str | Scenario = "seed-tunnel"
        self.confined = CONFINED_HOSTS
        # Built once and cached: a grade_submission call without one gets the default.
        self.environment = options.environment or ensure_environment()

    def run(self) -> None:
        if self.submission.problem:
            for task in self.outcome.lab.ids:
                self._record(task, Verdict(False, f"cannot be graded: {self.submission.problem}"))
            return
        work = WORK_ROOT / folder_name(self.name, self.token)
        try:
            with (
                work_copy(self.submission.path, work, self.options.limits.disk_bytes),
                contextlib.ExitStack() as stack,
            ):
                self._runs(work, stack)
        except SubmissionTooLarge as exc:
            for task in self.outcome.lab.ids:
                self._record(task, Verdict(False, f"cannot be graded: {exc}"))

    def _runs(self, work: Path, stack: contextlib.ExitStack) -> None:
        """The lab's runs, each in a fresh lab (a TLS grading has its own)."""
        interops = _Interops(self, stack)
        self._pair(work, built=interops.start)
        if len(self.outcome.verdicts) == len(self.outcome.lab.ids):  # the build failed
            return
        interops.finish()
        self._hint()

    # -- the runs -------------------------------------------------------------------------

    def _pair(self, work: Path, built: Callable[[Path], None]) -> None:
        lab_tasks = self.outcome.lab
        with self._run("pair", "p", work) as (lab, observe, probes, sides):
            run = TunnelRun(lab, observe, probes, sides)
            if self.submission.build:
                problem = sides.build(self.submission.build, BUILD_TIMEOUT)
                if problem is not None:
                    for task in lab_tasks.ids:
                        self._record(task, Verdict(False, problem))
                    return
            built(work)
            first, *rest = lab_tasks.run("pair").tasks  # task1: before any program starts
            self._attempt(first, lab, observe, run.log, self._bound(first, run))
            server = sides.start("server", student=True)
            client = sides.start("client", student=True)
            run.tunnel = Tunnel(
                lab, probes, observe, client, server, restarter(sides, lambda: run.ends)
            )
            for task in rest:
                if task == "task3":  # the server must be up before anything reaches it
                    run.server_problem = run.ends.wait_server_up() if self._reached(task) else None
                self._attempt(task, lab, observe, run.ends.log, self._bound(task, run), run.ends)

    def _bound(self, task: str, run: object) -> Callable[[], str]:
        """The registry's check of `task`, for `run` (its lab's run context)."""
        check = self.outcome.lab.entry(task).check
        return lambda: check(run)

    def _interop(self, work: Path, task: str, student: str) -> Verdict:
        """The interop run `task` with the student's `student` side, judged whatever the
        pair run's verdicts (`_Interops` keeps it only where they let it be reached)."""
        with self._run(task, task[0], work) as (lab, observe, probes, sides):
            server = sides.start("server", student=student == "server")
            client = sides.start("client", student=student == "client")
            run = TunnelRun(lab, observe, probes, sides)
            run.tunnel = Tunnel(lab, probes, observe, client, server, lambda: client)
            return self._judged(task, lab, observe, run.ends.log, self._bound(task, run), run.ends)

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
        lab = bring_up(
            self.scenario,
            name=f"gr{self.token}{letter}",
            log_dir=self.folder / run / "logs",
            owner_pid=os.getpid(),  # `vpnsim clean` elsewhere must not pull it from under us
            confined=self.confined,  # where student programs run as root
        ).lab
        self.run_names[lab.name] = run
        try:
            self.caps_text = install_caps(lab).describe()
            yield lab
            save_caps(lab, self.folder / run / "bandwidth.json")  # evidence: what a flood lost
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
        if blocker is not None:
            self._record(task, Verdict(None, blocker))
            return
        self._record(task, self._judged(task, lab, observe, log, check, tunnel))

    def _judged(
        self,
        task: str,
        lab: Lab,
        observe: Observation,
        log: list[str],
        check: Callable[[], str],
        tunnel: Tunnel | None = None,  # its last judged probe is the task's path
    ) -> Verdict:
        """`check` run and judged, with its evidence (no prerequisite looked at)."""
        if time.monotonic() > self.deadline:
            return Verdict(
                None, f"the submission's time limit ({self.options.timeout:g} s) ran out"
            )
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
        return Verdict(passed, reason, tuple(log), evidence, seconds, path)

    def _evidence(
        self, task: str, lab: Lab, observe: Observation, log: list[str], since: float
    ) -> tuple[str, ...]:
        """What the task's registry entry says it keeps (see `vpnsim.grade.registry`)."""
        keeps = self.outcome.lab.entry(task).evidence
        run = self.run_names[lab.name]
        folder = self.folder / run / task
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
            files += sorted((self.folder / run / "logs").glob("*"))
        return tuple(str(path.relative_to(self.folder)) for path in files)

    def _record(self, task: str, verdict: Verdict) -> None:
        self.outcome.record(task, verdict)
        self.progress(self.name, task, verdict)


class _Interops:
    """The two interop runs of a submission, each on a work copy of its own made once the
    build is done: beside the pair run when `labs` allow (threads: the runs mostly wait on
    their programs and packets), else after it; recorded after the pair's verdicts."""

    def __init__(self, grading: _Grading, stack: contextlib.ExitStack) -> None:
        self.grading = grading
        self.stack = stack
        self.copies: dict[str, Path] = {}
        self.running: dict[str, Future[Verdict]] = {}

    def start(self, built: Path) -> None:
        """Copy the built submission for each run; start them if cores allow."""
        grading = self.grading
        for task, _ in INTEROPS:
            where = WORK_ROOT / folder_name(grading.name, f"{grading.token}{task[0]}")
            self.copies[task] = self.stack.enter_context(
                work_copy(built, where, grading.options.limits.disk_bytes)
            )
        if grading.labs < 2:
            return
        # Entered after the copies, so it is shut down (waited for) before they are removed.
        pool = self.stack.enter_context(ThreadPoolExecutor(min(len(INTEROPS), grading.labs - 1)))
        for task, student in INTEROPS:
            self.running[task] = pool.submit(grading._interop, self.copies[task], task, student)

    def finish(self) -> None:
        """Record both interop verdicts, in order: not reached where the pair run's verdicts
        say so (a run made beside it is then dropped), else the run's."""
        grading = self.grading
        for task, student in INTEROPS:
            blocker = grading.outcome.blocker(task)
            running = self.running.get(task)
            if blocker is not None:
                if running is not None:  # dropped (one after another, it would not have run):
                    with contextlib.suppress(Exception):  # only its lab's removal waited for
                        running.result()
                grading._record(task, Verdict(None, blocker))
            elif running is not None:
                grading._record(task, running.result())
            else:
                grading._record(task, grading._interop(self.copies[task], task, student))


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
