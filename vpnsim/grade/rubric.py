"""Rubric: points per task, from a TOML file (vpnsim ships a default)."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from vpnsim.errors import UsageError
from vpnsim.grade.registry import lab_tasks
from vpnsim.grade.tasks import TASK_IDS, Verdict

DEFAULT_RUBRIC = "rubric.toml"


class RubricError(UsageError):
    """A rubric file that cannot be used: names the file and the key."""


@dataclass(frozen=True)
class Rubric:
    points: dict[str, float]
    source: str

    @property
    def total(self) -> float:
        return sum(self.points.values())

    def score(self, verdicts: dict[str, Verdict]) -> float:
        return float(sum(p for task, p in self.points.items() if verdicts[task].passed is True))

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "points": dict(self.points), "total": self.total}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rubric:
        return cls({k: float(v) for k, v in data["points"].items()}, data["source"])


def load_rubric(path: Path | None = None, lab: str = "tunnel") -> Rubric:
    """The rubric in `path`, or vpnsim's default for `lab`; its tasks are `lab`'s."""
    registry = lab_tasks(lab)
    if path is None:
        text = resources.files("vpnsim.grade").joinpath(registry.rubric).read_text()
        source = f"vpnsim default ({registry.rubric})"
    else:
        try:
            text = path.read_text()
        except OSError as exc:
            raise RubricError(f"{path}: cannot read: {exc.strerror}") from exc
        source = str(path)
    return parse_rubric(text, source, registry.ids)


def parse_rubric(text: str, source: str, task_ids: tuple[str, ...] = TASK_IDS) -> Rubric:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RubricError(f"{source}: {exc}") from exc
    table = data.get("points")
    if not isinstance(table, dict):
        raise RubricError(f"{source}: expected a [points] table of task = points")
    unknown = sorted(set(table) - set(task_ids))
    if unknown:
        raise RubricError(
            f"{source}: points.{unknown[0]}: no such task (tasks: {', '.join(task_ids)})"
        )
    points: dict[str, float] = {}
    for task in task_ids:
        value = table.get(task, 0)
        bad = isinstance(value, bool) or not isinstance(value, int | float)
        if bad or not math.isfinite(value) or value < 0:
            raise RubricError(f"{source}: points.{task}: expected a number >= 0, got {value!r}")
        points[task] = float(value)
    if sum(points.values()) <= 0:
        raise RubricError(f"{source}: [points]: the points add up to 0")
    return Rubric(points, source)
