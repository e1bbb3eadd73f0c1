"""The `vpnsim` command: one module per command group, each with `add_parser(sub)`.

lab.py (lab up/status/list/exec/shell/capture/down), lab_probe.py (lab probe), lab_impair.py
(lab impair), scenarios.py (run, validate, schema), draw.py, maintenance.py (clean, demo,
bench), and `vpnsim.grade.cli` (grade). main.py puts them together and is the one place that
turns errors into exit codes.
"""

from vpnsim.cli.main import main

__all__ = ["main"]
