"""`vpnsim draw SCENARIO`: the topology as a self-contained, deterministic SVG (vpnsim.draw)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vpnsim.cli.common import EXIT_USAGE, Subcommands


def add_parser(sub: Subcommands) -> None:
    draw = sub.add_parser(
        "draw",
        help="draw a scenario's topology as SVG (no root needed)",
        description="Write the topology of a scenario (hosts, networks, addresses, the "
        "tunnel's ends, impaired links) as a self-contained SVG. The same scenario always "
        "gives the same bytes.",
    )
    draw.add_argument(
        "scenario", metavar="SCENARIO", help="a scenario name (e.g. seed-tap) or a .toml file"
    )
    draw.add_argument("-o", "--output", metavar="FILE", help="write the SVG here (default: stdout)")
    draw.set_defaults(run=_draw)


def _draw(args: argparse.Namespace) -> int:
    from vpnsim.draw import render
    from vpnsim.scenario.loaded import ScenarioFileError
    from vpnsim.scenario.shipped import resolve

    try:
        loaded = resolve(args.scenario)  # names resolve as for `vpnsim lab up`
    except ScenarioFileError as exc:
        print(exc, file=sys.stderr)  # exactly what `vpnsim validate` prints for the file
        return EXIT_USAGE
    wires = {entry.link: entry.impairment() for entry in loaded.impairments}
    svg = render(loaded.scenario, wires)
    if args.output:
        Path(args.output).write_text(svg, encoding="utf-8")
    else:
        sys.stdout.write(svg)
    return 0
