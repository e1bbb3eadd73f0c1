"""What the tunnel evidence says around a probe, without a lab: counters, datagrams, and a TUN
device deleted during the probe (its program exited)."""

from __future__ import annotations

from vpnsim.net.rtnl import Counters
from vpnsim.traffic.evidence import CounterDelta, TunnelEvidence


def counters(rx: int, tx: int) -> Counters:
    return Counters(rx, tx, rx * 84, tx * 84, 0, 0)


def evidence(client: CounterDelta, server: CounterDelta) -> TunnelEvidence:
    return TunnelEvidence("U:tun0", client, "server:tun0", server, "server:eth0", "10.9.0.11",
                          9090, (), ())  # fmt: skip


def test_counter_deltas_are_what_moved_during_the_probe() -> None:
    delta = CounterDelta.between(counters(5, 7), counters(6, 9))

    assert delta == CounterDelta(rx_packets=1, tx_packets=2, rx_bytes=84, tx_bytes=168)
    assert evidence(delta, delta).lines() == [
        "U:tun0: 2 packets into the tunnel (168 bytes), 1 out of it (84 bytes)",
        "server:tun0: 1 packet out of the tunnel (84 bytes), 2 into it (168 bytes)",
        "server:eth0: 0 UDP datagrams to 10.9.0.11:9090, 0 from it",
    ]


def test_a_device_deleted_during_the_probe_is_said_to_be_gone_and_proves_nothing() -> None:
    moved = CounterDelta.between(counters(0, 0), counters(1, 1))
    gone = CounterDelta.between(counters(0, 0), None)

    assert gone == CounterDelta(0, 0, 0, 0, gone=True)
    seen = evidence(moved, gone)
    assert seen.lines()[:2] == [
        "U:tun0: 1 packet into the tunnel (84 bytes), 1 out of it (84 bytes)",
        "server:tun0: deleted during the probe (did its program exit?)",
    ]
    assert not seen.through_tunnel
