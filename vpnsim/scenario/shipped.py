"""Scenarios by name or path: the built-in SEED lab, the files shipped in the package
(vpnsim/scenarios/*.toml, package data, so an installed wheel has them), or any file.
"""

from __future__ import annotations

import os
from pathlib import Path

from vpnsim.model import Scenario, ScenarioError
from vpnsim.scenario.loaded import LoadedScenario
from vpnsim.seed import BUILTIN

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "scenarios"
SCHEMA_FILE = SHIPPED_DIR / "schema.json"


def shipped_names() -> list[str]:
    """Every scenario that can be given by name."""
    return sorted({*BUILTIN, *(p.stem for p in SHIPPED_DIR.glob("*.toml"))})


def is_path(name_or_path: str | Path) -> bool:
    text = str(name_or_path)
    return isinstance(name_or_path, Path) or text.endswith(".toml") or os.sep in text


def resolve(scenario: str | Path | Scenario | LoadedScenario) -> LoadedScenario:
    """A scenario file by path; else by name: built in (no file format to load), or shipped.
    A `Scenario` built in code is checked by the file format's rules."""
    if isinstance(scenario, LoadedScenario):
        return scenario
    if isinstance(scenario, Scenario):
        from vpnsim.scenario.loader import validate

        validate(scenario)
        return LoadedScenario(None, scenario)
    if is_path(scenario):
        return load_file(scenario)
    if scenario in BUILTIN:  # the same topology as its file (a test pins it), no checks
        return LoadedScenario(None, BUILTIN[scenario]())
    return load_file(scenario)


def load_file(name_or_path: str | Path) -> LoadedScenario:
    """The scenario file itself, with its checks: a path, or a shipped name."""
    from vpnsim.scenario.loader import load

    return load(file_of(name_or_path))


def file_of(name_or_path: str | Path) -> Path:
    """A path as given; a name -> its shipped file (an unknown name lists the known ones)."""
    if is_path(name_or_path):
        return Path(name_or_path)
    shipped = SHIPPED_DIR / f"{name_or_path}.toml"
    if shipped.is_file():
        return shipped
    raise ScenarioError(
        f"unknown scenario {str(name_or_path)!r}; known scenarios: "
        f"{', '.join(shipped_names())} (or give a path to a .toml file)"
    )
