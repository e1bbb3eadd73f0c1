"""`RunningTunnel.revive`: an end that exited is started again, so one lab can serve many
Hypothesis examples even when one of them kills a program."""

from __future__ import annotations

import pytest

from vpnsim.traffic.probes import Probes
from vpnsim.vpn import RunningTunnel

pytestmark = pytest.mark.lab

V = "192.168.60.5"


def test_nothing_is_restarted_while_both_ends_run(vpn_tunnel: RunningTunnel) -> None:
    pids = (vpn_tunnel.client.pid, vpn_tunnel.server.pid)

    assert vpn_tunnel.revive() == []
    assert (vpn_tunnel.client.pid, vpn_tunnel.server.pid) == pids


@pytest.mark.parametrize("ends", [["server"], ["client"], ["server", "client"]])
def test_the_ends_that_exited_are_started_again_and_forward(
    vpn_tunnel: RunningTunnel, probes: Probes, ends: list[str]
) -> None:
    old = {"client": vpn_tunnel.client, "server": vpn_tunnel.server}
    for end in ends:
        old[end].stop()

    assert vpn_tunnel.revive() == ends
    for end in ("client", "server"):
        now = getattr(vpn_tunnel, end)
        assert (now.pid != old[end].pid) == (end in ends)
        assert now.running()
    assert probes.ping("U", V, b"back again").payload == b"back again"
