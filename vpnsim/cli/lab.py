"""`vpnsim lab ...`: bring a lab up, look at it, run commands in it, capture, take it down.
(`lab probe` and `lab impair` are lab_probe.py and lab_impair.py.)"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from vpnsim import proc
from vpnsim.cli import lab_impair, lab_probe
from vpnsim.cli.common import (
    EXIT_FINDING,
    LAB_NAME_HELP,
    Subcommands,
    add_impl_option,
    attach,
    impl_of,
)
from vpnsim.errors import HarnessError
from vpnsim.features import preflight
from vpnsim.seed import DEFAULT_SCENARIO

if TYPE_CHECKING:
    from vpnsim.topology import Lab


def add_parser(sub: Subcommands) -> None:
    lab = sub.add_parser("lab", help="build and work with a lab").add_subparsers(metavar="ACTION")
    up = lab.add_parser("up", help="build a lab and print its name")
    up.add_argument(
        "scenario",
        nargs="?",
        default=DEFAULT_SCENARIO,
        help=f"a scenario name (e.g. seed-tap) or file (default {DEFAULT_SCENARIO})",
    )
    up.add_argument("--name", help="lab name (default: generated)")
    add_impl_option(up, "; none: no tunnel, just the topology and its programs")
    up.set_defaults(run=_up)

    status = lab.add_parser("status", help="hosts, interfaces, routes and programs of a lab")
    status.add_argument("name", help=LAB_NAME_HELP)
    status.set_defaults(run=_status)

    list_ = lab.add_parser("list", help="names of the labs on this machine")
    list_.set_defaults(run=_list)

    exec_ = lab.add_parser("exec", help="run a command on a host; exits with its status")
    exec_.add_argument("name", help=LAB_NAME_HELP)
    exec_.add_argument("host")
    exec_.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ...")
    exec_.set_defaults(run=_exec)

    lab_probe.add_parser(lab)
    lab_impair.add_parser(lab)

    capture = lab.add_parser("capture", help="capture a host's link to a pcap file")
    capture.add_argument("name", help=LAB_NAME_HELP)
    capture.add_argument("link", help="HOST:IFNAME as `lab status` prints it, e.g. U:eth0")
    capture.add_argument("file", help="the pcap file to write (tcpdump -r, Wireshark)")
    capture.add_argument("--duration", type=float, help="seconds (default: until Ctrl-C)")
    capture.add_argument("--count", type=int, help="stop after this many frames")
    capture.set_defaults(run=_capture)

    shell = lab.add_parser("shell", help="an interactive shell on a host")
    shell.add_argument("name", help=LAB_NAME_HELP)
    shell.add_argument("host")
    shell.set_defaults(run=_shell)

    down = lab.add_parser("down", help="stop a lab's programs and remove its namespaces")
    down.add_argument("name", help=LAB_NAME_HELP)
    down.set_defaults(run=_down)


def _up(args: argparse.Namespace) -> int:
    from vpnsim.scenario.shipped import resolve

    loaded = resolve(args.scenario)  # a bad name or file is said before anything is built
    impl = None if args.vpn_impl == ["none"] else impl_of(args)
    preflight()
    # Owned by this process while it builds, so a concurrent `vpnsim clean` leaves it alone;
    # handed over (no owner) once up, to be removed by `lab down` or `clean`.
    from vpnsim.scenario.bringup import bring_up

    up = bring_up(loaded, impl, name=args.name, owner_pid=os.getpid())
    up.close(keep=True)
    lab = up.lab
    lab.owner_pid = None
    lab.save()
    lab.close()
    print(lab.name)
    return 0


def _list(args: argparse.Namespace) -> int:
    from vpnsim.topology import list_labs

    for name in list_labs():
        print(name)
    return 0


def _status(args: argparse.Namespace) -> int:
    lab = attach(args.name)
    from vpnsim.impair.link import wire_on, wired_links

    wires = {}
    for wired in wired_links(lab):
        wire = wire_on(lab, wired)
        wires[wired] = wire.stats().impairment.describe() if wire else "(its process is gone)"
    print(f"lab {lab.name}: scenario {lab.scenario.name}, logs in {lab.log_dir}")
    for host in lab.scenario.hosts:
        rtnl = lab.rtnl(host.name)
        print(f"  {host.name}  (netns {lab.ns(host.name)})")
        # By name: the order links were made in depends on whether the tunnel started early.
        for link in sorted(rtnl.links(), key=lambda link: link.name):
            if link.name == "lo":
                continue
            kind = f" {link.tun_mode.upper()}" if link.tun_mode else ""
            state = "UP" if link.up else "DOWN"
            addrs = " ".join(link.addresses) or "-"
            print(f"    link {host.name}:{link.name}{kind} {state} mtu {link.mtu} {addrs}")
            if f"{host.name}:{link.name}" in wires:
                print(f"      wire: {wires[f'{host.name}:{link.name}']}")
        for route in rtnl.routes():
            via = f" via {route.gateway}" if route.gateway else ""
            print(f"    route {route.dst}{via} dev {route.dev}")
    for program in lab.programs:
        state = "running" if program.running() else "exited"
        print(f"  program {program.label}: {state}; stderr {program.stderr_path}")
    lab.close()
    return 0


def _host_command(lab: Lab, host: str, command: list[str]) -> int:
    try:
        child = proc.popen_in(lab.ns(host), command)
    except FileNotFoundError:
        raise HarnessError(f"command not found on {host}: {command[0]}") from None
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:  # the terminal's Ctrl-C reached the command too: its call
            continue


def _exec(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise HarnessError("nothing to run: vpnsim lab exec NAME HOST -- CMD ...")
    lab = attach(args.name)
    return _host_command(lab, args.host, command)


def _capture(args: argparse.Namespace) -> int:
    import signal

    lab = attach(args.name)
    from vpnsim.net.namespace import exists
    from vpnsim.traffic.capture import Capture

    host, _, ifname = args.link.partition(":")
    lab.ns(host)  # an unknown host is a usage error
    names = sorted(link.name for link in lab.rtnl(host).links())
    lab.close()
    if ifname not in names:
        links = ", ".join(f"{host}:{name}" for name in names if name != "lo")
        raise HarnessError(f"link {args.link!r}: {host} has {links}")
    deadline = None if args.duration is None else time.monotonic() + args.duration
    capture = Capture(lab.ns(host), ifname)
    print(f"capturing {args.link} to {args.file}; Ctrl-C to stop", file=sys.stderr, flush=True)

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)  # `kill PID` saves the file like Ctrl-C
    try:
        # Also stops when the lab goes down: the socket would keep its namespace alive.
        while (
            (deadline is None or time.monotonic() < deadline)
            and (args.count is None or len(capture.frames) < args.count)
            and exists(lab.ns(host))
        ):
            time.sleep(0.01)
    except KeyboardInterrupt:
        pass
    frames = capture.stop()
    if args.count is not None:
        del frames[args.count :]
    capture.save(Path(args.file))
    print(f"{len(frames)} frames from {args.link} written to {args.file}")
    return 0


def _shell(args: argparse.Namespace) -> int:
    lab = attach(args.name)
    shell = os.environ.get("SHELL", "/bin/bash")
    os.environ["PS1"] = f"[{args.host}@{lab.name}] \\w# "
    return _host_command(lab, args.host, [shell, "--norc"] if shell.endswith("bash") else [shell])


def _down(args: argparse.Namespace) -> int:
    preflight()
    from vpnsim.topology import destroy, list_labs

    if args.name not in list_labs():
        running = ", ".join(list_labs()) or "none"
        raise HarnessError(f"no lab named {args.name!r} (running labs: {running})")
    report = destroy(args.name)
    print(
        f"lab {args.name} down: {len(report.killed)} processes killed, "
        f"{len(report.namespaces_removed)} namespaces removed"
    )
    return 0 if not report.survivors else EXIT_FINDING
