"""Progress of a grading run: a live bar with each running submission's task marks on a
terminal; one plain line per graded submission elsewhere (CI logs stay short). After the
run, `path_lines` gives the summary's line per failed task: where its ping went."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from vpnsim.grade.course import HARNESS_ERROR, Event
from vpnsim.grade.registry import lab_of
from vpnsim.grade.tasks import TASK_IDS, Verdict

MARKS = {True: "✓", False: "✗", None: "-"}


def marks(verdicts: dict[str, Verdict], ids: tuple[str, ...] | None = None) -> str:
    """One character per task, in order (the lab's whose tasks these are, unless `ids`):
    ✓ passed, ✗ failed, - not reached, · not yet."""
    ids = ids or lab_of(verdicts).ids
    return "".join(MARKS[verdicts[t].passed] if t in verdicts else "·" for t in ids)


def path_lines(verdicts: dict[str, Verdict]) -> list[str]:
    """A line per failed task that traced a ping, in task order: `  task3: U:tun0 ✓ → ...`."""
    ids = lab_of(verdicts).ids
    order = [*ids, *sorted(t for t in verdicts if t not in ids)]
    lines = []
    for task in order:
        verdict = verdicts.get(task)
        if verdict is not None and verdict.passed is False and verdict.path is not None:
            lines.append(f"  {task}: {verdict.path.line()}")
    return lines


def wants_live(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("CI")


class ProgressDisplay:
    """A listener for `grade_course`; use as a context manager."""

    def __init__(
        self,
        total: int,
        stream: TextIO = sys.stderr,
        live: bool | None = None,
        task_ids: tuple[str, ...] = TASK_IDS,  # the lab's
    ) -> None:
        self.total = total
        self.ids = task_ids
        self.stream = stream
        self.live = wants_live(stream) if live is None else live
        self.done = 0
        self.running: dict[str, dict[str, Verdict]] = {}
        self.rows: dict[str, TaskID] = {}
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=stream),
            disable=not self.live,
        )
        self.overall = self.progress.add_task("submissions", total=total)

    def __enter__(self) -> ProgressDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: Event) -> None:
        name, task, verdict = event
        if verdict is None:  # a submission starts
            self.running[name] = {}
            self.rows[name] = self.progress.add_task(self._label(name), total=len(self.ids))
            return
        if task == HARNESS_ERROR:  # no verdicts: the harness failed on it
            self._finished(name, self.running.get(name, {}), error=verdict.reason)
            return
        verdicts = self.running.setdefault(name, {})
        verdicts[task] = verdict
        row = self.rows.get(name)
        if row is not None:
            self.progress.update(row, description=self._label(name), completed=len(verdicts))
        if len(verdicts) == len(self.ids):
            self._finished(name, verdicts)

    def _label(self, name: str) -> str:
        return f"  {name[:24]:<24} {marks(self.running.get(name, {}), self.ids)}"

    def _finished(self, name: str, verdicts: dict[str, Verdict], error: str = "") -> None:
        self.done += 1
        self.progress.advance(self.overall)
        row = self.rows.pop(name, None)
        if row is not None:
            self.progress.remove_task(row)
        self.running.pop(name, None)
        if error:  # shown live too (above the bar): a TA sees it when it happens
            line = f"graded {self.done}/{self.total} {name}: ERROR {error}"
            self.progress.console.print(line, markup=False, highlight=False, soft_wrap=True)
            return
        if not self.live:
            passed = sum(1 for v in verdicts.values() if v.passed is True)
            print(
                f"graded {self.done}/{self.total} {name}: {marks(verdicts, self.ids)} "
                f"({passed}/{len(self.ids)} tasks passed)",
                file=self.stream,
                flush=True,
            )
