"""`vpnsim demo` (and `nox -s lab`): the SEED tunneling lab up, the tunnel shown working, down.

Every claim printed is backed by something measured in the lab: a probe's reply compared byte
for byte, TUN counters, datagrams captured on the server's outer link.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from vpnsim.impair import Impairment
from vpnsim.impair.link import client_outer_link, impair
from vpnsim.impl import TunnelImpl
from vpnsim.leaks import leftovers
from vpnsim.scenario.bringup import ScenarioLab, bring_up
from vpnsim.topology import Lab
from vpnsim.traffic.errors import NoRoute, ProbeFailed
from vpnsim.traffic.icmp import numbered
from vpnsim.traffic.probes import Probes

EXIT_OK = 0
EXIT_FINDING = 1


def run_demo(impl: TunnelImpl, out: Callable[[str], None] = print) -> int:
    """Run the demo, printing what it does; 0 if the tunnel works as the lab expects."""
    started = time.monotonic()
    # The tunnel comes later: first, U must not reach V. Owned, so `vpnsim clean` leaves it
    # alone and an interrupted demo removes it (cli.main).
    up = bring_up("seed-tunnel", owner_pid=os.getpid())
    lab = up.lab
    try:
        out(f"lab {lab.name}: the SEED VPN tunneling lab, in {time.monotonic() - started:.2f} s")
        _describe(lab, out)
        ok = _show_tunnel(up, impl, out)
    finally:
        report = lab.teardown()
        left = leftovers([lab.name])
        out(
            f"teardown: {len(report.killed)} process(es) killed, "
            f"{len(report.namespaces_removed)} namespaces removed, "
            f"{'nothing left behind' if not left else f'LEFT BEHIND: {left}'}"
        )
    return EXIT_OK if ok and not left else EXIT_FINDING


def _describe(lab: Lab, out: Callable[[str], None]) -> None:
    for host in lab.scenario.hosts:
        addresses = ", ".join(f"{i.name} {i.address}" for i in host.interfaces)
        routes = "; ".join(f"{r.dst} via {r.via}" for r in host.routes)
        out(f"  {host.name:<7} {addresses}{'  (route ' + routes + ')' if routes else ''}")


def _show_tunnel(up: ScenarioLab, impl: TunnelImpl, out: Callable[[str], None]) -> bool:
    lab = up.lab
    probes = Probes(lab)
    out("task 1, before any tunnel: U -> V (192.168.60.5)")
    try:
        probes.ping("U", "192.168.60.5", timeout=1.0)
        out("  FAIL: U reached V without a tunnel")
        return False
    except NoRoute as exc:
        out(f"  unreachable, as it must be: {exc}")

    tunnel = up.start_tunnel(impl)
    probes.tunnel = tunnel
    out(f"tunnel ({impl.label}) ready in {tunnel.ready_seconds:.2f} s:")
    for program in (tunnel.client, tunnel.server):
        out(f"  {program.host}: {' '.join(program.argv)} (pid {program.pid})")
    for host, tun in (
        (tunnel.spec.client, tunnel.client_tun),
        (tunnel.spec.server, tunnel.server_tun),
    ):
        link = lab.rtnl(host).link(tun)
        routes = [r.dst for r in lab.rtnl(host).routes() if r.dev == tun]
        out(
            f"  {host}:{tun} {'UP' if link.up else 'DOWN'} {' '.join(link.addresses)}, "
            f"routes {', '.join(routes)}"
        )

    u_to_v = "192.168.60.5"
    checks: list[tuple[str, Callable[[], bytes], bytes]] = [
        (
            "ICMP echo U -> V, 56 bytes",
            lambda: probes.ping("U", u_to_v, DATA[:56]).payload,
            DATA[:56],
        ),
        (
            "ICMP echo U -> V, 3000 bytes (fragmented)",
            lambda: probes.ping("U", u_to_v, DATA[:3000]).payload,
            DATA[:3000],
        ),
        ("TCP U -> V port 7, 100 kB echoed", lambda: probes.tcp("U", u_to_v, DATA), DATA),
        (
            "ICMP echo V -> U's TUN address 192.168.53.99",
            lambda: probes.ping("V", "192.168.53.99", DATA[:56]).payload,
            DATA[:56],
        ),
    ]
    ok = True
    for title, probe, expected in checks:
        with probes.evidence() as rec:
            try:
                got, error = probe(), ""
            except ProbeFailed as exc:
                got, error = b"", str(exc)
        same = got == expected
        passed = same and rec.result.through_tunnel
        ok = ok and passed
        detail = error or ("reply identical to what was sent" if same else "reply differs")
        out(f"{title}: {'ok' if passed else 'FAIL'} ({detail})")
        for line in rec.result.lines():
            out(f"  {line}")
    probes.close()
    ok = _show_seeded_loss(lab, probes, out) and ok

    out("the client stopped: U -> V again")
    tunnel.client.stop()
    try:
        probes.ping("U", u_to_v, timeout=1.0)
        out("  FAIL: U still reaches V with the client stopped")
        return False
    except ProbeFailed as exc:
        out(f"  unreachable again: {exc}")
    return ok


def _show_seeded_loss(lab: Lab, probes: Probes, out: Callable[[str], None]) -> bool:
    """A seeded 30% loss on the client's outer link, twice: the same echoes are lost."""
    link = client_outer_link(lab)
    loss = Impairment(seed=7, loss=0.3)
    out(f"{link}, the internet link, through a seeded wire: {loss.describe()}")
    wire = impair(lab, link)
    try:
        runs = []
        for _ in range(2):
            wire.set(loss)  # the same seed from packet 1: the same fates for the same traffic
            runs.append(probes.ping_series("U", "192.168.60.5", LOSS_ECHOES, timeout=0.5))
            out(f"  {LOSS_ECHOES} echoes U -> V: {len(runs[-1].replies)} answered")
        for line in wire.stats().lines()[1:]:  # the counters of the second run
            out(f"  wire {line.strip()}")
    finally:
        wire.remove()
    first, again = runs[0].lost, runs[1].lost
    replayed = bool(first) and first == again and len(first) < LOSS_ECHOES
    if replayed:
        out(f"  the same {len(first)} lost both times: {numbered(first)}")
    else:
        out(f"  FAIL: lost {numbered(first)}, then {numbered(again)}")
    return replayed


LOSS_ECHOES = 30
DATA = bytes(range(256)) * 400  # 102400 bytes, every byte value
