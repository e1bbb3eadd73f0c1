"""The CLI imports only the module of the command it is given; the table saying which module
defines which command matches what the modules define."""

from __future__ import annotations

import argparse
import subprocess
import sys

from vpnsim.cli.main import COMMANDS, build_parser


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


def test_the_table_names_every_command_of_the_whole_parser_in_order() -> None:
    assert _commands(build_parser()) == list(COMMANDS)


def test_a_named_command_builds_the_parser_of_its_module_only() -> None:
    for command, module in COMMANDS.items():
        same_module = [name for name, home in COMMANDS.items() if home == module]
        assert _commands(build_parser(command)) == same_module, command


def test_an_unknown_command_gets_the_whole_parser() -> None:
    assert _commands(build_parser("bogus")) == list(COMMANDS)


def test_lab_commands_import_neither_grading_nor_the_pki_nor_pydantic() -> None:
    code = (
        "import sys; from vpnsim.cli.main import build_parser; build_parser('lab'); "
        "print(sorted(m for m in sys.modules if m.startswith(('vpnsim.grade', 'vpnsim.pki', "
        "'pydantic', 'pyroute2'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
