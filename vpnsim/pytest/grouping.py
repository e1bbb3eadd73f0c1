"""Under `pytest -n`, a scenario file's checks run on one worker, in file order.

They share one lab and build on each other (a check's setup stays for the next; a server
learns a client from an earlier check's packets), so xdist's default `load` scheduler, which
hands items out one by one, would split them. This scheduler is `load` for every other item
and keeps each scenario file whole. (xdist's own `loadgroup` with `xdist_group` marks would
do it, but xdist 3.8 renames items through an attribute pytest 9 no longer reads.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def make_scheduler(config: Any, log: Any, is_scenario_file: Callable[[str], bool]) -> Any:
    """A LoadScopeScheduling whose scope is a scenario item's file, else the item itself."""
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class ScenarioFilesTogether(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid, is_scenario_file)

    return ScenarioFilesTogether(config, log)


def scope_of(nodeid: str, is_scenario_file: Callable[[str], bool]) -> str:
    """The unit a worker gets: a scenario file's items together, any other item alone."""
    path = nodeid.split("::", 1)[0]
    return path if is_scenario_file(path) else nodeid
