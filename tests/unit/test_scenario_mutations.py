"""Mutated scenario files: whatever is broken, the loader answers with well-formed problem lines
(FILE:LINE: key.path: what) naming the broken key, or accepts a file that is still valid;
never a traceback, never another exception."""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vpnsim.scenario import ScenarioFileError, load
from vpnsim.scenario.lines import format_path

SCENARIOS = sorted((Path(__file__).parents[2] / "vpnsim" / "scenarios").glob("*.toml"))
# Maps whose keys are names the user chooses: a new key there is a new entry, not a typo.
FREE_MAPS = {"networks", "hosts", "sysctls", "names", "users"}
REFERENCES = {"from", "host", "client", "server", "network", "program"}
PROBLEM = re.compile(r"^(?P<file>[^:]+)(:\d+)?: (TOML syntax error: .+|(?P<path>[^:]+): .+)$")

Path_ = tuple[str | int, ...]


def nodes(tree: Any, path: Path_ = ()) -> list[tuple[Path_, Any]]:
    found = [(path, tree)]
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += nodes(value, (*path, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            found += nodes(value, (*path, index))
    return found


def parent_of(tree: Any, path: Path_) -> Any:
    for part in path[:-1]:
        tree = tree[part]
    return tree


def outcome(tmp_path: Path, data: dict[str, Any] | str) -> list[str] | None:
    """None if the file loads; else its problem lines, each checked for form."""
    path = tmp_path / "mutant.toml"
    path.write_text(data if isinstance(data, str) else tomli_w.dumps(data))
    try:
        load(path)
    except ScenarioFileError as exc:
        assert exc.problems, "rejected without a reason"
        for line in exc.problems:
            match = PROBLEM.match(line)
            assert match is not None, line
            assert match["file"] == str(path)
            assert "Traceback" not in line
        return exc.problems
    return None


def shipped(index: int) -> dict[str, Any]:
    return tomllib.loads(SCENARIOS[index % len(SCENARIOS)].read_text())


MUTATION_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@MUTATION_SETTINGS
@given(data=st.data(), which=st.integers(0, len(SCENARIOS) - 1))
def test_an_unknown_key_is_rejected_at_its_path(
    tmp_path: Path, data: st.DataObject, which: int
) -> None:
    tree = shipped(which)
    tables = [
        p for p, v in nodes(tree) if isinstance(v, dict) and (not p or p[-1] not in FREE_MAPS)
    ]
    where = data.draw(st.sampled_from(tables))
    key = data.draw(st.sampled_from(["colour", "adress", "Via", "timeout_s"]))
    target = tree
    for part in where:
        target = target[part]
    if key in target:
        return
    target[key] = 1
    problems = outcome(tmp_path, tree)
    assert problems is not None
    assert any(f"{format_path((*where, key))}: unknown key" in p for p in problems), problems


@MUTATION_SETTINGS
@given(data=st.data(), which=st.integers(0, len(SCENARIOS) - 1))
def test_a_value_of_the_wrong_type_is_rejected_at_its_path(
    tmp_path: Path, data: st.DataObject, which: int
) -> None:
    tree = shipped(which)
    leaves = [
        (p, v)
        for p, v in nodes(tree)
        if isinstance(v, str | int | bool) and "sysctls" not in p and p[-1] != "type"
    ]
    where, value = data.draw(st.sampled_from(leaves))
    wrong: Any = 7 if isinstance(value, str) else ("yes" if isinstance(value, bool) else "seven")
    parent_of(tree, where)[where[-1]] = wrong
    problems = outcome(tmp_path, tree)
    assert problems is not None
    assert any(format_path(where) in p for p in problems), (where, problems)


@MUTATION_SETTINGS
@given(data=st.data(), which=st.integers(0, len(SCENARIOS) - 1))
def test_a_reference_to_nothing_is_rejected_at_its_path(
    tmp_path: Path, data: st.DataObject, which: int
) -> None:
    tree = shipped(which)
    refs = [p for p, v in nodes(tree) if p and p[-1] in REFERENCES and isinstance(v, str)]
    where = data.draw(st.sampled_from(refs))
    parent_of(tree, where)[where[-1]] = "nosuch"
    problems = outcome(tmp_path, tree)
    assert problems is not None
    # "unknown host 'nosuch' (hosts: ...)", or the choices where the key is an enumeration.
    assert any(f"{format_path(where)}: " in p and "nosuch" in p for p in problems), problems


@MUTATION_SETTINGS
@given(data=st.data(), which=st.integers(0, len(SCENARIOS) - 1))
def test_a_deleted_key_leaves_a_valid_file_or_a_clear_rejection(
    tmp_path: Path, data: st.DataObject, which: int
) -> None:
    tree = shipped(which)
    keys = [p for p, _ in nodes(tree) if p and isinstance(p[-1], str)]
    where = data.draw(st.sampled_from(keys))
    mutant = copy.deepcopy(tree)
    del parent_of(mutant, where)[where[-1]]
    outcome(tmp_path, mutant)


@MUTATION_SETTINGS
@given(data=st.data(), which=st.integers(0, len(SCENARIOS) - 1))
def test_corrupted_text_is_either_valid_or_rejected_with_clear_lines(
    tmp_path: Path, data: st.DataObject, which: int
) -> None:
    text = SCENARIOS[which].read_text()
    start = data.draw(st.integers(0, len(text) - 1))
    length = data.draw(st.integers(1, 12))
    insert = data.draw(st.sampled_from(["", "=", "[", "]", '"', "{", "\n", "x"]))
    outcome(tmp_path, text[:start] + insert + text[start + length :])


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_the_unmutated_files_load(path: Path) -> None:
    assert load(path).scenario.hosts
