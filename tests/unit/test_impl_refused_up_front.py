"""An implementation the scenario's tunnel cannot run (a reference variant on the TAP lab: the
reference's AEAD and offload modes are TUN only) is refused before any namespace is made, by
every front end: `vpnsim run`, `bring_up` (`lab up`, the fixtures) and `ScenarioRun` (the
scenario items). Here with namespace creation replaced by a recorder; tests/lab runs the
commands and a pytest session for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpnsim.cli.main import main
from vpnsim.impl import VARIANTS, ImplementationError
from vpnsim.scenario.shipped import load_file

TAP = load_file("seed-tap")


@pytest.fixture
def namespaces_made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the namespaces anything asks for; none is made."""
    made: list[str] = []

    def create(name: str, **_: object) -> None:
        made.append(name)
        raise AssertionError(f"namespace {name} made: the refusal came too late")

    monkeypatch.setattr("vpnsim.net.namespace.create", create)
    return made


def refusal(variant: str) -> str:
    return (
        f"--vpn-impl {variant}: the reference's AEAD, offload and GSO modes are TUN only, and "
        f"scenario {TAP.label}'s tunnel is mode 'tap'"
    )


def test_run_refuses_before_any_lab_and_says_so_in_one_line(
    namespaces_made: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "seed-tunnel", "seed-tap", "--vpn-impl", "reference-aead"]
    assert main([*argv, "--artifacts", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"vpnsim: error: {refusal('reference-aead')}\n")
    assert (namespaces_made, list(tmp_path.iterdir())) == ([], [])


def test_bring_up_refuses_before_building(namespaces_made: list[str]) -> None:
    from vpnsim.scenario.bringup import bring_up

    with pytest.raises(ImplementationError) as raised:
        bring_up(TAP, VARIANTS["reference-offload"], name="never-built")
    assert str(raised.value) == refusal("reference-offload")
    assert namespaces_made == []


def test_a_scenario_run_refuses_before_its_first_check(
    namespaces_made: list[str], tmp_path: Path
) -> None:
    from vpnsim.scenario.runner import ScenarioRun

    run = ScenarioRun(TAP, tmp_path, VARIANTS["reference-aead-offload"])
    with pytest.raises(ImplementationError) as raised:
        run.check(TAP.checks[0])  # a before-tunnel check: the old refusal came only later
    assert str(raised.value) == refusal("reference-aead-offload")
    assert (run.lab, namespaces_made) == (None, [])


def test_the_plain_reference_and_every_variant_on_a_tun_tunnel_are_accepted() -> None:
    tun = load_file("seed-tunnel").scenario.tunnel
    for impl in VARIANTS.values():
        impl.check_tunnel(tun, "seed-tunnel")
    VARIANTS["reference"].check_tunnel(TAP.scenario.tunnel, TAP.label)
    VARIANTS["reference-aead"].check_tunnel(None, "a scenario with no [tunnel]")
