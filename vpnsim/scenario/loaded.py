"""A scenario once resolved: its topology, and the programs, impairments and checks of its file.

Light on purpose (no pydantic at run time): the built-in SEED lab is a `LoadedScenario` too, so
`lab up`, the fixtures and the start-up target pay nothing for the file format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vpnsim.model import Scenario, ScenarioError

if TYPE_CHECKING:
    from vpnsim.scenario.schema import Check, ImpairmentModel, ProgramModel, TlsModel


class ScenarioFileError(ScenarioError):
    """A scenario is malformed; one line per problem: FILE:LINE: KEY.PATH: what."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario: the topology, its programs and its checks, in file order."""

    path: Path | None  # the file it came from; None: built in, or built in code
    scenario: Scenario
    programs: tuple[ProgramModel, ...] = ()
    checks: tuple[Check, ...] = ()
    impairments: tuple[ImpairmentModel, ...] = ()
    tls: TlsModel | None = None
    names: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # host -> its hosts file

    @property
    def label(self) -> str:
        """How to name it to a user: its file, else its name."""
        return str(self.path) if self.path is not None else self.scenario.name
