"""The grading rubric: the shipped default, scoring, and errors that name the file and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpnsim.errors import HarnessError, UsageError
from vpnsim.grade.rubric import Rubric, RubricError, load_rubric, parse_rubric
from vpnsim.grade.tasks import TASK_IDS, Verdict

DEFAULT_POINTS = {
    "task1": 5.0,
    "task2": 10.0,
    "task3": 15.0,
    "task4": 15.0,
    "task5": 15.0,
    "task6": 10.0,
    "task7": 5.0,
    "large": 10.0,
    "robust": 5.0,
    "client_interop": 5.0,
    "server_interop": 5.0,
}
SOURCE = "course/rubric.toml"


def _verdicts(passed: dict[str, bool | None]) -> dict[str, Verdict]:
    return {task: Verdict(passed.get(task), "") for task in TASK_IDS}


def _error(text: str) -> str:
    with pytest.raises(RubricError) as info:
        parse_rubric(text, SOURCE)
    return str(info.value)


def test_default_rubric_loads_with_exact_points() -> None:
    rubric = load_rubric()
    assert rubric.points == DEFAULT_POINTS
    assert list(rubric.points) == list(TASK_IDS)
    assert all(isinstance(p, float) for p in rubric.points.values())
    assert rubric.total == 100.0
    assert rubric.source == "vpnsim default (rubric.toml)"


def test_score_sums_the_passed_tasks_only() -> None:
    rubric = load_rubric()
    verdicts = _verdicts({"task1": True, "task2": True, "task3": False, "large": True})
    score = rubric.score(verdicts)
    assert score == 25.0
    assert isinstance(score, float)


def test_score_of_nothing_passed_is_a_float_zero() -> None:
    score = load_rubric().score(_verdicts({"task1": False, "task2": None}))
    assert score == 0.0
    assert isinstance(score, float)


def test_score_of_everything_passed_is_the_total() -> None:
    rubric = load_rubric()
    assert rubric.score(_verdicts(dict.fromkeys(TASK_IDS, True))) == rubric.total == 100.0


def test_not_reached_scores_nothing() -> None:
    rubric = load_rubric()
    verdicts = _verdicts({"task1": True})
    verdicts["task2"] = Verdict(None, "not run")
    assert rubric.score(verdicts) == 5.0


def test_partial_rubric_gives_zero_to_unnamed_tasks() -> None:
    rubric = parse_rubric("[points]\ntask2 = 3\nlarge = 1.5\n", SOURCE)
    assert rubric.points == {t: {"task2": 3.0, "large": 1.5}.get(t, 0.0) for t in TASK_IDS}
    assert list(rubric.points) == list(TASK_IDS)
    assert rubric.total == 4.5
    assert rubric.source == SOURCE
    assert rubric.score(_verdicts({"task1": True, "task2": True, "large": True})) == 4.5


def test_load_rubric_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text("# mine\n[points]\ntask1 = 50\nserver_interop = 50\n")
    rubric = load_rubric(path)
    assert rubric.source == str(path)
    assert rubric.total == 100.0
    assert rubric.points["task1"] == 50.0
    assert rubric.points["server_interop"] == 50.0


def test_unknown_task_names_the_source_and_key() -> None:
    message = _error("[points]\ntask1 = 5\ntask9 = 5\n")
    assert message == f"{SOURCE}: points.task9: no such task (tasks: {', '.join(TASK_IDS)})"


def test_the_first_unknown_task_in_sorted_order_is_named() -> None:
    message = _error("[points]\nzeta = 1\nalpha = 1\ntask1 = 1\n")
    assert message.startswith(f"{SOURCE}: points.alpha: no such task")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("-1", "-1"),
        ("-0.5", "-0.5"),
        ("true", "True"),
        ("false", "False"),
        ('"5"', "'5'"),
        ("[5]", "[5]"),
        ("{ a = 1 }", "{'a': 1}"),
        ("-inf", "-inf"),
    ],
)
def test_bad_values_name_the_source_and_key(value: str, shown: str) -> None:
    message = _error(f"[points]\ntask1 = 5\ntask3 = {value}\n")
    assert message == f"{SOURCE}: points.task3: expected a number >= 0, got {shown}"


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_points_are_rejected(value: str) -> None:
    # "expected a number >= 0": nan is not >= 0, and nan/inf make the total, every score and
    # the JSON report (NaN / Infinity are not JSON) meaningless.
    message = _error(f"[points]\ntask1 = 5\ntask3 = {value}\n")
    assert message.startswith(f"{SOURCE}: points.task3: expected a number >= 0, got ")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# nothing\n",
        "task1 = 5\n",
        "points = 5\n",
        "points = [1, 2]\n",
        "[pointz]\ntask1 = 5\n",
    ],
)
def test_missing_points_table(text: str) -> None:
    assert _error(text) == f"{SOURCE}: expected a [points] table of task = points"


@pytest.mark.parametrize("text", ["[points]\n", "[points]\ntask1 = 0\ntask2 = 0.0\n"])
def test_points_adding_up_to_zero(text: str) -> None:
    assert _error(text) == f"{SOURCE}: [points]: the points add up to 0"


def test_toml_syntax_error_names_the_source() -> None:
    message = _error("[points]\ntask1 = \n")
    assert message.startswith(f"{SOURCE}: ")
    assert "line 2" in message


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(RubricError) as info:
        load_rubric(missing)
    assert str(info.value) == f"{missing}: cannot read: No such file or directory"
    with pytest.raises(RubricError) as info:
        load_rubric(tmp_path)
    assert str(info.value) == f"{tmp_path}: cannot read: Is a directory"


def test_syntax_error_in_a_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[points\n")
    with pytest.raises(RubricError) as info:
        load_rubric(path)
    assert str(info.value).startswith(f"{path}: ")


def test_rubric_error_is_a_usage_and_value_error() -> None:
    assert issubclass(RubricError, UsageError)  # the user's rubric file is wrong
    assert not issubclass(RubricError, HarnessError)
    assert issubclass(RubricError, ValueError)


def test_to_dict_exact() -> None:
    rubric = parse_rubric("[points]\ntask1 = 2\nrobust = 3\n", SOURCE)
    assert rubric.to_dict() == {
        "source": SOURCE,
        "points": {t: {"task1": 2.0, "robust": 3.0}.get(t, 0.0) for t in TASK_IDS},
        "total": 5.0,
    }


def test_to_dict_copies_the_points() -> None:
    rubric = load_rubric()
    rubric.to_dict()["points"]["task1"] = 99.0
    assert rubric.points["task1"] == 5.0


def test_round_trip_through_json() -> None:
    rubric = load_rubric()
    back = Rubric.from_dict(json.loads(json.dumps(rubric.to_dict())))
    assert back == rubric
    assert back.total == 100.0


def test_from_dict_makes_floats() -> None:
    rubric = Rubric.from_dict({"source": "s", "points": {"task1": 3, "task2": 4}})
    assert rubric.points == {"task1": 3.0, "task2": 4.0}
    assert all(isinstance(p, float) for p in rubric.points.values())
    assert rubric.total == 7.0
