"""`vpnsim grade` stopped midway leaves nothing behind: no lab, process, jail or work copy.

Real runs of the command on the corpus, stopped the ways it is stopped in practice: SIGTERM
to the main process alone (CI runners, `timeout`, systemd, Kubernetes), Ctrl-C (SIGINT to
the whole process group), and one worker killed outright (SIGKILL, as the OOM killer does),
after which the parent removes what the worker could not. Each waits until a jailed student
program of the run is running (the grading is mid-way, with labs, jails and work copies),
never for a time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from vpnsim.grade.workcopy import copies_of
from vpnsim.leaks import jail_cgroups, labs_logging_under, leftovers
from vpnsim.net import namespace
from vpnsim.topology import NS_PREFIX, owner_of

pytestmark = pytest.mark.grade

CORPUS = Path(__file__).parents[1] / "data" / "submissions"
WAIT = 300.0  # seconds for the grading to reach a jail: a backstop on a loaded machine only
JAIL = "vpnsim.grade.jail"  # in the command line of every jailed program's supervisor


class Grading:
    """`vpnsim grade --jobs 2` on `names` of the corpus, in a process group of its own."""

    def __init__(self, tmp_path: Path, names: tuple[str, ...]) -> None:
        course = tmp_path / "course"
        for name in names:
            shutil.copytree(CORPUS / name, course / name)
        self.out = tmp_path / "out"
        self.stderr = tmp_path / "stderr.txt"
        command = [
            sys.executable, "-m", "vpnsim", "grade", course, "--jobs", "2", "--out", self.out,
            "--progress", "lines", "--timeout", "60",
        ]  # fmt: skip
        with self.stderr.open("w") as stderr:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True
            )
        self.labs: set[str] = set()  # every lab of the run seen while it ran
        self.graders: set[int] = {self.process.pid}  # the processes that own its labs

    def wait_for_jail(self, submission: str | None = None) -> str:
        """Wait until a jailed student program runs in a lab of the run (of `submission`'s,
        if given); returns that lab."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.stderr.read_text()
            for lab in self._seen(submission):
                pids = namespace.pids_in(namespace.list_names(f"{NS_PREFIX}{lab}."))
                if any(JAIL in _cmdline(pid) for pid in pids):
                    return lab
            time.sleep(0.01)
        raise AssertionError(f"no jail of the run within {WAIT:g} s")

    def wait_for_lab(self) -> str:
        """Wait until the run's first lab is being built; returns it."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.stderr.read_text()
            labs = self._seen(None)
            if labs:
                return labs[0]
            time.sleep(0.001)
        raise AssertionError(f"no lab of the run within {WAIT:g} s")

    def _seen(self, submission: str | None) -> list[str]:
        under = self.out / "artifacts" / (submission or "")
        labs = labs_logging_under(under)
        self.labs.update(labs)
        self.graders.update(owner for lab in labs if (owner := owner_of(lab)) is not None)
        return labs

    def finish(self) -> tuple[int, str, str]:
        stdout, _ = self.process.communicate(timeout=WAIT)
        return self.process.returncode, stdout, self.stderr.read_text()

    def left(self) -> dict[str, list[str]]:
        """What is still on the machine of the run: its labs (namespaces, processes, state,
        jail cgroups), its graders' work copies, any lab logging under its folder, and its
        graders (the command and its workers) if they still run."""
        left = leftovers(sorted(self.labs))
        late = labs_logging_under(self.out)  # built after the last look
        if late:
            left["labs logging under the run"] = late
        copies = copies_of(self.graders)
        if copies:
            left["work copies"] = [str(copy) for copy in copies]
        running = [pid for pid in self.graders if _running(pid)]
        if running:
            left["graders"] = [f"pid {pid}" for pid in running]
        return left


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _rows(out: Path) -> dict[str, dict[str, object]]:
    report = json.loads((out / "report.json").read_text())
    return {sub["name"]: sub for sub in report["submissions"]}


@pytest.mark.parametrize(
    ("stop", "name", "status"),
    [
        (lambda pid: os.kill(pid, signal.SIGTERM), "SIGTERM", 143),  # to the command alone
        (lambda pid: os.killpg(pid, signal.SIGINT), "SIGINT", 130),  # Ctrl-C: the group
    ],
    ids=["sigterm", "ctrl-c"],
)
def test_a_grading_stopped_midway_leaves_nothing_and_says_so(
    tmp_path: Path, stop: Callable[[int], None], name: str, status: int
) -> None:
    # hostile_hang's client spins until its time runs out: it is being graded when stopped.
    grading = Grading(tmp_path, ("correct", "hostile_hang"))
    grading.wait_for_jail("correct")  # both workers are grading (none is still starting)
    lab = grading.wait_for_jail("hostile_hang")
    assert grading.left(), "the run's lab, jail and work copy are there while it grades"
    stop(grading.process.pid)
    returncode, stdout, stderr = grading.finish()

    assert returncode == status, stderr
    assert grading.left() == {}
    assert lab in grading.labs and len(grading.graders) >= 2  # the command and a worker
    rows = _rows(grading.out)
    assert sorted(rows) == ["correct", "hostile_hang"]
    assert rows["hostile_hang"]["error"] == f"not graded (interrupted by {name})"
    assert rows["hostile_hang"]["tasks"] == {}
    graded = [row for row in rows.values() if "error" not in row]
    assert all(len(row["tasks"]) == 11 for row in graded)  # type: ignore[arg-type]
    assert stderr.endswith(
        f"vpnsim grade: interrupted by {name}: {len(graded)} of 2 submissions graded, the "
        "others not; nothing left behind\n"
    )
    assert "Traceback" not in stderr
    assert f"hostile_hang  ERROR  not graded (interrupted by {name})\n" in stdout
    assert stdout.endswith(
        f"reports (partial): {grading.out}/report.json, {grading.out}/index.html\n"
    )


def test_a_grading_stopped_while_it_builds_its_first_lab_leaves_nothing(tmp_path: Path) -> None:
    grading = Grading(tmp_path, ("correct", "hostile_hang"))
    grading.wait_for_lab()  # its state is written before its first namespace is made
    os.kill(grading.process.pid, signal.SIGTERM)
    returncode, _, stderr = grading.finish()
    assert returncode == 143, stderr
    assert grading.left() == {}
    assert stderr.endswith(
        "vpnsim grade: interrupted by SIGTERM: 0 of 2 submissions graded, the others not; "
        "nothing left behind\n"
    )


def test_a_worker_killed_outright_leaves_nothing_once_the_grading_ends(tmp_path: Path) -> None:
    grading = Grading(tmp_path, ("correct", "syntax_error"))
    lab = grading.wait_for_jail("correct")
    worker = owner_of(lab)
    assert worker is not None and worker != grading.process.pid
    os.kill(worker, signal.SIGKILL)  # its labs, jails and work copy stay: the parent's to remove
    returncode, stdout, stderr = grading.finish()

    assert returncode == 2, stderr  # the harness failed on it: a row says so, regrade it
    assert grading.left() == {}
    error = "the grader failed (not the submission): its worker process died (killed?)"
    assert _rows(grading.out)["correct"]["error"] == error
    assert re.search(rf"^correct +ERROR  {re.escape(error)}$", stdout, re.MULTILINE)


def test_jail_cgroups_of_a_lab_are_found_by_its_name(tmp_path: Path) -> None:
    """`leftovers` looks for the cgroups a lab's jails leave (named <lab>-<what>) under
    cgroup v2 and every v1 hierarchy, and for no other lab's."""
    for folder in ("vpnsim/gr1p-client0", "memory/vpnsim/gr1p-build", "memory/vpnsim/gr11p-x"):
        (tmp_path / folder).mkdir(parents=True)
    assert jail_cgroups("gr1p", tmp_path) == [
        tmp_path / "memory/vpnsim/gr1p-build", tmp_path / "vpnsim/gr1p-client0"
    ]  # fmt: skip
