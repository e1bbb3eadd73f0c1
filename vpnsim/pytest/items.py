"""Scenario files as pytest items: one file, one lab; one check, one item, in file order.

Under pytest-xdist a file's checks stay together on one worker (grouping.py); a check run
without those before it (`-k`, another scheduler) catches up on their setups first
(`ScenarioRun`). A malformed file is a collection error that names file, key path and line
(no traceback). A failing check shows what was expected, what was seen, and where its
evidence was saved.

An item is a `pytest.Function` whose function asks for `tmp_path_factory`: the evidence goes
under the session's basetemp through pytest's public fixtures.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from vpnsim.errors import UsageError
from vpnsim.pytest.settings import lab_registry, settings_of

if TYPE_CHECKING:
    from vpnsim.scenario.loaded import LoadedScenario
    from vpnsim.scenario.runner import ScenarioRun, Verdict
    from vpnsim.scenario.schema import Check


class CheckFailed(Exception):
    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.check)
        self.verdict = verdict


class ScenarioFileNode(pytest.File):
    """A scenario file; builds its lab at the first check that runs, removes it after the last."""

    run: ScenarioRun | None = None
    loaded: LoadedScenario

    def collect(self) -> Iterator[pytest.Item]:
        from vpnsim.scenario.loaded import ScenarioFileError
        from vpnsim.scenario.loader import load

        try:
            self.loaded = load(self.path)
        except ScenarioFileError as exc:
            raise self.CollectError(str(exc)) from None
        for check in self.loaded.checks:
            yield CheckItem.from_parent(self, name=check.name, check=check)

    def scenario_run(self, artifacts: Path) -> ScenarioRun:
        if self.run is None:
            from vpnsim.scenario.runner import ScenarioRun

            settings = settings_of(self.config)
            self.run = ScenarioRun(
                self.loaded,
                artifacts,
                settings.impl,
                owner_pid=os.getpid(),
                probe_timeout=settings.probe_timeout,
            )
        return self.run

    def teardown(self) -> None:
        if self.run is not None:
            self.run.close()
            self.run = None


class CheckItem(pytest.Function):
    def __init__(self, *, check: Check, **kwargs: Any) -> None:
        self.check = check

        def check_runs(tmp_path_factory: pytest.TempPathFactory) -> None:
            self.run_check(tmp_path_factory.getbasetemp() / "scenarios")

        super().__init__(callobj=check_runs, **kwargs)
        self.add_marker("lab")

    def run_check(self, artifacts: Path) -> None:
        node = self.parent
        if not isinstance(node, ScenarioFileNode):
            raise TypeError(f"{self.nodeid}: a check item belongs to a scenario file")
        run = node.scenario_run(artifacts)
        try:
            verdict = run.check(self.check)
        finally:
            registry = lab_registry(self.config)
            if run.lab is not None and run.lab.name not in registry:
                registry.append(run.lab.name)  # leak-checked at the session's end
        if not verdict.passed:
            raise CheckFailed(verdict)

    def repr_failure(  # type: ignore[override]  # the style pytest.Function does not take
        self, excinfo: pytest.ExceptionInfo[BaseException]
    ) -> Any:
        if isinstance(excinfo.value, CheckFailed):
            return "\n".join(line.strip() for line in excinfo.value.verdict.lines()[1:])
        if isinstance(excinfo.value, UsageError):  # e.g. --vpn-impl the scenario cannot take
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name
