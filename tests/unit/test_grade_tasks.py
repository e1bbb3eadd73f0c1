"""The grading tasks: ids, order, prerequisites, blockers, and the Verdict JSON round trip."""

from __future__ import annotations

import json

import pytest

from vpnsim.grade.tasks import BY_ID, HEADLINE, TASK_IDS, TASKS, Outcome, Verdict, headline

EXPECTED_IDS = (
    "task1",
    "task2",
    "task3",
    "task4",
    "task5",
    "task6",
    "task7",
    "large",
    "robust",
    "client_interop",
    "server_interop",
)


def test_task_ids_and_order() -> None:
    assert tuple(task.id for task in TASKS) == EXPECTED_IDS
    assert TASK_IDS == EXPECTED_IDS
    assert list(BY_ID) == list(EXPECTED_IDS)
    assert all(BY_ID[task.id] is task for task in TASKS)


def test_every_need_is_an_earlier_task() -> None:
    for position, task in enumerate(TASKS):
        earlier = TASK_IDS[:position]
        for need in task.needs:
            assert need in earlier, f"{task.id} needs {need}, which is not earlier"


def test_prerequisites_are_the_lab_chain() -> None:
    needs = {task.id: task.needs for task in TASKS}
    assert needs == {
        "task1": (),
        "task2": ("task1",),
        "task3": ("task2",),
        "task4": ("task3",),
        "task5": ("task4",),
        "task6": ("task5",),
        "task7": ("task5",),
        "large": ("task5",),
        "robust": ("task5",),
        "client_interop": ("task2",),
        "server_interop": ("task1",),
    }


def test_every_task_has_a_title_and_a_sentence() -> None:
    for task in TASKS:
        assert task.title.strip()
        assert task.checks.strip().endswith(".")
    assert BY_ID["task2"].title == "TUN interface"


def test_blocker_none_for_a_task_without_needs() -> None:
    assert Outcome().blocker("task1") is None


def test_blocker_none_when_prerequisites_passed() -> None:
    outcome = Outcome()
    outcome.record("task1", Verdict(True, "ok"))
    assert outcome.blocker("task2") is None
    assert outcome.blocker("server_interop") is None


def test_blocker_for_a_failed_prerequisite_names_it_and_its_reason() -> None:
    outcome = Outcome()
    outcome.record("task1", Verdict(True, "ok"))
    outcome.record("task2", Verdict(False, "no TUN within 10 s"))
    expected = "needs task2 (TUN interface), which failed: no TUN within 10 s"
    assert outcome.blocker("task3") == expected
    assert outcome.blocker("client_interop") == expected
    assert outcome.blocker("server_interop") is None


def test_blocker_names_only_the_headline_of_a_long_reason() -> None:
    outcome = Outcome()
    outcome.record("task1", Verdict(True, "ok"))
    outcome.record("task2", Verdict(True, "ok"))
    outcome.record("task3", Verdict(True, "ok"))
    crash = (
        'your server exited with status 1: File "tun_server.py", line 31, in <module>: '
        "print(pkt.scr)\nAttributeError: scr"
    )
    outcome.record("task4", Verdict(False, crash))
    assert outcome.blocker("task5") == (
        "needs task4 (Set up the VPN server), which failed: your server exited with status 1"
    )


@pytest.mark.parametrize(
    ("reason", "short"),
    [
        (
            "your client did not create a TUN within 10 s",
            "your client did not create a TUN within 10 s",
        ),
        (
            "the client's TUN silva0 is down: bring it up (ip link set dev silva0 up)",
            "the client's TUN silva0 is down",
        ),
        (
            "the ping left U in clear on eth0, not inside UDP to 10.9.0.11:9090: U routes ...",
            "the ping left U in clear on eth0, not inside UDP to 10.9.0.11:9090",
        ),
        ("first line\nsecond line: more", "first line"),
        ("  padded: x  ", "padded"),
        ("", ""),
    ],
)
def test_headline(reason: str, short: str) -> None:
    assert headline(reason) == short


def test_headline_of_a_long_first_part_is_cut_at_a_word() -> None:
    reason = "word " * 40 + ": detail"
    short = headline(reason)
    assert HEADLINE == 100
    assert short == ("word " * 19).strip() + "…"
    assert len(short) <= HEADLINE


def test_blocker_for_a_not_reached_prerequisite_is_the_root_cause() -> None:
    outcome = Outcome()
    outcome.record("task1", Verdict(True, "ok"))
    outcome.record("task2", Verdict(False, "no TUN within 10 s"))
    root = outcome.blocker("task3")
    assert root is not None
    outcome.not_reached("task3", root)
    # task4 needs task3 (not reached): the reason is task2's, not "needs task3 (...) ..."
    assert outcome.blocker("task4") == root
    outcome.not_reached("task4", root)
    outcome.not_reached("task5", outcome.blocker("task5") or "")
    for task_id in ("task6", "task7", "large", "robust"):
        reason = outcome.blocker(task_id)
        assert reason == "needs task2 (TUN interface), which failed: no TUN within 10 s"
        assert reason.count("needs") == 1


def test_blocker_for_a_prerequisite_not_run() -> None:
    assert Outcome().blocker("task2") == "needs task1 (Network setup), which was not run"
    outcome = Outcome()
    outcome.record("task1", Verdict(True, "ok"))
    assert outcome.blocker("task3") == "needs task2 (TUN interface), which was not run"


def test_not_reached_records_and_returns_the_verdict() -> None:
    outcome = Outcome()
    verdict = outcome.not_reached("task3", "because")
    assert verdict == Verdict(None, "because")
    assert verdict.status == "not reached"
    assert outcome.verdicts == {"task3": verdict}


def test_record_replaces_a_verdict() -> None:
    outcome = Outcome()
    outcome.record("task1", Verdict(False, "first"))
    outcome.record("task1", Verdict(True, "second"))
    assert outcome.verdicts["task1"] == Verdict(True, "second")


def test_ordered_fills_missing_tasks_in_task_order() -> None:
    outcome = Outcome()
    passed = Verdict(True, "ok")
    failed = Verdict(False, "broken")
    outcome.record("large", failed)  # recorded out of order
    outcome.record("task1", passed)
    ordered = outcome.ordered()
    assert list(ordered) == list(EXPECTED_IDS)
    assert ordered["task1"] is passed
    assert ordered["large"] is failed
    for task_id in EXPECTED_IDS:
        if task_id not in ("task1", "large"):
            assert ordered[task_id] == Verdict(None, "not run")
            assert ordered[task_id].status == "not reached"
    assert outcome.verdicts == {"large": failed, "task1": passed}  # not changed


def test_ordered_of_an_empty_outcome() -> None:
    assert Outcome().ordered() == {task_id: Verdict(None, "not run") for task_id in EXPECTED_IDS}


@pytest.mark.parametrize(
    ("passed", "status"), [(True, "passed"), (False, "failed"), (None, "not reached")]
)
def test_status(passed: bool | None, status: str) -> None:
    assert Verdict(passed, "why").status == status


def test_verdict_to_dict_exact() -> None:
    verdict = Verdict(
        False,
        "the server exited",
        log=("$ ping -c1 192.168.60.5", "exit status 1"),
        evidence=("task3/server.pcap",),
        seconds=1.23456,
    )
    assert verdict.to_dict() == {
        "passed": False,
        "reason": "the server exited",
        "log": ["$ ping -c1 192.168.60.5", "exit status 1"],
        "evidence": ["task3/server.pcap"],
        "seconds": 1.235,
        "path": None,  # it traced no ping (test_grade_path: one that did)
    }


@pytest.mark.parametrize("passed", [True, False, None])
def test_verdict_round_trip_through_json(passed: bool | None) -> None:
    verdict = Verdict(passed, "reason ✓ <&>", ("a", "b"), ("x/y.pcap",), 2.5)
    back = Verdict.from_dict(json.loads(json.dumps(verdict.to_dict())))
    assert back == verdict
    assert isinstance(back.log, tuple)
    assert isinstance(back.evidence, tuple)


def test_verdict_from_dict_defaults() -> None:
    verdict = Verdict.from_dict({"passed": None, "reason": "not run"})
    assert verdict == Verdict(None, "not run", (), (), 0.0)
    seconds = Verdict.from_dict({"passed": True, "reason": "", "seconds": 3}).seconds
    assert seconds == 3.0
    assert isinstance(seconds, float)


def test_verdict_defaults() -> None:
    verdict = Verdict(True, "ok")
    assert verdict.log == ()
    assert verdict.evidence == ()
    assert verdict.seconds == 0.0
