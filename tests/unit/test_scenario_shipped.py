"""Scenarios by name: the built-in SEED lab (no file format loaded), shipped files in the
package, any path; and the one `--vpn-impl` option every command shares."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from vpnsim.cli.main import build_parser
from vpnsim.model import ScenarioError
from vpnsim.scenario.shipped import SHIPPED_DIR, load_file, resolve, shipped_names
from vpnsim.seed import seed_tunnel


def test_the_builtin_seed_lab_resolves_without_loading_the_file_format() -> None:
    code = (
        "import sys; from vpnsim.scenario.shipped import resolve; "
        "print(resolve('seed-tunnel').path, 'pydantic' in sys.modules)"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout == "None False\n"
    assert resolve("seed-tunnel").scenario == seed_tunnel()
    from_file = load_file("seed-tunnel").scenario  # the same topology, and the checks
    assert dataclasses.replace(from_file, description=seed_tunnel().description) == seed_tunnel()
    assert len(load_file("seed-tunnel").checks) == 11


def test_shipped_names_are_the_package_files() -> None:
    assert shipped_names() == sorted(p.stem for p in SHIPPED_DIR.glob("*.toml"))
    loaded = resolve("example-two-clients")
    assert loaded.path == SHIPPED_DIR / "example-two-clients.toml"
    assert [p.name for p in loaded.programs] == ["client2"]


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ScenarioError) as error:
        resolve("seed-tunel")
    assert str(error.value) == (
        f"unknown scenario 'seed-tunel'; known scenarios: {', '.join(shipped_names())} "
        "(or give a path to a .toml file)"
    )


@pytest.mark.parametrize(
    "command", [["lab", "up"], ["run", "seed-tunnel"], ["demo"]], ids=["lab up", "run", "demo"]
)
def test_every_command_takes_vpn_impl_and_the_old_tunnel_spelling(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    parser = build_parser()
    given = ["--vpn-impl", "client=a", "--tunnel", "server=b"]
    assert parser.parse_args([*command, *given]).vpn_impl == ["client=a", "server=b"]
    with pytest.raises(SystemExit):
        parser.parse_args([*command, "--help"])
    shown = capsys.readouterr().out
    assert "--vpn-impl VALUE" in shown and "--tunnel" not in shown  # the alias is hidden
