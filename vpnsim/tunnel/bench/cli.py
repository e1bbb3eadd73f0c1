"""`vpnsim bench tunnels`: the tunnels side by side on one SEED lab, in one run.

Per round, each contender in turn (the order rotated between rounds): start it (time to
ready: routes in place and one echo through), iperf3 TCP U -> V, iperf3 UDP at full speed
with 64- and 1400-byte datagrams (delivered and lost), then pings (average and p99); the
tunnel processes' CPU time is read around the TCP and the 64-byte UDP tests. Medians and
min-max spread per contender. A report, never a pass/fail timing: on a shared machine say
the load average (printed, and in the JSON's `meta`).

Needs root, iperf3 and ping, and per contender its programs (`nox -s bench` installs
openvpn, wireguard-go and wireguard-tools from Debian); --png needs matplotlib (vpnsim[bench]).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_IMPLS = "reference,reference-aead,openvpn-gcm,wireguard-go,kernel"


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--impl", default=DEFAULT_IMPLS, metavar="A,B,...",
        help=f"contenders, comma-separated (default {DEFAULT_IMPLS}; also reference-offload, "
        "reference-aead-offload, reference-gso, reference-aead-gso)",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="iperf3 TCP test length")
    parser.add_argument("--udp-seconds", type=float, default=3.0, help="each UDP test length")
    parser.add_argument("--pings", type=int, default=200, help="pings per round (0.01 s apart)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="medians per contender")
    parser.add_argument("--png", type=Path, metavar="FILE", help="a chart of the medians")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR",
        help="then one more run of each reference contender under cProfile (DIR/<impl>-<side>"
        ".prof; not in the figures)",
    )  # fmt: skip
    parser.add_argument(
        "--sans-io", action="store_true", help="also the reference protocol's cost per packet"
    )


def add_parser(sub: Any) -> None:
    """`vpnsim bench tunnels` (`sub`: the subparsers of `vpnsim bench`)."""
    tunnels = sub.add_parser(
        "tunnels",
        help="the reference tunnel against OpenVPN, wireguard-go and the kernel, one run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _options(tunnels)
    tunnels.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vpnsim.tunnel.bench.contenders import CONTENDERS, missing_programs
    from vpnsim.tunnel.bench.report import (
        PNG_NEEDS,
        can_write_png,
        summarize,
        table,
        write_json,
        write_png,
    )
    from vpnsim.tunnel.bench.rounds import run_rounds

    names = [n.strip() for n in args.impl.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONTENDERS]
    if unknown or not names:
        known = ", ".join(CONTENDERS)
        print(f"--impl: unknown {', '.join(unknown) or '(none)'}; known: {known}", file=sys.stderr)
        return 2
    if args.png is not None and not can_write_png():
        print(f"--png {args.png}: {PNG_NEEDS}", file=sys.stderr)
        return 2
    missing = missing_programs(names)
    if missing:
        print(
            f"missing programs: {' '.join(missing)} (Debian: apt-get install iperf3 "
            "iputils-ping openvpn wireguard-go wireguard-tools; or `nox -s bench`)",
            file=sys.stderr,
        )
        return 2
    meta = {
        "loadavg_before": os.getloadavg(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "rounds": args.rounds,
        "tcp_seconds": args.seconds,
        "udp_seconds": args.udp_seconds,
        "kernel_tunnel": "vxlan",
    }
    print(f"load average {meta['loadavg_before']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="vpnsim-bench-") as tmp:
        rows = run_rounds(names, args, Path(tmp))
    meta["loadavg_after"] = os.getloadavg()
    summary = summarize(rows)
    print(f"medians of {args.rounds} rounds (load average after {meta['loadavg_after']}):")
    print(table(summary))
    if args.sans_io:
        from vpnsim.tunnel.bench.sansio import sans_io_us_per_packet

        for mode in ("plain", "aead"):
            print(f"sans-IO reference-{mode}: {sans_io_us_per_packet(mode):.2f} us per packet")
    if args.json is not None:
        write_json(args.json, summary, rows, meta)
    if args.png is not None:
        title = f"vpnsim bench tunnels: medians of {args.rounds} rounds, {platform.release()}"
        write_png(args.png, summary, title)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vpnsim.tunnel.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _options(parser)
    return run(parser.parse_args(argv))
