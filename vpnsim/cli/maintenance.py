"""`vpnsim clean`, `vpnsim demo` (what `nox -s lab` runs) and
`vpnsim bench [framework|tunnels]`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from vpnsim.cli.common import Subcommands, add_impl_option, impl_of
from vpnsim.errors import HarnessError, UsageError
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

    bench = sub.add_parser(
        "bench",
        help="lab start-up, teardown and probe rates; `bench framework`: against Mininet; "
        "`bench tunnels`: the reference tunnel against others",
        description="Without WHAT: lab start-up, teardown and probe rates. A WHAT takes its "
        "own options, after its name (`vpnsim bench framework --rounds 3`).",
    )
    # Their own dests: a WHAT's options of the same names would overwrite them unseen.
    bench.add_argument("--json", dest="overview_json", metavar="FILE", help=JSON_HELP)
    bench.add_argument(
        "--rounds", dest="overview_rounds", type=int, metavar="N",
        help=f"rounds (default {OVERVIEW_ROUNDS})",
    )  # fmt: skip
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
    for what in benches.choices.values():
        what.set_defaults(run=_refusing_overview_options(what.get_default("run")))


JSON_HELP = "also write the figures as JSON"
OVERVIEW_ROUNDS = 5


def _bench_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="FILE", help=JSON_HELP)
    parser.add_argument(
        "--rounds", type=int, default=OVERVIEW_ROUNDS, metavar="N",
        help=f"rounds (default {OVERVIEW_ROUNDS})",
    )  # fmt: skip


def _refusing_overview_options(run: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """`vpnsim bench --rounds 3 framework` would run framework's default rounds: refused."""

    def checked(args: argparse.Namespace) -> int:
        given = [
            f"--{name}"
            for name in ("json", "rounds")
            if getattr(args, f"overview_{name}") is not None
        ]
        if given:
            raise UsageError(
                f"vpnsim bench {' '.join(given)} before a WHAT: give a WHAT's options after "
                "its name (`vpnsim bench framework --rounds 3`)"
            )
        return run(args)

    return checked


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
    if args.labs:  # asked for these labs only: nothing else of the machine's is touched
        return 0
    from vpnsim.grade import workcopy

    copies = workcopy.remove_stale(workcopy.WORK_ROOT)
    if copies:
        print(f"removed {len(copies)} work copies of killed graders under {workcopy.WORK_ROOT}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    impl = impl_of(args)
    preflight()
    from vpnsim.demo import run_demo

    return run_demo(impl)


def _bench(args: argparse.Namespace) -> int:
    preflight()
    from vpnsim.bench.overview import run_bench

    rounds = OVERVIEW_ROUNDS if args.overview_rounds is None else args.overview_rounds
    return run_bench(rounds=rounds, json_path=args.overview_json)


def _bench_framework(args: argparse.Namespace) -> int:
    preflight()
    from vpnsim.bench.framework import run_framework_bench

    return run_framework_bench(rounds=args.rounds, json_path=args.json, examples=args.examples)
