"""Grading a course: shard specs, the round-robin slice, finding submissions, unique names."""

from __future__ import annotations

import io
import os
import random
import time
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path

import pytest

from vpnsim.errors import UsageError
from vpnsim.grade import cli as grade_cli
from vpnsim.grade.course import (
    HARNESS_ERROR,
    TRACEBACK_FILE,
    CourseError,
    Event,
    Shard,
    discover,
    grade_course,
    is_submission,
    unique_names,
)
from vpnsim.grade.environment import StudentEnvironment
from vpnsim.grade.grader import GradeOptions, Progress, labs_at_once
from vpnsim.grade.html import write_html
from vpnsim.grade.junit import write_junit
from vpnsim.grade.progress import ProgressDisplay
from vpnsim.grade.report import SubmissionResult, read_report
from vpnsim.grade.rubric import load_rubric
from vpnsim.grade.submission import Submission
from vpnsim.grade.tasks import TASK_IDS, Verdict


@pytest.mark.parametrize(
    ("text", "index", "count"),
    [("1/4", 1, 4), ("4/4", 4, 4), ("1/1", 1, 1), ("12/40", 12, 40)],
)
def test_shard_parse(text: str, index: int, count: int) -> None:
    shard = Shard.parse(text)
    assert shard == Shard(index, count)
    assert str(shard) == f"{index}/{count}"


@pytest.mark.parametrize("text", ["0/4", "5/4", "-1/4", "1/0", "0/0", "2/1"])
def test_shard_parse_out_of_range(text: str) -> None:
    with pytest.raises(CourseError) as info:
        Shard.parse(text)
    assert str(info.value) == f"--shard {text}: expected I/N with 1 <= I <= N"


@pytest.mark.parametrize("text", ["x", "1-4", "", "4", "/4", "1/", "a/b", "1/4/5", "1.0/4"])
def test_shard_parse_not_i_over_n(text: str) -> None:
    with pytest.raises(CourseError) as info:
        Shard.parse(text)
    assert str(info.value) == f"--shard {text}: expected I/N, e.g. 1/4"


def test_course_error_is_a_usage_and_value_error() -> None:
    # A course folder or file the user gave: exit 2 with the file named, never a finding.
    assert issubclass(CourseError, UsageError)
    assert issubclass(CourseError, ValueError)


def _paths(n: int) -> list[Path]:
    return [Path(f"/course/student{i:03d}") for i in range(n)]


def test_shard_take_round_robin_exact() -> None:
    paths = [Path(f"/c/{c}") for c in "abcdefg"]
    assert Shard(1, 3).take(paths) == [Path("/c/a"), Path("/c/d"), Path("/c/g")]
    assert Shard(2, 3).take(paths) == [Path("/c/b"), Path("/c/e")]
    assert Shard(3, 3).take(paths) == [Path("/c/c"), Path("/c/f")]
    assert Shard(1, 1).take(paths) == paths


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 10, 33])
@pytest.mark.parametrize("count", [1, 2, 3, 4, 8, 50])
def test_shard_take_partitions(n: int, count: int) -> None:
    paths = _paths(n)
    slices = [Shard(i, count).take(paths) for i in range(1, count + 1)]
    union = [p for part in slices for p in part]
    assert sorted(union) == sorted(paths)  # everything, each exactly once
    assert len(union) == len(set(union))
    sizes = [len(part) for part in slices]
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)
    for part in slices:
        assert part == sorted(part)


def test_shard_take_is_independent_of_input_order() -> None:
    paths = _paths(23)
    rng = random.Random(4)
    expected = [Shard(i, 4).take(paths) for i in range(1, 5)]
    for _ in range(20):
        shuffled = paths[:]
        rng.shuffle(shuffled)
        before = shuffled[:]
        assert [Shard(i, 4).take(shuffled) for i in range(1, 5)] == expected
        assert shuffled == before  # not sorted in place
    assert shuffled != paths  # the input really was shuffled


def _student(parent: Path, name: str, *files: str) -> Path:
    folder = parent / name
    folder.mkdir(parents=True)
    for file in files or ("tun_client.py", "tun_server.py"):
        (folder / file).write_text("")
    return folder


@pytest.mark.parametrize("file", ["tun_client.py", "tun_server.py", "vpnsim.toml"])
def test_is_submission(tmp_path: Path, file: str) -> None:
    assert is_submission(_student(tmp_path, "s", file))
    assert not is_submission(_student(tmp_path, "t", "README.md"))


def test_a_submission_folder_stays_itself(tmp_path: Path) -> None:
    alice = _student(tmp_path, "alice")
    (alice / "helpers").mkdir()  # a subfolder does not make it a class
    assert discover([alice]) == [alice.resolve()]


def test_a_toml_submission_stays_itself(tmp_path: Path) -> None:
    carol = _student(tmp_path, "carol", "vpnsim.toml")
    (carol / "src").mkdir()
    assert discover([carol]) == [carol.resolve()]


def test_a_class_folder_expands_to_its_subfolders(tmp_path: Path) -> None:
    course = tmp_path / "course"
    bob = _student(course, "bob")
    alice = _student(course, "alice")
    empty = course / "dave"  # not a submission, still a student's folder: graded, fails
    empty.mkdir()
    (course / ".git").mkdir()  # hidden folders are not students
    (course / "roster.csv").write_text("alice,bob\n")  # files are not students
    assert discover([course]) == [alice.resolve(), bob.resolve(), empty.resolve()]


def test_an_empty_folder_stays_itself(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert discover([empty]) == [empty.resolve()]


def test_a_file_stays_itself(tmp_path: Path) -> None:
    archive = tmp_path / "alice.zip"
    archive.write_bytes(b"PK")
    assert discover([archive]) == [archive.resolve()]


def test_a_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nobody"
    _student(tmp_path, "alice")
    with pytest.raises(CourseError) as info:
        discover([tmp_path / "alice", missing])
    assert str(info.value) == f"{missing}: no such file or folder"


def test_duplicates_removed_and_sorted(tmp_path: Path) -> None:
    course = tmp_path / "course"
    alice = _student(course, "alice")
    bob = _student(course, "bob")
    zed = _student(tmp_path, "zed")
    found = discover([zed, course / "bob", course, alice, tmp_path / "course" / ".." / "course"])
    assert found == [alice.resolve(), bob.resolve(), zed.resolve()]
    assert found == sorted(found)


def test_discover_resolves_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = _student(tmp_path, "alice")
    monkeypatch.chdir(tmp_path)
    assert discover([Path("alice")]) == [alice.resolve()]
    assert discover([Path("alice"), Path("./alice/")]) == [alice.resolve()]


def test_discover_nothing() -> None:
    assert discover([]) == []


def test_unique_names_plain() -> None:
    paths = [Path("/c/bob"), Path("/c/alice")]
    names = unique_names(paths)
    assert names == {Path("/c/alice"): "alice", Path("/c/bob"): "bob"}
    assert list(names) == [Path("/c/alice"), Path("/c/bob")]  # in path order


def test_unique_names_clashes_get_suffixes_in_path_order() -> None:
    paths = [Path("/z/alice"), Path("/b/alice"), Path("/m/alice"), Path("/b/bob")]
    assert unique_names(paths) == {
        Path("/b/alice"): "alice",
        Path("/m/alice"): "alice-2",
        Path("/z/alice"): "alice-3",
        Path("/b/bob"): "bob",
    }


def test_unique_names_unsafe_characters_replaced() -> None:
    names = unique_names(
        [
            Path("/c/carol & co #1"),
            Path("/c/dave's vpn"),
            Path("/c/eve.v2_final-3"),
            Path("/c/.hidden."),
            Path("/c/..."),
        ]
    )
    assert names == {
        Path("/c/carol & co #1"): "carol___co__1",
        Path("/c/dave's vpn"): "dave_s_vpn",
        Path("/c/eve.v2_final-3"): "eve.v2_final-3",
        Path("/c/.hidden."): "hidden",
        Path("/c/..."): "submission",
    }


def test_unique_names_clash_after_replacing() -> None:
    names = unique_names([Path("/c/a b"), Path("/c/a_b"), Path("/c/a?b")])
    assert sorted(names.values()) == ["a_b", "a_b-2", "a_b-3"]
    assert names[Path("/c/a b")] == "a_b"  # " " sorts first


def test_unique_names_are_unique_even_with_suffix_lookalikes() -> None:
    paths = [Path("/a/x"), Path("/b/x"), Path("/c/x-2"), Path("/d/x-2"), Path("/e/x")]
    names = unique_names(paths)
    assert len(set(names.values())) == len(paths)
    assert names[Path("/a/x")] == "x"
    assert names[Path("/b/x")] == "x-2"


# -- a harness fault on one submission: an error row, the others graded ---------------------
#
# The graders below are doubles of `grade_submission` (module-level, so spawned workers can
# be handed them): "boom" raises as a harness bug would, "dies" kills its worker process,
# every other submission passes every task. The real end-to-end check is in
# tests/grade/test_grade_harness_error.py.


def _double(
    submission: Submission, name: str, options: GradeOptions, progress: Progress
) -> SubmissionResult:
    folder = submission.path
    if folder.name == "boom":
        raise RuntimeError("the capture thread went away")
    if folder.name == "dies":  # once "alive" has begun, so that both workers are busy
        _wait_for(folder.parent / "alive.started")
        os._exit(9)
    if folder.name == "alive":  # killed with the pool when "dies" dies
        (folder.parent / "alive.started").touch()
        _wait_for(folder.parent / "never")
    verdicts = {task: Verdict(True, f"{task} passed") for task in TASK_IDS}
    for task, verdict in verdicts.items():
        progress(name, task, verdict)
    return SubmissionResult(
        str(folder), name, verdicts, options.rubric.score(verdicts), options.rubric.total, name
    )


def _wait_for(path: Path) -> None:
    # Polled: the double has nothing else to wait on; the test never waits on the clock.
    while not path.exists():
        time.sleep(0.01)


def _options(tmp_path: Path) -> GradeOptions:
    return GradeOptions(load_rubric(), tmp_path / "out" / "artifacts", tmp_path / "out")


ENVIRONMENT = StudentEnvironment(Path("/nonexistent/env"), (), Path("/usr"))


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_harness_exception_gives_an_error_row_and_the_course_goes_on(
    tmp_path: Path, jobs: int
) -> None:
    course = tmp_path / "course"
    for name in ("alpha", "boom", "zulu"):
        _student(course, name)
    events: list[Event] = []
    report = grade_course(
        discover([course]), _options(tmp_path), jobs=jobs, listener=events.append,
        environment=ENVIRONMENT, grade=_double,
    )  # fmt: skip
    rows = {sub.name: sub for sub in report.submissions}
    assert [sub.name for sub in report.submissions] == ["alpha", "boom", "zulu"]
    for name in ("alpha", "zulu"):
        assert rows[name].error == ""
        assert rows[name].score == 100.0
        assert [v.passed for v in rows[name].tasks.values()] == [True] * len(TASK_IDS)
    boom = rows["boom"]
    assert boom.tasks == {}  # no verdict invented
    assert boom.score == 0.0 and boom.max_score == 100.0
    assert boom.error.startswith(
        "the grader failed (not the submission): RuntimeError: the capture thread went away "
        "(at vpnsim/grade/course.py:"  # the innermost frame of vpnsim's: it called the double
    )
    assert boom.error.endswith(" in _grade)")
    assert boom.artifacts == "artifacts/boom"
    traceback_file = tmp_path / "out" / "artifacts" / "boom" / TRACEBACK_FILE
    assert traceback_file.read_text().startswith(boom.error + "\n\nTraceback (most recent")
    assert ("boom", HARNESS_ERROR, Verdict(None, boom.error)) in events
    assert [e for e in events if e[1] == HARNESS_ERROR] == [
        ("boom", HARNESS_ERROR, Verdict(None, boom.error))
    ]
    assert SubmissionResult.from_dict(boom.to_dict()) == boom
    assert "error" not in rows["alpha"].to_dict()


def test_a_worker_that_dies_fails_what_it_graded_and_the_rest_is_graded_anew(
    tmp_path: Path,
) -> None:
    course = tmp_path / "course"
    for name in ("alive", "dies", "later"):  # sorted: "alive" and "dies" start first
        _student(course, name)
    events: list[Event] = []
    report = grade_course(
        discover([course]), _options(tmp_path), jobs=2, listener=events.append,
        environment=ENVIRONMENT, grade=_double,
    )  # fmt: skip
    rows = {sub.name: sub for sub in report.submissions}
    died = "the grader failed (not the submission): its worker process died (killed?)"
    assert rows["dies"].error == died and rows["dies"].tasks == {}
    assert rows["alive"].error == died and rows["alive"].tasks == {}  # killed with the pool
    assert rows["later"].error == ""  # never begun: graded in a new pool
    assert rows["later"].score == 100.0
    starts = [e[0] for e in events if e[1] == ""]
    assert sorted(starts) == ["alive", "dies", "later"]


def test_reports_show_the_error_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    course = tmp_path / "course"
    for name in ("alpha", "boom"):
        _student(course, name)
    report = grade_course(
        discover([course]), _options(tmp_path), environment=ENVIRONMENT, grade=_double
    )
    error = report.submissions[1].error
    out = tmp_path / "out"
    report.write_json(out / "report.json")
    again = read_report(out / "report.json")
    assert again.submissions[1].error == error and again.submissions[1].tasks == {}

    write_junit(report, out / "junit.xml")
    root = ET.parse(out / "junit.xml").getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("12", "0", "1")
    boom = root.find("testsuite[@name='boom']")
    assert boom is not None and boom.get("errors") == "1" and boom.get("tests") == "1"
    case = boom.find("testcase[@name='grading']/error")
    assert case is not None and case.get("message") == error and case.get("type") == "harness"

    write_html(report, out / "index.html", out)
    page = (out / "index.html").read_text()
    assert '<td class="score error">error</td>' in page
    assert f'<td class="error" colspan="{len(TASK_IDS)}">{escape(error)}</td>' in page
    assert '<td class="score">mean 100.0</td>' in page  # the error row is not a zero
    own = (out / "index-submissions" / "boom.html").read_text()
    assert "<dd>none: not graded</dd>" in own and escape(error) in own

    assert grade_cli._exit_status(report) == grade_cli.EXIT_HARNESS == 2
    grade_cli._summary(report)
    captured = capsys.readouterr()
    assert f"boom        ERROR  {error}\n" in captured.out
    assert captured.err == (
        "vpnsim grade: the grader failed on 1 submission (boom): not the students' fault, no "
        "verdicts given; the rows say what failed; grade them again\n"
    )
    report.submissions.pop()
    assert grade_cli._exit_status(report) == grade_cli.EXIT_OK


def test_progress_lines_show_the_error_and_count_it_done() -> None:
    stream = io.StringIO()
    error = "the grader failed (not the submission): OSError: [Errno 28] No space left on device"
    with ProgressDisplay(2, stream=stream, live=False) as display:
        display(("alpha", "", None))
        display(("alpha", "task1", Verdict(True, "ok")))
        display(("alpha", HARNESS_ERROR, Verdict(None, error)))
    assert display.done == 1 and display.running == {}
    assert stream.getvalue() == f"graded 1/2 alpha: ERROR {error}\n"


@pytest.mark.parametrize(
    ("jobs", "cores", "labs"),
    [(1, 1, 1), (1, 2, 2), (1, 3, 3), (1, 64, 3), (2, 2, 1), (2, 4, 2), (4, 2, 1), (3, 8, 2)],
)
def test_labs_at_once_a_core_each_at_most_three(jobs: int, cores: int, labs: int) -> None:
    assert labs_at_once(jobs, cores=cores) == labs
