"""What each scenario check does against a running lab, and what it reports.

Each check returns an `Outcome`: passed or not, what was expected and what was seen, in words
a student can act on. A probe that fails is an outcome (a finding), never an exception; only a
harness fault (a netlink request refused, say) propagates.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from vpnsim.proc import ProgramFailed
from vpnsim.scenario.context import CheckContext as CheckContext
from vpnsim.scenario.context import Outcome as Outcome
from vpnsim.scenario.context import payload as payload
from vpnsim.scenario.context import send as send
from vpnsim.scenario.schema import (
    Check,
    CleartextAbsentCheck,
    InterfaceCheck,
    MitmCheck,
    ReachCheck,
    RefusedCheck,
    RestartCheck,
    RouteCheck,
    RunningCheck,
    UnreachableCheck,
)
from vpnsim.traffic.errors import ProbeFailed

if TYPE_CHECKING:
    pass


def run_check(check: Check, ctx: CheckContext) -> Outcome:
    if isinstance(check, ReachCheck):
        return _reach(check, ctx)
    if isinstance(check, UnreachableCheck):
        return _unreachable(check, ctx)
    if isinstance(check, InterfaceCheck):
        return _interface(check, ctx)
    if isinstance(check, RouteCheck):
        return _route(check, ctx)
    if isinstance(check, RunningCheck):
        return _running(check, ctx)
    if isinstance(check, RestartCheck):
        return _restart(check, ctx)
    from vpnsim.scenario import tlschecks

    if isinstance(check, RefusedCheck):
        return tlschecks.refused_check(check, ctx)
    if isinstance(check, CleartextAbsentCheck):
        return tlschecks.cleartext_absent(check, ctx)
    if isinstance(check, MitmCheck):
        return tlschecks.mitm(check, ctx)
    raise TypeError(f"unknown check type {type(check).__name__}")


def _reach(check: ReachCheck, ctx: CheckContext) -> Outcome:
    sizes = ", ".join(str(s) for s in check.sizes)
    proto = check.proto.upper()
    expected = f"{proto} from {check.from_} to {check.to} ({sizes} bytes) comes back identical"
    if check.through_tunnel:
        expected += ", through the tunnel"
    evidence_lines: list[str] = []
    for size in check.sizes:
        data = payload(size)
        try:
            if check.through_tunnel:
                with ctx.probes.evidence() as rec:
                    got = send(ctx, check.proto, check.from_, check.to, data, check.timeout)
                evidence = rec.result
                if not evidence.through_tunnel:
                    return Outcome(
                        False,
                        expected,
                        f"{size} bytes came back, but not through "
                        "the tunnel: " + "; ".join(evidence.lines()[:3]),
                    )
                evidence_lines = evidence.lines()[:3]
            else:
                got = send(ctx, check.proto, check.from_, check.to, data, check.timeout)
        except ProbeFailed as exc:
            return Outcome(False, expected, str(exc))
        if got != data:
            return Outcome(False, expected, _difference(data, got))
    seen = f"all {len(check.sizes)} sizes came back identical"
    if evidence_lines:
        seen += "; last: " + "; ".join(evidence_lines)
    return Outcome(True, expected, seen)


def _difference(sent: bytes, got: bytes) -> str:
    if len(got) != len(sent):
        return f"sent {len(sent)} bytes, {len(got)} came back"
    first = next(i for i, (a, b) in enumerate(zip(sent, got, strict=True)) if a != b)
    return f"sent {len(sent)} bytes, the same number came back, different from byte {first}"


def _unreachable(check: UnreachableCheck, ctx: CheckContext) -> Outcome:
    expected = f"{check.proto.upper()} from {check.from_} to {check.to} gets no answer"
    try:
        got = send(ctx, check.proto, check.from_, check.to, payload(56), check.timeout)
    except ProbeFailed as exc:
        return Outcome(True, expected, str(exc))
    return Outcome(False, expected, f"an answer came back ({len(got)} bytes)")


def _tunnel_device(ctx: CheckContext, host: str) -> str | None:
    from vpnsim.vpn import find_tunnel

    if ctx.tunnel is not None:
        spec = ctx.tunnel.spec
        if host == spec.client:
            return ctx.tunnel.client_tun
        if host == spec.server:
            return ctx.tunnel.server_tun
    found = find_tunnel(ctx.lab)
    if found is not None:
        return {found.spec.client: found.client_tun, found.spec.server: found.server_tun}.get(host)
    return None


def _interface(check: InterfaceCheck, ctx: CheckContext) -> Outcome:
    what = "the tunnel's device" if check.interface == "tunnel" else check.interface
    expected = f"{check.host} has {what}"
    if check.address:
        expected += f" with {check.address}"
    expected += ", up" if check.up else ", down"
    name = _tunnel_device(ctx, check.host) if check.interface == "tunnel" else check.interface
    links = {link.name: link for link in ctx.lab.rtnl(check.host).links()}
    if name is None or name not in links:
        present = ", ".join(n for n in links if n != "lo")
        return Outcome(False, expected, f"no such interface on {check.host} (it has: {present})")
    link = links[name]
    kind = f" ({link.tun_mode.upper()})" if link.tun_mode else ""
    addresses = ", ".join(link.addresses) or "none"
    seen = f"{name}{kind} {'up' if link.up else 'down'}, addresses {addresses}"
    address_ok = (
        check.address is None or str(ipaddress.ip_interface(check.address)) in link.addresses
    )
    return Outcome(address_ok and link.up == check.up, expected, seen)


def _route(check: RouteCheck, ctx: CheckContext) -> Outcome:
    dev = _tunnel_device(ctx, check.host) if check.dev == "tunnel" else check.dev
    expected = f"{check.host} routes {check.dst}"
    expected += f" via {check.via}" if check.via else ""
    expected += (
        " into the tunnel's device" if check.dev == "tunnel" else (f" dev {dev}" if dev else "")
    )
    routes = ctx.lab.rtnl(check.host).routes()
    for route in routes:
        if (
            route.dst == check.dst
            and (check.via is None or route.gateway == check.via)
            and (dev is None or route.dev == dev)
        ):
            return Outcome(True, expected, _describe_route(route))
    table = "; ".join(_describe_route(r) for r in routes) or "no routes"
    return Outcome(False, expected, f"routes of {check.host}: {table}")


def _describe_route(route: object) -> str:
    dst, gateway, dev = (getattr(route, k) for k in ("dst", "gateway", "dev"))
    return f"{dst}{' via ' + gateway if gateway else ''} dev {dev}"


def _running(check: RunningCheck, ctx: CheckContext) -> Outcome:
    expected = f"{check.program} is running"
    try:
        program = ctx.program(check.program)
    except KeyError:
        return Outcome(False, expected, f"{check.program} was never started")
    code = program.exit_code()
    if code is None:
        return Outcome(True, expected, f"running (pid {program.pid})")
    tail = program.stderr_tail(5)
    return Outcome(False, expected, f"exited with status {code}" + (f": {tail}" if tail else ""))


def _restart(check: RestartCheck, ctx: CheckContext) -> Outcome:
    expected = (
        f"a TCP session {check.from_} -> {check.to} resumes after the {check.program} "
        "restarts: bytes sent while it was down arrive"
    )
    tunnel = ctx.tunnel
    if tunnel is None:
        return Outcome(False, expected, "no tunnel is running")
    before, during = b"typed before the restart\n", b"typed while the tunnel was down\n"
    try:
        with ctx.probes.tcp_session(check.from_, check.to) as session:
            session.send(before)
            if session.receive(len(before)) != before:
                return Outcome(False, expected, "the echo before the restart differs")
            stop, start = (
                (tunnel.stop_client, tunnel.start_client)
                if check.program == "client"
                else (tunnel.stop_server, tunnel.start_server)
            )
            stop()
            session.send(during)
            waited = start()
            got = session.receive(len(during), timeout=check.timeout)
    except (ProbeFailed, ProgramFailed) as exc:
        return Outcome(False, expected, str(exc))
    if got != during:
        return Outcome(False, expected, _difference(during, got))
    return Outcome(True, expected, f"resumed; the new {check.program} was ready in {waited:.2f} s")
