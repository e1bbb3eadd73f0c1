"""`vpnsim clean`, `vpnsim demo` (what `nox -s lab` runs) and
`vpnsim bench [framework|tunnels]`."""

from __future__ import annotations

import argparse

from vpnsim.cli.common import Subcommands, add_impl_option, impl_of
from vpnsim.errors import HarnessError
from vpnsim.features import preflight


def add_parser(sub: Subcommands) -> None:
    clean = sub.add_parser(
        "clean", help="remove leftover vpnsim labs (not those a running test session owns)"
    )
    clean.add_argument("labs", nargs="*", metavar="LAB", help="only these labs (default: all)")
    clean.add_argument("--all", action="store_true", help="also labs a live process owns")
    clean.set_defaults(run=_clean)

    demo = sub.add_parser("demo", help="bring the SEED lab up, show the tunnel working, tear down")
    add_impl_option(demo)
    demo.set_defaults(run=_demo, owns_labs=True)

    bench = sub.add_parser("bench", help="measure lab start-up, teardown and probe rates")
    _bench_options(bench)
    bench.set_defaults(run=_bench)
    benches = bench.add_subparsers(metavar="WHAT")
    framework = benches.add_parser(
        "framework", help="the framework against Mininet: start, teardown, lab up, examples/s"
    )
    _bench_options(framework)
    framework.add_argument("--examples", type=int, default=400, help="per Hypothesis rate")
    framework.set_defaults(run=_bench_framework)
    from vpnsim.tunnel.bench import cli as tunnels_bench  # stdlib-only until a bench runs

    tunnels_bench.add_parser(benches)


def _bench_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--rounds", type=int, default=5)


def _clean(args: argparse.Namespace) -> int:
    preflight()
    from vpnsim.topology import destroy, list_labs, unowned_labs

    labs = list_labs() if args.all else unowned_labs()
    if args.labs:
        owned = sorted(set(args.labs) & set(list_labs()) - set(labs))
        if owned:
            raise HarnessError(
                f"lab(s) owned by a running process: {', '.join(owned)} (use --all to force)"
            )
        labs = [name for name in labs if name in args.labs]
    for name in labs:
        destroy(name)
    print(f"removed {len(labs)} lab(s){': ' + ', '.join(labs) if labs else ''}")
    from vpnsim.grade.workcopy import WORK_ROOT, remove_stale

    copies = remove_stale(WORK_ROOT)
    if copies:
        print(f"removed {len(copies)} work copies of killed graders under {WORK_ROOT}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    impl = impl_of(args)
    preflight()
    from vpnsim.demo import run_demo

    return run_demo(impl)


def _bench(args: argparse.Namespace) -> int:
    preflight()
    from vpnsim.bench.overview import run_bench

    return run_bench(rounds=args.rounds, json_path=args.json)


def _bench_framework(args: argparse.Namespace) -> int:
    preflight()
    from vpnsim.bench.framework import run_framework_bench

    return run_framework_bench(rounds=args.rounds, json_path=args.json, examples=args.examples)
