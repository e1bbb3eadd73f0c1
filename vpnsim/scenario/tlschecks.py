"""The TLS lab's checks: a client that must be refused (`refused`), a link that must not
carry a payload in clear (`cleartext_absent`), and a man in the middle who must get no tunnel
(`mitm`). Each returns an `Outcome`, as `checks.py`'s do.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vpnsim import proc
from vpnsim.proc import ProgramFailed
from vpnsim.scenario.context import Outcome, send
from vpnsim.scenario.placeholders import fill
from vpnsim.scenario.redirect import NftablesMissing, redirected
from vpnsim.scenario.schema import CleartextAbsentCheck, MitmCheck, RefusedCheck
from vpnsim.scenario.tunwatch import TunWatch
from vpnsim.traffic.capture import Capture, Frame, ipv4_packet
from vpnsim.traffic.errors import ProbeFailed

if TYPE_CHECKING:
    from vpnsim.model import Scenario
    from vpnsim.scenario.context import CheckContext


# Pure parts -------------------------------------------------------------------------------


def marked_payload(marker: str, size: int) -> bytes:
    """`size` bytes of `marker`, repeated: any fragment of the probe holds a whole copy."""
    text = marker.encode()
    return (text * (size // len(text) + 1))[:size]


def frames_holding(marker: bytes, frames: Sequence[Frame]) -> list[int]:
    """Indexes of the frames whose bytes contain `marker`."""
    return [i for i, frame in enumerate(frames) if marker in frame.data]


def tcp_segments_to(frames: Sequence[Frame], src: str, dst: str, port: int) -> int:
    """How many captured IPv4 TCP segments went from `src` to `dst`:`port`."""
    count = 0
    for frame in frames:
        packet = ipv4_packet(frame.data)
        if packet is None or len(packet) < 20 or packet[9] != 6:
            continue
        header = (packet[0] & 0x0F) * 4
        if len(packet) < header + 4:
            continue
        if (
            str(ipaddress.IPv4Address(packet[12:16])) == src
            and str(ipaddress.IPv4Address(packet[16:20])) == dst
            and int.from_bytes(packet[header + 2 : header + 4], "big") == port
        ):
            count += 1
    return count


@dataclass(frozen=True)
class AttackerPath:
    """How the attacker gets between `client` and the server: its address on their network,
    and the client's address there."""

    attacker_address: str
    attacker_ifname: str
    client_address: str


def attacker_path(
    scenario: Scenario, attacker: str, client: str, server: str
) -> AttackerPath | None:
    """The network `client` reaches `server` on, if `attacker` is on it too; else None."""
    target = ipaddress.ip_address(server)
    for own in scenario.host(client).interfaces:
        net = ipaddress.ip_interface(own.address).network
        if target not in net:
            continue
        for theirs in scenario.host(attacker).interfaces:
            if ipaddress.ip_interface(theirs.address).network == net:
                address = str(ipaddress.ip_interface(theirs.address).ip)
                return AttackerPath(
                    address, theirs.name, str(ipaddress.ip_interface(own.address).ip)
                )
    return None


def last_report(stdout: str) -> dict[str, object]:
    """The JSON line a reference end prints when it stops ({} if there is none)."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, dict):
            return found
    return {}


# Checks -------------------------------------------------------------------------------


def _outcome(passed: bool, expected: str, seen: str) -> Outcome:

    return Outcome(passed, expected, seen)


def _tail(program: proc.Program, lines: int = 3) -> str:
    text = (program.stderr() + program.stdout()).strip().splitlines()
    return " | ".join(text[-lines:]) or "no output"


def refused(
    ctx: CheckContext, host: str, argv: list[str], reason: str, timeout: float, label: str
) -> Outcome:
    """Run `argv` on `host`: it must exit non-zero within `timeout`, saying `reason`, and no
    TUN/TAP may appear on `host` meanwhile."""
    expected = f"the client on {host} is refused, saying {reason!r}, and brings no TUN up"
    before = {link.name for mode in ("tun", "tap") for link in ctx.lab.rtnl(host).tun_devices(mode)}
    with TunWatch(ctx.lab.ns(host)) as watch:
        program = ctx.lab.start(host, argv, log_name=f"{label}-{time.monotonic_ns() % 10**8}")
        code = _wait_exit(program, timeout)
        new = [name for name in watch.appeared() if name not in before]
    made = f"a TUN appeared on {host} meanwhile: {', '.join(new)}" if new else ""
    if code is None:
        program.stop()
        still = f"still running after {timeout:g} s: not refused"
        return _outcome(False, expected, f"{still}; {made}" if made else still)
    if new:
        return _outcome(False, expected, f"exited with status {code}, but {made}")
    said = [line for line in (program.stderr() + program.stdout()).splitlines() if reason in line]
    if code == 0:
        return _outcome(False, expected, f"exited with status 0: {_tail(program)}")
    if not said:
        return _outcome(
            False, expected, f"exited with status {code} without saying it: {_tail(program)}"
        )
    return _outcome(True, expected, f"exited with status {code}: {said[0].strip()}")


def _wait_exit(program: proc.Program, timeout: float) -> int | None:
    """The exit status once it has exited (an event, not a poll); None if still running."""
    if program.popen is None:  # pragma: no cover - lab.start always keeps the Popen
        raise RuntimeError(f"{program.label}: no process handle to wait on")
    try:
        return program.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def refused_check(check: RefusedCheck, ctx: CheckContext) -> Outcome:
    argv = fill(check.command, ctx.placeholders)
    return refused(ctx, check.host, argv, check.reason, check.timeout, check.name)


def cleartext_absent(check: CleartextAbsentCheck, ctx: CheckContext) -> Outcome:

    host, _, ifname = check.link.partition(":")
    marker = check.marker.encode()
    data = marked_payload(check.marker, check.size)
    expected = (
        f"{check.proto.upper()} from {check.from_} to {check.to} carrying {check.marker!r} "
        f"crosses {check.link} with the marker in no frame"
    )
    capture = Capture(ctx.lab.ns(host), ifname)
    try:
        got = send(ctx, check.proto, check.from_, check.to, data, check.timeout)
    except ProbeFailed as exc:
        capture.stop()
        return _outcome(False, expected, str(exc))
    frames = capture.stop()
    if got != data:
        return _outcome(False, expected, f"sent {len(data)} bytes, {len(got)} came back changed")
    carried = sum(len(frame.data) for frame in frames)
    clear = frames_holding(marker, frames)
    if clear:
        return _outcome(
            False,
            expected,
            f"{len(clear)} of {len(frames)} frames on {check.link} hold the marker in clear "
            f"(the first: frame {clear[0] + 1}, {len(frames[clear[0]].data)} bytes)",
        )
    if carried < 2 * len(data):  # there and back
        return _outcome(
            False,
            expected,
            f"{check.link} carried {carried} bytes in {len(frames)} frames, less than the "
            f"probe's {2 * len(data)} there and back: the probe took another path",
        )
    return _outcome(
        True, expected, f"{len(frames)} frames, {carried} bytes on {check.link}; none holds it"
    )


def mitm(check: MitmCheck, ctx: CheckContext) -> Outcome:
    expected = (
        f"a client on {check.client} whose connections to {check.server_address}:{check.port} "
        f"{check.attacker} redirects to its own server is refused ({check.reason!r})"
    )
    lab = ctx.lab
    path = attacker_path(lab.scenario, check.attacker, check.client, check.server_address)
    if path is None:  # pragma: no cover - references.py refuses such a file
        return _outcome(False, expected, f"{check.attacker} is not on the client's network")
    impostor = lab.start(
        check.attacker, fill(check.impostor, ctx.placeholders), log_name=f"{check.name}-impostor"
    )
    try:
        try:
            impostor.wait_ready(
                lambda: proc.port_bound(impostor.pid, check.port, "tcp"),
                check.timeout,
                f"TCP port {check.port} listening",
            )
        except ProgramFailed as exc:
            return _outcome(False, expected, f"the impostor did not start: {exc}")
        try:
            outcome, frames = _attacked(check, ctx, path)
        except NftablesMissing as exc:
            return _outcome(False, expected, str(exc))
    finally:
        impostor.stop()
    reached = tcp_segments_to(frames, path.client_address, check.server_address, check.port)
    if not reached:
        return _outcome(
            False,
            expected,
            f"the client never reached {check.attacker}: the redirect did not take, so this "
            f"proves nothing ({outcome.seen})",
        )
    logins = last_report(impostor.stdout()).get("logins", 0)
    if logins:
        return _outcome(
            False,
            expected,
            f"the client logged in to the impostor: its password went to {check.attacker}",
        )
    seen = f"{reached} TCP segments reached {check.attacker}'s impostor; {outcome.seen}"
    return _outcome(outcome.passed, expected, seen)


def _attacked(
    check: MitmCheck, ctx: CheckContext, path: AttackerPath
) -> tuple[Outcome, list[Frame]]:
    """Put the attacker on the path (a host route on the client, as ARP spoofing would, and
    the redirect), run the client, and take all of it back."""
    lab = ctx.lab
    capture = Capture(lab.ns(check.attacker), path.attacker_ifname)
    client = lab.rtnl(check.client)
    host_route = f"{check.server_address}/32"
    try:
        with redirected(lab.ns(check.attacker), check.server_address, check.port):
            client.add_route(host_route, gateway=path.attacker_address)
            try:
                argv = fill(check.command, ctx.placeholders)
                outcome = refused(ctx, check.client, argv, check.reason, check.timeout, check.name)
            finally:
                client.delete_route(host_route)
    finally:
        frames = capture.stop()
    return outcome, frames
