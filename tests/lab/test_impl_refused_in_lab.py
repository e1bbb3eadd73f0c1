"""`--vpn-impl reference-aead` on the TAP lab (the reference's AEAD mode is TUN only) as a user
meets it: `vpnsim run` and `vpnsim lab up` exit 2 with one line and build nothing; a pytest
session's lab fixtures fail with one line naming the option and the scenario, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runner import vpnsim

from vpnsim.leaks import labs_logging_under, leftovers
from vpnsim.scenario.shipped import load_file
from vpnsim.topology import new_lab_name

pytestmark = pytest.mark.lab

TAP_LABEL = load_file("seed-tap").label
REFUSAL = (
    "--vpn-impl reference-aead: the reference's AEAD, offload and GSO modes are TUN only, and "
    f"scenario {TAP_LABEL}'s tunnel is mode 'tap'"
)


def test_run_refuses_before_any_check_or_lab(tmp_path: Path) -> None:
    result = vpnsim(
        "run", "seed-tunnel", "seed-tap", "--vpn-impl", "reference-aead",
        "--artifacts", str(tmp_path),
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (2, f"vpnsim: error: {REFUSAL}\n")
    assert result.stdout == ""  # not even seed-tunnel's checks: every scenario is checked first
    assert list(tmp_path.iterdir()) == []  # no lab wrote its logs there
    assert labs_logging_under(tmp_path) == []


def test_lab_up_refuses_before_building() -> None:
    name = new_lab_name("ux")
    result = vpnsim("lab", "up", "seed-tap", "--name", name, "--vpn-impl", "reference-aead")
    assert (result.returncode, result.stderr) == (2, f"vpnsim: error: {REFUSAL}\n")
    assert leftovers([name]) == {}


CONFTEST = """
import pytest


@pytest.fixture(scope="module")
def vpnsim_scenario():
    return "seed-tap"
"""

TESTS = """
from vpnsim.impl import VARIANTS


def test_through_vpn_tunnel(vpn_tunnel):
    raise AssertionError("never reached: the fixture refuses")


def test_through_the_factory(vpnsim_labs, vpnsim_scenario):
    vpnsim_labs.bring_up(vpnsim_scenario, VARIANTS["reference-aead"])
"""


def test_the_fixtures_fail_with_one_line_naming_option_and_scenario(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # the summary's lines whole
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_tap=TESTS)
    basetemp = pytester.path / "basetemp"

    result = pytester.runpytest_subprocess(
        f"--basetemp={basetemp}", "-p", "no:cacheprovider", "--vpn-impl", "reference-aead", "-rA"
    )

    output = "\n".join(result.outlines)
    result.assert_outcomes(errors=1, failed=1)
    # Each report (the error's, then the failure's) is its heading, then the refusal alone.
    reports = output.split(" ERRORS ")[1].split(" short test summary info ")[0]
    assert [line for line in reports.splitlines() if not line.startswith(("=", "_"))] == [
        REFUSAL,
        REFUSAL,
    ]
    assert f"ERROR test_tap.py::test_through_vpn_tunnel - Failed: {REFUSAL}" in result.outlines
    assert f"FAILED test_tap.py::test_through_the_factory - Failed: {REFUSAL}" in result.outlines
    for noise in ("Traceback", "ImplementationError", "raise ", "vpnsim/impl.py"):
        assert noise not in output, noise
    assert labs_logging_under(basetemp) == []


def test_a_scenario_files_checks_fail_with_the_refusal_alone(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    tap = pytester.path / "seed-tap.toml"
    tap.write_text(Path(TAP_LABEL).read_text())
    checks = len(load_file("seed-tap").checks)
    basetemp = pytester.path / "basetemp"

    result = pytester.runpytest_subprocess(
        f"--basetemp={basetemp}", "-p", "no:cacheprovider", "--vpn-impl", "reference-aead",
        "-o", "vpnsim_scenarios=*.toml", str(tap),
    )  # fmt: skip

    result.assert_outcomes(failed=checks)
    label = load_file(tap).label
    refusal = REFUSAL.replace(TAP_LABEL, label)
    failures = "\n".join(result.outlines).split(" FAILURES ")[1].split(" short test summary ")[0]
    assert [line for line in failures.splitlines() if not line.startswith(("=", "_"))] == (
        [refusal] * checks
    )
    assert "Traceback" not in "\n".join(result.outlines)
    assert labs_logging_under(basetemp) == []
