"""The anchor of `vpnsim bench framework`: Mininet building the same SEED topology.

Run by the Python that has Mininet (Debian's `mininet` package: /usr/bin/python3), never
imported by vpnsim: `python3 mininet_seed.py --rounds N` prints one JSON line per round;
`--serve` does a round per line read on stdin, so the bench interleaves Mininet's rounds with
its own in one run. Mininet as its users run it for this: Linux-bridge switches (`LinuxBridge`,
bridge-utils), no controller; U and server on one bridge, server, V and V2 on another, the
server forwarding, V and V2 routed through it. Each round's bridges get fresh names, so
nothing collides with a run beside it; `net.stop()` removes what the round made.
"""

from __future__ import annotations

import argparse
import importlib
import json
import secrets
import sys
import time
from typing import Any


def _topology(tag: str) -> Any:
    topo: Any = importlib.import_module("mininet.topo").Topo

    class SeedTunnelTopo(topo):  # type: ignore[misc]
        def build(self) -> None:
            outside = self.addSwitch(f"vb{tag}o", dpid="1")
            inside = self.addSwitch(f"vb{tag}i", dpid="2")
            u = self.addHost("U", ip="10.9.0.5/24")
            server = self.addHost("server", ip="10.9.0.11/24")
            v = self.addHost("V", ip="192.168.60.5/24", defaultRoute="via 192.168.60.11")
            v2 = self.addHost("V2", ip="192.168.60.6/24", defaultRoute="via 192.168.60.11")
            self.addLink(u, outside)
            self.addLink(server, outside)
            self.addLink(server, inside, params1={"ip": "192.168.60.11/24"})
            self.addLink(v, inside)
            self.addLink(v2, inside)

    return SeedTunnelTopo()


def one_round() -> dict[str, float]:
    """Nothing -> bare lab -> first echo U -> server -> teardown; seconds of each step."""
    net_module = importlib.import_module("mininet.net")
    bridge = importlib.import_module("mininet.nodelib").LinuxBridge
    topo = _topology(secrets.token_hex(3))
    t0 = time.perf_counter()
    net = net_module.Mininet(topo=topo, switch=bridge, controller=None, build=True)
    try:
        net.start()
        net["server"].cmd("sysctl -qw net.ipv4.ip_forward=1")
        t1 = time.perf_counter()
        answer = net["U"].cmd("ping -c1 -W2 10.9.0.11")
        t2 = time.perf_counter()
        if " 1 received" not in answer:
            raise RuntimeError(f"Mininet lab: no echo from the server: {answer.strip()}")
    finally:
        t3 = time.perf_counter()
        net.stop()
        t4 = time.perf_counter()
    return {"build_s": t1 - t0, "echo_s": t2 - t1, "start_s": t2 - t0, "teardown_s": t4 - t3}


def main() -> int:
    parser = argparse.ArgumentParser(prog="mininet_seed.py")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--serve", action="store_true", help="a round per line on stdin")
    args = parser.parse_args()
    importlib.import_module("mininet.log").setLogLevel("error")  # no bridge-nf warnings
    net = importlib.import_module("mininet.net")
    # Mininet's first build calls fixLimits(), which raises a dozen of the machine's sysctls for
    # good (net.core.rmem_max and wmem_max to 16 MiB, tcp_rmem, the ARP cache...): the bench
    # must not change the machine it runs on, and vpnsim runs under the machine's own limits.
    setattr(net, "fixLimits", lambda: None)  # noqa: B010  # a module mypy cannot see
    rounds = iter(sys.stdin.readline, "") if args.serve else range(args.rounds)
    if args.serve:
        print(json.dumps({"ready": True}), flush=True)
    for _ in rounds:
        print(json.dumps(one_round()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
