"""`vpnsim run`, `vpnsim validate` and `vpnsim schema`: scenario files, by path or shipped name."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vpnsim.cli.common import EXIT_FINDING, EXIT_USAGE, Subcommands, add_impl_option, impl_of
from vpnsim.features import preflight


def add_parser(sub: Subcommands) -> None:
    run = sub.add_parser(
        "run",
        help="build scenarios, run their checks, print a verdict each",
        description="Build each scenario as a lab, run its checks in file order and print a "
        "PASS or FAIL each (a failure with what was expected, what was seen and its evidence). "
        "Every file, and --vpn-impl against every tunnel, is checked before any lab is built. "
        "Exit status: 0 all passed, 1 a check failed, 2 a usage or harness error.",
    )
    run.add_argument(
        "scenarios", nargs="+", metavar="SCENARIO", help="scenario files (.toml) or shipped names"
    )
    add_impl_option(run)
    run.add_argument("--keep", action="store_true", help="leave each lab up after its checks")
    run.add_argument("--artifacts", metavar="DIR", help="logs and evidence (default: a temp dir)")
    run.set_defaults(run=_run, owns_labs=True)

    validate = sub.add_parser("validate", help="check scenario files (no root needed)")
    validate.add_argument(
        "files", nargs="+", metavar="SCENARIO", help="scenario files (.toml) or shipped names"
    )
    validate.set_defaults(run=_validate)

    schema = sub.add_parser("schema", help="print the JSON Schema of scenario files")
    schema.set_defaults(run=_schema)


def _validate(args: argparse.Namespace) -> int:
    from vpnsim.model import ScenarioError
    from vpnsim.scenario.shipped import load_file

    failed = 0
    for given in args.files:
        try:
            loaded = load_file(given)
        except ScenarioError as exc:  # a malformed file, or an unknown name
            failed += 1
            print(exc, file=sys.stderr)
            continue
        print(f"{given}: ok ({len(loaded.scenario.hosts)} hosts, {len(loaded.checks)} checks)")
    return EXIT_USAGE if failed else 0


def _schema(args: argparse.Namespace) -> int:
    import json

    from vpnsim.scenario.loader import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def _run(args: argparse.Namespace) -> int:
    import tempfile

    from vpnsim.scenario.shipped import load_file

    loaded = [load_file(given) for given in args.scenarios]  # every file valid before any lab
    impl = impl_of(args)
    for scenario in loaded:  # and runnable by the implementation: refused before any lab
        impl.check_tunnel(scenario.scenario.tunnel, scenario.label)
    preflight()
    from vpnsim.scenario.runner import ScenarioRun

    artifacts = Path(args.artifacts or tempfile.mkdtemp(prefix="vpnsim-run-"))
    passed = failed = 0
    for scenario in loaded:
        print(f"{scenario.label}: {scenario.scenario.description or scenario.scenario.name}")
        run = ScenarioRun(scenario, artifacts, impl, owner_pid=None if args.keep else os.getpid())
        try:
            for check in scenario.checks:
                verdict = run.check(check)
                passed, failed = passed + verdict.passed, failed + (not verdict.passed)
                for line in verdict.lines():
                    print(f"  {line}", flush=True)
        finally:
            run.close(keep=args.keep)
        if args.keep and run.lab is not None:
            print(f"  lab {run.lab.name} left up: `vpnsim lab down {run.lab.name}`")
    print(f"{passed} passed, {failed} failed; logs and evidence in {artifacts}")
    return 0 if failed == 0 else EXIT_FINDING
