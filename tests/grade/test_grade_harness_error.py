"""A harness fault on one submission of a real course: an error row, the others graded,
exit status 2, every report showing the row.

The fault is real, not a double: the submission's artifacts folder cannot be made (a file is
in its place), so `grade_submission` raises before any lab. The other submission is graded
for real in the same `vpnsim grade --jobs 2` run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from vpnsim.grade.tasks import TASK_IDS

pytestmark = pytest.mark.grade

CORPUS = Path(__file__).parents[1] / "data" / "submissions"


def test_a_harness_fault_on_one_submission_of_a_real_course(tmp_path: Path) -> None:
    course = tmp_path / "course"
    for name in ("syntax_error", "wrong_port"):
        shutil.copytree(CORPUS / name, course / name)
    out = tmp_path / "out"
    blocker = out / "artifacts" / "wrong_port"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way\n")
    command = [
        sys.executable, "-m", "vpnsim", "grade", course, "--jobs", "2", "--out", out,
        "--junit", out / "junit.xml", "--json", out / "report.json",
        "--html", out / "index.html", "--progress", "lines", "--timeout", "60",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 2, done.stderr
    error = (
        f"the grader failed (not the submission): FileExistsError: [Errno 17] File exists: "
        f"'{blocker}' (at vpnsim/grade/grade_one.py:"
    )
    report = json.loads((out / "report.json").read_text())
    rows = {sub["name"]: sub for sub in report["submissions"]}
    assert sorted(rows) == ["syntax_error", "wrong_port"]
    failed = rows["wrong_port"]
    assert failed["error"].startswith(error) and failed["error"].endswith(" in grade_submission)")
    assert failed["tasks"] == {}
    graded = rows["syntax_error"]
    assert "error" not in graded
    assert sorted(graded["tasks"]) == sorted(TASK_IDS)
    assert graded["tasks"]["task1"]["passed"] is True
    assert graded["tasks"]["task2"]["passed"] is False
    assert "SyntaxError" in graded["tasks"]["task2"]["reason"]

    assert f"wrong_port    ERROR  {failed['error']}\n" in done.stdout
    assert f"graded 2/2 wrong_port: ERROR {failed['error']}\n" in done.stderr or (
        f"graded 1/2 wrong_port: ERROR {failed['error']}\n" in done.stderr
    )
    assert done.stderr.endswith(
        "vpnsim grade: the grader failed on 1 submission (wrong_port): not the students' fault, "
        "no verdicts given; the rows say what failed; grade them again\n"
    )
    suites = ET.parse(out / "junit.xml").getroot()
    assert suites.get("errors") == "1"
    assert suites.find("testsuite[@name='wrong_port']/testcase/error") is not None
    assert '<td class="score error">error</td>' in (out / "index.html").read_text()
