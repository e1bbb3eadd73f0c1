"""Scenario files as pytest items: one file, one lab; one check, one item, in file order.

A malformed file is a collection error that names file, key path and line (no traceback). A
failing check shows what was expected, what was seen, and where its evidence was saved.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from vpnsim.impl import TunnelImpl
    from vpnsim.run import ScenarioRun, Verdict
    from vpnsim.scenario import Check


class CheckFailed(Exception):
    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.check)
        self.verdict = verdict


class ScenarioFileNode(pytest.File):
    """A scenario file; builds its lab at the first check that runs, removes it after the last."""

    run: ScenarioRun | None = None

    def collect(self) -> Iterator[pytest.Item]:
        from vpnsim.scenario import ScenarioFileError, load

        try:
            self.loaded = load(self.path)
        except ScenarioFileError as exc:
            raise self.CollectError(str(exc)) from None
        for check in self.loaded.checks:
            yield CheckItem.from_parent(self, name=check.name, check=check)

    def scenario_run(self, impl: TunnelImpl, artifacts: Path, probe_timeout: float) -> ScenarioRun:
        if self.run is None:
            from vpnsim.run import ScenarioRun

            self.run = ScenarioRun(
                self.loaded, artifacts, impl, owner_pid=os.getpid(), probe_timeout=probe_timeout
            )
        return self.run

    def teardown(self) -> None:
        if self.run is not None:
            self.run.close()
            self.run = None


class CheckItem(pytest.Item):
    def __init__(self, *, check: Check, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.add_marker("lab")

    def runtest(self) -> None:
        from vpnsim.pytest_plugin import lab_registry, probe_timeout, selected_impl_of

        node = self.parent
        assert isinstance(node, ScenarioFileNode)
        config = self.config
        artifacts = config._tmp_path_factory.getbasetemp() / "scenarios"  # type: ignore[attr-defined]
        run = node.scenario_run(selected_impl_of(config), artifacts, probe_timeout(config))
        try:
            verdict = run.check(self.check)
        finally:
            if run.lab is not None and run.lab.name not in lab_registry(config):
                lab_registry(config).append(run.lab.name)  # leak-checked at the session's end
        if not verdict.passed:
            raise CheckFailed(verdict)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CheckFailed):
            return "\n".join(line.strip() for line in excinfo.value.verdict.lines()[1:])
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name
