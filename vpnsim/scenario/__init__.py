"""Scenario files: the format (schema.py), loading with line numbers (load.py, lines.py),
cross-references (references.py), names of shipped scenarios (shipped.py), what each check does
(checks.py), bringing a scenario up as a lab (bringup.py) and running its checks (runner.py).

The names below load on first use: `from vpnsim.scenario import load` works as before, while a
process that only needs the built-in SEED lab does not import pydantic.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "load": "loader",
    "validate": "loader",
    "json_schema": "loader",
    "to_scenario": "loader",
    "LoadedScenario": "loaded",
    "ScenarioFileError": "loaded",
    "resolve": "shipped",
    "shipped_names": "shipped",
    "cross_check": "references",
    "bring_up": "bringup",
    "ScenarioLab": "bringup",
    "ScenarioRun": "runner",
    "Verdict": "runner",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    if name[:1].isupper():  # the format's models: ReachCheck, ImpairmentModel, ...
        schema = importlib.import_module(f"{__name__}.schema")
        if hasattr(schema, name):
            return getattr(schema, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
