"""What `--help` prints is the help of the command asked about."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from vpnsim.cli.main import build_parser, main
from vpnsim.grade.cli import merge_parser


def _help(*argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "vpnsim", *argv], capture_output=True, text=True, check=True
    )
    assert done.stderr == ""
    return done.stdout


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def test_grade_merge_help_is_merges_own() -> None:
    for argv in (["grade", "merge", "--help"], ["grade", "merge", "a.json", "-h"]):
        text = _help(*argv)
        usage, options = text.split("\n\n")[0], text.split("\noptions:\n")[1]
        assert usage.startswith("usage: vpnsim grade merge "), argv
        assert "REPORT.json [REPORT.json ...]" in usage
        assert "--json FILE" in options and "--out DIR" in options
        for grading_only in ("SUBMISSION", "--jobs", "--rubric", "--shard", "--lab"):
            assert grading_only not in usage + options, (argv, grading_only)


def test_grade_help_is_grades_and_points_to_merges() -> None:
    text = _help("grade", "--help")
    assert text.startswith("usage: vpnsim grade [-h] ")
    assert "SUBMISSION [SUBMISSION ...]" in text and "--shard I/N" in text
    assert "`vpnsim grade merge --help`" in " ".join(text.split())


def test_merge_documents_only_options_the_grade_parser_reads() -> None:
    """`grade merge` is parsed by the grade parser: each option merge's help shows must be
    one it knows, with the same default."""
    sub = build_parser("grade")._subparsers
    assert sub is not None
    grade = sub._group_actions[0].choices["grade"]  # type: ignore[attr-defined]
    merge = merge_parser("vpnsim grade")
    assert _options(merge) == {"-h", "--help", "--out", "--json", "--junit", "--html"}
    assert _options(merge) <= _options(grade)
    for option in ("out", "json", "junit", "html"):
        assert merge.get_default(option) == grade.get_default(option), option


def test_bench_help_names_what_its_own_options_are_for() -> None:
    text = " ".join(_help("bench", "--help").split())
    assert "Without WHAT: lab start-up, teardown and probe rates." in text
    assert "--rounds N rounds (default 5)" in text


@pytest.mark.parametrize("what", ["framework", "tunnels"])
@pytest.mark.parametrize("option", [["--rounds", "2"], ["--json", "figures.json"]])
def test_bench_options_before_a_what_are_refused_not_ignored(
    what: str,
    option: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """They went to bare `bench`'s options and the WHAT ran with its defaults."""

    def ran(args: object) -> int:
        raise AssertionError(f"bench {what} ran")

    # Each WHAT's command, as the parser finds it: never a real bench, even if this fails.
    monkeypatch.setattr("vpnsim.cli.maintenance._bench_framework", ran)
    monkeypatch.setattr("vpnsim.tunnel.bench.cli.run", ran)
    assert main(["bench", *option, what]) == 2
    assert capsys.readouterr() == (
        "",
        f"vpnsim: error: vpnsim bench {option[0]} before a WHAT: give a WHAT's options after "
        "its name (`vpnsim bench framework --rounds 3`)\n",
    )


def test_bench_options_go_to_the_command_they_follow() -> None:
    parser = build_parser("bench")
    bare = parser.parse_args(["bench", "--rounds", "2", "--json", "f.json"])
    assert (bare.overview_rounds, bare.overview_json) == (2, "f.json")
    framework = parser.parse_args(["bench", "framework", "--rounds", "2"])
    assert (framework.rounds, framework.overview_rounds, framework.overview_json) == (2, None, None)
