"""The grading progress display: task marks, and one plain line per graded submission."""

from __future__ import annotations

import io

import pytest

from vpnsim.grade.progress import MARKS, ProgressDisplay, marks, wants_live
from vpnsim.grade.tasks import TASK_IDS, Verdict

PASS, FAIL, NOT = Verdict(True, "ok"), Verdict(False, "broken"), Verdict(None, "blocked")


def _verdicts(*passed: bool | None) -> dict[str, Verdict]:
    return {task: Verdict(p, "") for task, p in zip(TASK_IDS, passed, strict=False)}


def test_mark_characters() -> None:
    assert MARKS == {True: "✓", False: "✗", None: "-"}


def test_marks_nothing_yet() -> None:
    assert marks({}) == "···········"
    assert len(marks({})) == len(TASK_IDS) == 11


def test_marks_all_passed() -> None:
    assert marks(dict.fromkeys(TASK_IDS, PASS)) == "✓✓✓✓✓✓✓✓✓✓✓"


def test_marks_mixed_in_task_order() -> None:
    verdicts = _verdicts(True, True, False, None, None, None, None, None, None, True, None)
    assert marks(verdicts) == "✓✓✗------✓-"


def test_marks_partial_and_out_of_order() -> None:
    # recorded in any order, shown in task order; unrecorded tasks are "·"
    verdicts = {"server_interop": PASS, "task2": FAIL, "task1": PASS, "large": NOT}
    assert marks(verdicts) == "✓✗·····-··✓"


def test_marks_ignores_unknown_keys() -> None:
    assert marks({"task1": PASS, "bonus": FAIL}) == "✓··········"


def _events(name: str, verdicts: dict[str, Verdict]) -> list[tuple[str, str, Verdict | None]]:
    return [(name, "", None)] + [(name, task, v) for task, v in verdicts.items()]


def test_one_line_per_finished_submission() -> None:
    stream = io.StringIO()
    alice = _verdicts(True, True, False, None, None, None, None, None, None, None, None)
    bob = dict.fromkeys(TASK_IDS, PASS)
    with ProgressDisplay(2, stream=stream, live=False) as display:
        for event in _events("alice", alice):
            display(event)
        assert stream.getvalue() == "graded 1/2 alice: ✓✓✗-------- (2/11 tasks passed)\n"
        for event in _events("bob", bob):
            display(event)
    assert stream.getvalue() == (
        "graded 1/2 alice: ✓✓✗-------- (2/11 tasks passed)\n"
        "graded 2/2 bob: ✓✓✓✓✓✓✓✓✓✓✓ (11/11 tasks passed)\n"
    )
    assert display.done == 2
    assert display.running == {}
    assert display.rows == {}


def test_nothing_printed_until_the_last_task() -> None:
    stream = io.StringIO()
    with ProgressDisplay(1, stream=stream, live=False) as display:
        display(("carol", "", None))
        for task in TASK_IDS[:-1]:
            display(("carol", task, PASS))
            assert stream.getvalue() == ""
        assert display.running == {"carol": dict.fromkeys(TASK_IDS[:-1], PASS)}
        assert display.done == 0
        display(("carol", TASK_IDS[-1], FAIL))
    assert stream.getvalue() == "graded 1/1 carol: ✓✓✓✓✓✓✓✓✓✓✗ (10/11 tasks passed)\n"


def test_interleaved_submissions_are_counted_in_finishing_order() -> None:
    stream = io.StringIO()
    alice = dict.fromkeys(TASK_IDS, FAIL)
    bob = _verdicts(True, True, True, True, True, False, True, None, True, True, True)
    with ProgressDisplay(3, stream=stream, live=False) as display:
        display(("alice", "", None))
        display(("bob", "", None))
        for (task, a), b in zip(alice.items(), bob.values(), strict=True):
            display(("bob", task, b))  # bob's verdicts come first: bob finishes first
            display(("alice", task, a))
    assert stream.getvalue() == (
        "graded 1/3 bob: ✓✓✓✓✓✗✓-✓✓✓ (9/11 tasks passed)\n"
        "graded 2/3 alice: ✗✗✗✗✗✗✗✗✗✗✗ (0/11 tasks passed)\n"
    )
    assert display.done == 2


def test_verdicts_without_a_start_event() -> None:
    stream = io.StringIO()
    with ProgressDisplay(1, stream=stream, live=False) as display:
        for task in TASK_IDS:
            display(("dave", task, NOT))
    assert stream.getvalue() == "graded 1/1 dave: ----------- (0/11 tasks passed)\n"


def test_a_task_reported_twice_counts_once() -> None:
    stream = io.StringIO()
    with ProgressDisplay(1, stream=stream, live=False) as display:
        display(("erin", "", None))
        display(("erin", "task1", FAIL))
        display(("erin", "task1", PASS))
        for task in TASK_IDS[1:]:
            display(("erin", task, FAIL))
    assert stream.getvalue() == "graded 1/1 erin: ✓✗✗✗✗✗✗✗✗✗✗ (1/11 tasks passed)\n"


def test_long_names_are_printed_whole() -> None:
    name = "a-student-with-a-very-long-folder-name"
    stream = io.StringIO()
    with ProgressDisplay(1, stream=stream, live=False) as display:
        for event in _events(name, dict.fromkeys(TASK_IDS, PASS)):
            display(event)
    assert stream.getvalue() == f"graded 1/1 {name}: ✓✓✓✓✓✓✓✓✓✓✓ (11/11 tasks passed)\n"


def test_live_on_a_stringio_does_not_crash_and_prints_no_lines() -> None:
    stream = io.StringIO()
    with ProgressDisplay(2, stream=stream, live=True) as display:
        for event in _events("alice", dict.fromkeys(TASK_IDS, PASS)):
            display(event)
        display(("bob", "", None))
        display(("bob", "task1", FAIL))
    assert display.done == 1
    assert "graded" not in stream.getvalue()
    assert "(11/11 tasks passed)" not in stream.getvalue()


def test_default_is_not_live_on_a_stringio() -> None:
    stream = io.StringIO()
    display = ProgressDisplay(1, stream=stream)
    assert display.live is False
    with display:
        for event in _events("frank", dict.fromkeys(TASK_IDS, PASS)):
            display(event)
    assert stream.getvalue() == "graded 1/1 frank: ✓✓✓✓✓✓✓✓✓✓✓ (11/11 tasks passed)\n"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_wants_live(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert wants_live(_Terminal()) is True
    assert wants_live(io.StringIO()) is False
    monkeypatch.setenv("CI", "true")
    assert wants_live(_Terminal()) is False
    monkeypatch.setenv("CI", "")
    assert wants_live(_Terminal()) is True
