"""A scenario file's checks build on each other: under `pytest -n 2` they stay on one worker,
in file order, and a check run on its own first catches up on the setups before it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vpnsim.scenario.loader import load
from vpnsim.scenario.runner import ScenarioRun
from vpnsim.scenario.shipped import SHIPPED_DIR

pytestmark = pytest.mark.lab

LATER_CHECK = """
[[checks]]
name = "b-still-cannot-answer-later"
type = "unreachable"
from = "A"
to = "10.2.0.2"
timeout = 0.5
"""


def test_a_check_run_alone_first_applies_the_setups_of_the_checks_before_it(
    tmp_path: Path,
) -> None:
    """The last check relies on an earlier check's `delete_route`: run alone (as `-k` or a
    worker given part of a file would), it still sees r2 without its route back."""
    path = tmp_path / "chain.toml"
    path.write_text((SHIPPED_DIR / "example-router-chain.toml").read_text() + LATER_CHECK)
    loaded = load(path)
    run = ScenarioRun(loaded, tmp_path / "artifacts", owner_pid=os.getpid())
    try:
        verdict = run.check(loaded.checks[-1])
        assert verdict.passed, verdict.lines()
        assert run.lab is not None
        assert "10.1.0.0/24" not in {r.dst for r in run.lab.rtnl("r2").routes()}
    finally:
        run.close()


def test_under_two_workers_each_scenario_file_runs_whole_on_one_worker_in_order(
    tmp_path: Path,
) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    files = ("example-two-clients", "example-router-chain", "seed-tls")
    for name in files:
        (scenarios / f"{name}.toml").write_text((SHIPPED_DIR / f"{name}.toml").read_text())
    (tmp_path / "pytest.ini").write_text("[pytest]\nvpnsim_scenarios = scenarios/*.toml\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "-v", "scenarios"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    ran = re.findall(
        r"^\[(gw\d)\] \[ *\d+%\] PASSED scenarios/([\w-]+)\.toml::(\S+)", result.stdout, re.M
    )
    total = sum(len(load(scenarios / f"{name}.toml").checks) for name in files)
    assert len(ran) == total, result.stdout[-3000:]
    for name in files:
        workers = {worker for worker, file, _ in ran if file == name}
        order = [check for _, file, check in ran if file == name]
        assert len(workers) == 1, (name, workers)
        assert order == [c.name for c in load(scenarios / f"{name}.toml").checks]
    assert "scheduling tests via ScenarioFilesTogether" in result.stdout
