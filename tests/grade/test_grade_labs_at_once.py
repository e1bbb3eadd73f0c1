"""A submission's three labs at once give the verdicts and reasons of one after another.

The corpus (test_grade_corpus.py) is graded with the labs at once where cores allow; here
the same submissions are graded both ways and compared task by task: a passing one, one
whose interop run is dropped (its client makes no TUN: client_interop is not reached), one
whose server crashes, and one that fills its work copy (each run has a copy of its own).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vpnsim.grade.course import grade_course
from vpnsim.grade.grader import GradeOptions, labs_at_once
from vpnsim.grade.rubric import load_rubric

pytestmark = pytest.mark.grade

CORPUS = Path(__file__).parents[1] / "data" / "submissions"
NAMES = ("client_no_tun", "correct", "hostile_fills_disk_and_log", "server_crashes")


def test_labs_at_once_give_the_verdicts_of_one_after_another(tmp_path: Path) -> None:
    folders = []
    for name in NAMES:
        shutil.copytree(CORPUS / name, tmp_path / "class" / name)
        folders.append(tmp_path / "class" / name)
    graded = {}
    for labs in (1, 3):
        out = tmp_path / f"labs{labs}"
        options = GradeOptions(load_rubric(), out / "artifacts", out, timeout=60, labs=labs)
        report = grade_course(folders, options, jobs=1)
        graded[labs] = {
            sub.name: {task: (v.passed, v.reason) for task, v in sub.tasks.items()}
            for sub in report.submissions
        }
        for sub in report.submissions:  # every run left its evidence
            assert sorted(p.name for p in (out / sub.artifacts).iterdir()) == [
                "client_interop", "pair", "server_interop"
            ] or sub.name == "client_no_tun", sub.name  # fmt: skip
    assert sorted(graded[1]) == sorted(NAMES)
    assert graded[3] == graded[1]
    dropped = graded[3]["client_no_tun"]["client_interop"]
    assert dropped[0] is None and dropped[1].startswith("needs task2 (TUN interface), which failed")
    assert labs_at_once(1, cores=2) == 2  # what the corpus gets on this project's CI machine
