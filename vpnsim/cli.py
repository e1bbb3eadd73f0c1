"""The `vpnsim` command: lab up/status/exec/shell/down, run, grade, clean, demo, bench.

Harness problems (not root, unknown lab or host) print one line saying what to do and exit 2;
a failing program under test exits 1 with its stderr. Nothing is left behind on either path.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vpnsim import proc
from vpnsim.errors import HarnessError
from vpnsim.features import preflight
from vpnsim.impair.spec import ImpairmentError
from vpnsim.model import ScenarioError
from vpnsim.net.namespace import NETNS_DIR
from vpnsim.proc import ProgramFailed
from vpnsim.seed import BUILTIN, DEFAULT_SCENARIO, builtin_scenario
from vpnsim.traffic.errors import ProbeFailed
from vpnsim.traffic.icmp import numbered

if TYPE_CHECKING:
    from vpnsim.impair.spec import Impairment
    from vpnsim.model import Scenario
    from vpnsim.topology import Lab
    from vpnsim.traffic.icmp import EchoSeries

# Commands import the netlink layer (pyroute2) only after `preflight()`: a user without root
# gets the one-line explanation fast, even where pyroute2 is not importable for them.

EXIT_FINDING = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except ProgramFailed as exc:
        print(f"vpnsim: program under test failed: {exc}", file=sys.stderr)
        return EXIT_FINDING
    except (HarnessError, ScenarioError, ImpairmentError) as exc:
        print(f"vpnsim: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `vpnsim lab status NAME | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vpnsim", description="The SEED VPN labs in Linux network namespaces."
    )
    sub = parser.add_subparsers(metavar="COMMAND")

    demo = sub.add_parser("demo", help="bring the SEED lab up, show the tunnel working, tear down")
    demo.add_argument(
        "--vpn-impl",
        action="append",
        metavar="VALUE",
        help="reference (default), a folder with tun_client.py/tun_server.py, "
        "or client=CMD / server=CMD",
    )
    demo.set_defaults(run=_demo)

    lab = sub.add_parser("lab", help="build and work with a lab").add_subparsers(metavar="ACTION")
    up = lab.add_parser("up", help="build a lab and print its name")
    up.add_argument(
        "scenario",
        nargs="?",
        default=DEFAULT_SCENARIO,
        help=f"a scenario name (e.g. seed-tap) or file (default {DEFAULT_SCENARIO})",
    )
    up.add_argument("--name", help="lab name (default: generated)")
    up.add_argument(
        "--tunnel",
        default="reference",
        metavar="reference|none|VALUE",
        help="start the reference tunnel (default), none, or a --vpn-impl value",
    )
    up.set_defaults(run=_lab_up)

    status = lab.add_parser("status", help="hosts, interfaces, routes and programs of a lab")
    status.add_argument("name")
    status.set_defaults(run=_lab_status)

    list_ = lab.add_parser("list", help="names of the labs on this machine")
    list_.set_defaults(run=_lab_list)

    exec_ = lab.add_parser("exec", help="run a command on a host; exits with its status")
    exec_.add_argument("name")
    exec_.add_argument("host")
    exec_.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ...")
    exec_.set_defaults(run=_lab_exec)

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
    probe.set_defaults(run=_lab_probe)

    _impair_parser(lab)
    capture = lab.add_parser("capture", help="capture a host's link to a pcap file")
    capture.add_argument("name")
    capture.add_argument("link", help="HOST:IFNAME as `lab status` prints it, e.g. U:eth0")
    capture.add_argument("file", help="the pcap file to write (tcpdump -r, Wireshark)")
    capture.add_argument("--duration", type=float, help="seconds (default: until Ctrl-C)")
    capture.add_argument("--count", type=int, help="stop after this many frames")
    capture.set_defaults(run=_lab_capture)

    shell = lab.add_parser("shell", help="an interactive shell on a host")
    shell.add_argument("name")
    shell.add_argument("host")
    shell.set_defaults(run=_lab_shell)

    down = lab.add_parser("down", help="stop a lab's programs and remove its namespaces")
    down.add_argument("name")
    down.set_defaults(run=_lab_down)

    run = sub.add_parser("run", help="build scenarios, run their checks, print a verdict each")
    run.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario files (.toml)")
    run.add_argument(
        "--tunnel",
        action="append",
        metavar="VALUE",
        help="reference (default), a folder with tun_client.py/tun_server.py, "
        "or client=CMD / server=CMD (repeatable)",
    )
    run.add_argument("--keep", action="store_true", help="leave each lab up after its checks")
    run.add_argument("--artifacts", metavar="DIR", help="logs and evidence (default: a temp dir)")
    run.set_defaults(run=_run)

    validate = sub.add_parser("validate", help="check scenario files (no root needed)")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.set_defaults(run=_validate)

    schema = sub.add_parser("schema", help="print the JSON Schema of scenario files")
    schema.set_defaults(run=_schema)

    from vpnsim import draw

    draw.add_parser(sub)

    clean = sub.add_parser(
        "clean", help="remove leftover vpnsim labs (not those a running test session owns)"
    )
    clean.add_argument("labs", nargs="*", metavar="LAB", help="only these labs (default: all)")
    clean.add_argument("--all", action="store_true", help="also labs a live process owns")
    clean.set_defaults(run=_clean)

    bench = sub.add_parser("bench", help="measure lab start-up, teardown and probe rates")
    bench.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    bench.add_argument("--rounds", type=int, default=5)
    bench.set_defaults(run=_bench)

    from vpnsim.grade import cli as grade_cli

    grade_cli.add_parser(sub)
    return parser


def _impair_parser(lab: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    impair = lab.add_parser(
        "impair",
        help="seeded loss, delay, duplication, reordering, corruption, rate on a link",
        description="Put a seeded userspace wire on a link and set its impairment: the same "
        "seed and traffic give the same packet fates. Without flags, show its counters.",
    )
    impair.add_argument("name")
    impair.add_argument("link", help="HOST:IFNAME as `lab status` prints it, e.g. U:eth0")
    impair.add_argument("--seed", type=int, default=0, help="seed of the packet fates")
    impair.add_argument("--loss", type=float, default=0.0, metavar="P", help="loss chance")
    impair.add_argument(
        "--burst", metavar="P,R[,LB[,LG]]", help="Gilbert-Elliott loss instead of --loss"
    )
    impair.add_argument("--delay", type=float, default=0.0, metavar="MS")
    impair.add_argument("--jitter", type=float, default=0.0, metavar="MS")
    impair.add_argument("--dup", type=float, default=0.0, metavar="P")
    impair.add_argument("--reorder", type=float, default=0.0, metavar="P")
    impair.add_argument("--corrupt", type=float, default=0.0, metavar="P")
    impair.add_argument(
        "--corrupt-bytes", metavar="A-B", help="corrupt only bytes A..B of the IP packet"
    )
    impair.add_argument(
        "--fix-checksums", action="store_true", help="recompute checksums after corrupting"
    )
    impair.add_argument("--rate", help="e.g. 10mbit, 512kbit")
    impair.add_argument("--mtu", type=int, help="drop IP packets longer than this")
    impair.add_argument(
        "--schedule", metavar="EVENTS", help="named packets, e.g. 3:drop,7:drop,5:dup"
    )
    impair.add_argument("--direction", choices=("both", "out", "in"), default="both")
    what = impair.add_mutually_exclusive_group()
    what.add_argument("--clear", action="store_true", help="a clean wire (forward only)")
    what.add_argument("--remove", action="store_true", help="take the wire out of the link")
    what.add_argument("--log", action="store_true", help="print each packet's fate as JSON")
    impair.add_argument(
        "--netem", action="store_true", help="the kernel's netem instead (unseeded; if present)"
    )
    impair.set_defaults(run=_lab_impair)


# Scenario files shipped beside the package (a checkout or an editable install).
SHIPPED_SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def _scenario(name_or_path: str) -> Scenario:
    """A scenario file by path; else by name: built in, or shipped in scenarios/."""
    from vpnsim.scenario import load

    if name_or_path.endswith(".toml") or os.sep in name_or_path:
        return load(name_or_path).scenario
    if name_or_path in BUILTIN:
        return builtin_scenario(name_or_path)
    shipped = SHIPPED_SCENARIOS / f"{name_or_path}.toml"
    if shipped.is_file():
        return load(shipped).scenario
    known = sorted({*BUILTIN, *(p.stem for p in SHIPPED_SCENARIOS.glob("*.toml"))})
    raise ScenarioError(
        f"unknown scenario {name_or_path!r}; known scenarios: {', '.join(known)} "
        "(or give a path to a .toml file)"
    )


def _lab_up(args: argparse.Namespace) -> int:
    scenario = _scenario(args.scenario)
    preflight()
    from vpnsim.impl import TunnelImpl
    from vpnsim.topology import build_lab
    from vpnsim.vpn import start_tunnel

    impl = None if args.tunnel == "none" else TunnelImpl.parse([args.tunnel])
    # Owned by this process while it builds, so a concurrent `vpnsim clean` leaves it alone;
    # handed over (no owner) once up, to be removed by `lab down` or `clean`.
    lab = build_lab(scenario, name=args.name, owner_pid=os.getpid())
    try:
        if scenario.source:  # a scenario file's [[impairments]], before the tunnel starts
            from vpnsim.impair.link import impair
            from vpnsim.scenario import load

            for entry in load(scenario.source).impairments:
                impair(lab, entry.link, entry.impairment())
        if impl is not None and scenario.tunnel is not None:
            start_tunnel(lab, impl)
    except BaseException:
        lab.teardown()
        raise
    lab.owner_pid = None
    lab.save()
    print(lab.name)
    return 0


def _lab_list(args: argparse.Namespace) -> int:
    from vpnsim.topology import list_labs

    for name in list_labs():
        print(name)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from vpnsim.scenario import ScenarioFileError, load

    failed = 0
    for path in args.files:
        try:
            loaded = load(path)
        except ScenarioFileError as exc:
            failed += 1
            print(exc, file=sys.stderr)
            continue
        print(f"{path}: ok ({len(loaded.scenario.hosts)} hosts, {len(loaded.checks)} checks)")
    return EXIT_USAGE if failed else 0


def _schema(args: argparse.Namespace) -> int:
    import json

    from vpnsim.scenario import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def _run(args: argparse.Namespace) -> int:
    import tempfile

    from vpnsim.scenario import load

    loaded = [load(path) for path in args.scenarios]  # every file valid before any lab
    preflight()
    from vpnsim.impl import REFERENCE, TunnelImpl
    from vpnsim.run import ScenarioRun

    impl = TunnelImpl.parse(args.tunnel) if args.tunnel else REFERENCE
    artifacts = Path(args.artifacts or tempfile.mkdtemp(prefix="vpnsim-run-"))
    passed = failed = 0
    for scenario in loaded:
        print(f"{scenario.path}: {scenario.scenario.description or scenario.scenario.name}")
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


def _attach(name: str) -> Lab:
    preflight()
    from vpnsim.topology import attach

    return attach(name)


def _lab_status(args: argparse.Namespace) -> int:
    lab = _attach(args.name)
    from vpnsim.impair.link import wire_on, wired_links

    wires = {}
    for wired in wired_links(lab):
        wire = wire_on(lab, wired)
        wires[wired] = wire.stats().impairment.describe() if wire else "(its process is gone)"
    print(f"lab {lab.name}: scenario {lab.scenario.name}, logs in {lab.log_dir}")
    for host in lab.scenario.hosts:
        rtnl = lab.rtnl(host.name)
        print(f"  {host.name}  (netns {lab.ns(host.name)})")
        for link in rtnl.links():
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
    nsfd = os.open(NETNS_DIR / lab.ns(host), os.O_RDONLY | os.O_CLOEXEC)
    try:
        completed = subprocess.run(command, preexec_fn=lambda: proc.enter_host(nsfd))
    except FileNotFoundError:
        raise HarnessError(f"command not found on {host}: {command[0]}") from None
    finally:
        os.close(nsfd)
    return completed.returncode


def _lab_exec(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise HarnessError("nothing to run: vpnsim lab exec NAME HOST -- CMD ...")
    lab = _attach(args.name)
    return _host_command(lab, args.host, command)


def _lab_probe(args: argparse.Namespace) -> int:
    if args.count is not None and (args.udp or args.tcp):
        raise HarnessError("--count sends ICMP echo requests: leave out --udp/--tcp")
    if args.count is not None and args.count < 1:
        raise HarnessError(f"--count {args.count}: at least 1")
    lab = _attach(args.name)
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
            return _series_line(
                probes.ping_series(args.host, args.dst, args.count, payload, args.interval)
            )
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


def _series_line(series: EchoSeries) -> str:
    """`ping -c` in one line. Raises ProbeFailed when no reply came back intact: a lossy link
    loses packets, but a tunnel must never change one."""
    answered = len(series.replies)
    line = f"{series.sent} sent, {answered} answered, {series.loss:.0%} lost"
    if series.lost:
        line += f" ({numbered(series.lost)})"
    if series.damaged:
        line += f", {len(series.damaged)} damaged ({numbered(series.damaged)})"
    if series.duplicates:
        line += f", {series.duplicates} duplicate replies"
    if answered:
        rtts = sorted(reply.rtt * 1000 for reply in series.replies.values())
        line += f"; rtt min/avg/max {rtts[0]:.2f}/{sum(rtts) / answered:.2f}/{rtts[-1]:.2f} ms"
    if series.errors:
        line += f"; {len(series.errors)} ICMP errors, first: {series.errors[min(series.errors)]}"
    if answered == len(series.damaged):
        raise ProbeFailed(line)
    return line


def _impairment_of(args: argparse.Namespace) -> Impairment | None:
    """The impairment the flags ask for; None when no impairment flag is given."""
    from vpnsim.impair.spec import GilbertElliott, Impairment, parse_events, parse_rate

    burst = None
    if args.burst:
        try:
            burst = GilbertElliott(*(float(x) for x in args.burst.split(",")))
        except (TypeError, ValueError):
            raise ImpairmentError(
                f"--burst {args.burst!r}: expected P,R[,LOSS_BAD[,LOSS_GOOD]]"
            ) from None
    corrupt_bytes = None
    if args.corrupt_bytes:
        start, _, end = args.corrupt_bytes.partition("-")
        if not (start.isdigit() and end.isdigit()):
            raise ImpairmentError(f"--corrupt-bytes {args.corrupt_bytes!r}: expected A-B")
        corrupt_bytes = (int(start), int(end) + 1)
    impairment = Impairment(
        seed=args.seed,
        loss=args.loss,
        burst=burst,
        dup=args.dup,
        reorder=args.reorder,
        corrupt=args.corrupt,
        corrupt_bytes=corrupt_bytes,
        fix_checksums=args.fix_checksums,
        delay_ms=args.delay,
        jitter_ms=args.jitter,
        rate=parse_rate(args.rate) if args.rate else None,
        mtu=args.mtu,
        events=parse_events(args.schedule) if args.schedule else (),
        direction=args.direction,
    )
    return None if impairment == Impairment(seed=args.seed) else impairment


def _lab_impair(args: argparse.Namespace) -> int:
    import json

    lab = _attach(args.name)
    from vpnsim.impair.link import impair, parse_link, wire_on
    from vpnsim.impair.spec import Impairment

    parse_link(lab, args.link)
    impairment = _impairment_of(args)
    try:
        if args.netem:
            from vpnsim.impair.netem import apply_netem, clear_netem

            if args.clear or args.remove:
                clear_netem(lab, args.link)
                print(f"{args.link}: netem removed")
            else:
                impairment = impairment or Impairment()
                apply_netem(lab, args.link, impairment)
                print(f"{args.link}: netem {impairment.summary()} (unseeded, out only)")
            return 0
        wire = wire_on(lab, args.link)
        if args.remove:
            if wire is None:
                raise HarnessError(f"no wire on {args.link}")
            wire.remove()
            print(f"{args.link}: wire removed, the link is plain again")
        elif args.log:
            if wire is None:
                raise HarnessError(f"no wire on {args.link}")
            for entry in wire.log():
                print(json.dumps(entry.to_dict()))
        elif args.clear and wire is None:
            print(f"{args.link}: no wire, nothing to clear")
        elif impairment is not None or args.clear:
            wire = impair(lab, args.link, impairment or Impairment(seed=args.seed))
            print(f"{args.link}: {wire.stats().impairment.describe()}")
        elif wire is None:
            print(f"{args.link}: no wire (a plain link)")
        else:
            stats = wire.stats()
            print(f"{args.link}: {stats.lines()[0]}; wire pid {stats.pid}")
            for line in stats.lines()[1:]:
                print(f"  {line}")
    finally:
        lab.close()
    return 0


def _lab_capture(args: argparse.Namespace) -> int:
    import signal
    import time

    lab = _attach(args.name)
    from vpnsim.net.namespace import exists
    from vpnsim.traffic.capture import Capture

    host, _, ifname = args.link.partition(":")
    lab.ns(host)  # an unknown host is a usage error
    names = [link.name for link in lab.rtnl(host).links()]
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


def _lab_shell(args: argparse.Namespace) -> int:
    lab = _attach(args.name)
    shell = os.environ.get("SHELL", "/bin/bash")
    os.environ["PS1"] = f"[{args.host}@{lab.name}] \\w# "
    return _host_command(lab, args.host, [shell, "--norc"] if shell.endswith("bash") else [shell])


def _lab_down(args: argparse.Namespace) -> int:
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
    preflight()
    from vpnsim.demo import run_demo
    from vpnsim.impl import REFERENCE, TunnelImpl

    impl = TunnelImpl.parse(args.vpn_impl) if args.vpn_impl else REFERENCE
    return run_demo(impl)


def _bench(args: argparse.Namespace) -> int:
    preflight()
    from vpnsim.bench import run_bench

    return run_bench(rounds=args.rounds, json_path=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
