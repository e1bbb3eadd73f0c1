"""`vpnsim grade` on a class whose programs import a module the student environment lacks:
the harness's problem, said once with what to install, exit 2, and nothing graded (no lab,
no work copy, no report)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from vpnsim.grade.environment import ensure_environment
from vpnsim.net import namespace

pytestmark = pytest.mark.lab

WORK_ROOT = Path("/var/lib/vpnsim/grade")
CLIENT = """\
#!/usr/bin/env python3
import fcntl, os, struct
from scapy.all import *
import numpy as np
"""
SERVER = """\
import os, select
from scapy.all import *
"""


class Watcher:
    """What appears, while a command runs, where a grading run would leave traces: labs in
    the command's private lab state folder (VPNSIM_STATE_DIR) and their namespaces, and the
    grader's work copies of the submission named `prefix`."""

    def __init__(self, state: Path, prefix: str) -> None:
        self.state, self.prefix = state, prefix
        self.labs: set[str] = set()
        self.namespaces: set[str] = set()
        self.work: set[str] = set()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self.done.is_set():
            if self.state.exists():
                self.labs.update(p.name for p in self.state.iterdir())
            self.namespaces.update(
                ns for ns in namespace.list_names("vpnsim.")
                if any(ns.startswith(f"vpnsim.{lab}.") for lab in self.labs)
            )  # fmt: skip
            if WORK_ROOT.exists():
                self.work.update(p.name for p in WORK_ROOT.glob(f"{self.prefix}*"))
            time.sleep(0.01)

    def __enter__(self) -> Watcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def test_a_module_the_environment_lacks_stops_grading_before_any_lab(tmp_path: Path) -> None:
    environment = ensure_environment()  # built (or found) first: the command builds nothing
    name = f"preflight-{secrets.token_hex(3)}"
    alice = tmp_path / "class" / name
    alice.mkdir(parents=True)
    (alice / "tun_client.py").write_text(CLIENT)
    (alice / "tun_server.py").write_text(SERVER)
    out, state = tmp_path / "out", tmp_path / "state"
    with Watcher(state, name) as watcher:
        done = subprocess.run(
            [sys.executable, "-m", "vpnsim", "grade", str(tmp_path / "class"), "--out", str(out),
             "--progress", "lines"],
            capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, "VPNSIM_STATE_DIR": str(state)},
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr == (
        "vpnsim: error: submissions import modules that the student environment lacks; "
        "nothing was graded:\n"
        f"  numpy: imported by {name} (tun_client.py:4)\n"
        f"student programs run {environment.prefix}/bin/python3, which holds only what the "
        "course declares; to install them there:\n"
        "  numpy: list numpy in a requirements file (a line each) and grade with "
        "--requirements FILE\n"
    )
    assert (watcher.labs, watcher.namespaces, watcher.work) == (set(), set(), set())
    assert not state.exists()  # no lab was built: its state folder was never made
    assert not out.exists()  # no report, no artifacts


def test_the_courses_requirements_file_is_named_in_the_advice(tmp_path: Path) -> None:
    """With --requirements, the advice says to add the module to that file."""
    course = tmp_path / "course.txt"
    course.write_text("scapy>=2.5\n")  # the same environment as the default, already built
    environment = ensure_environment(course)
    assert environment == ensure_environment()
    alice = tmp_path / "class" / "alice"
    alice.mkdir(parents=True)
    (alice / "tun_client.py").write_text("import cv2\n")
    (alice / "tun_server.py").write_text(SERVER)
    done = subprocess.run(
        [sys.executable, "-m", "vpnsim", "grade", str(alice), "--out", str(tmp_path / "out"),
         "--requirements", str(course)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines()[-1] == (
        f"  cv2: add opencv-python to {course} (a line each) and grade again with "
        f"--requirements {course}"
    )
    assert not (tmp_path / "out").exists()
