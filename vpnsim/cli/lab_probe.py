"""`vpnsim lab probe`: ICMP, UDP or TCP from a host, the answer compared, tunnel evidence shown."""

from __future__ import annotations

import argparse
from pathlib import Path

from vpnsim.cli.common import EXIT_FINDING, Subcommands, attach
from vpnsim.errors import HarnessError
from vpnsim.traffic.errors import ProbeFailed


def add_parser(lab: Subcommands) -> None:
    probe = lab.add_parser(
        "probe", help="send ICMP/UDP/TCP from a host, compare the answer, show tunnel evidence"
    )
    probe.add_argument("name")
    probe.add_argument("host", help="the sending host, e.g. U")
    probe.add_argument("dst", help="destination address, e.g. 192.168.60.5")
    kind = probe.add_mutually_exclusive_group()
    kind.add_argument("--udp", action="store_true", help="UDP to the echo service (port 7)")
    kind.add_argument("--tcp", action="store_true", help="TCP to the echo service (port 7)")
    probe.add_argument("--size", type=int, default=56, help="payload bytes (default 56)")
    probe.add_argument("--timeout", type=float, default=2.0, help="seconds (default 2)")
    probe.add_argument(
        "--count",
        type=int,
        metavar="N",
        help="ICMP only: N echo requests, as ping -c; reports which were lost, damaged, doubled",
    )
    probe.add_argument(
        "--interval",
        type=float,
        default=0.01,
        metavar="S",
        help="seconds between the --count requests (default 0.01)",
    )
    probe.add_argument("--pcap", metavar="FILE", help="save the server's outer link capture")
    probe.set_defaults(run=_probe)


def _probe(args: argparse.Namespace) -> int:
    if args.count is not None and (args.udp or args.tcp):
        raise HarnessError("--count sends ICMP echo requests: leave out --udp/--tcp")
    if args.count is not None and args.count < 1:
        raise HarnessError(f"--count {args.count}: at least 1")
    lab = attach(args.name)
    from vpnsim.traffic.probes import Probes
    from vpnsim.vpn import find_tunnel

    lab.ns(args.host)  # an unknown host is a usage error before anything is sent
    tunnel = find_tunnel(lab)
    probes = Probes(lab, tunnel, args.timeout)
    payload = bytes(i % 256 for i in range(args.size))
    kind = "UDP" if args.udp else "TCP" if args.tcp else "ICMP"

    def send() -> str:
        """The probe's one-line outcome; raises ProbeFailed when it fails outright."""
        if args.count is not None:
            series = probes.ping_series(args.host, args.dst, args.count, payload, args.interval)
            # A lossy link loses packets, but a tunnel must never change one: a series
            # with no reply intact fails.
            if len(series.replies) == len(series.damaged):
                raise ProbeFailed(series.line())
            return series.line()
        if args.udp:
            got = probes.udp(args.host, args.dst, payload)
        elif args.tcp:
            got = probes.tcp(args.host, args.dst, payload)
        else:
            got = probes.ping(args.host, args.dst, payload).payload
        if got != payload:
            raise ProbeFailed(f"{len(got)} bytes back, not what was sent")
        return f"{len(got)} bytes back, identical"

    running = [program for program in lab.programs if program.running()]
    outcome, failure = "", ""
    try:
        if tunnel is None:
            outcome = send()
        else:
            with probes.evidence(Path(args.pcap) if args.pcap else None) as rec:
                try:
                    outcome = send()
                except ProbeFailed as exc:
                    failure = str(exc)
    except ProbeFailed as exc:
        failure = str(exc)
    except ValueError as exc:  # a size out of range, or no host owns the address
        raise HarnessError(str(exc)) from None
    finally:
        lab.close()
    print(f"{kind} {args.host} -> {args.dst}: " + (f"FAIL: {failure}" if failure else outcome))
    if tunnel is not None:
        for line in rec.result.lines():
            print(f"  {line}")
    died = [program for program in running if not program.running()]
    for program in died:  # a finding about that program: its last words are the evidence
        print(f"  program {program.label} exited during the probe; its stderr ends:")
        print("\n".join(f"    {line}" for line in program.stderr_tail(6).splitlines()))
    return EXIT_FINDING if failure or died else 0
