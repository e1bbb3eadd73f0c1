"""The tunnels `vpnsim bench tunnels` compares, each started the same way in one SEED lab.

Every contender carries U (10.9.0.5) -> V (192.168.60.5) through the server (10.9.0.11) over
UDP port 9090 with the lab's inner addresses (192.168.53.99 and .1), and is ready when U
routes 192.168.60.0/24 into it and one ping has gone through (a handshake is not measured).

- `reference`, `reference-aead`: vpnsim's own tunnel (`python -m vpnsim.tunnel`), plain
  (the SEED wire: one raw IP packet per datagram) and AEAD (`--wire aead`); `*-offload`
  adds the TCP super-packet fast path (`--offload`, see `vpnsim.tunnel.offload`). Their
  names and flags are `impl.REFERENCE_VARIANTS`, the names `--vpn-impl` takes;
- `openvpn-gcm`: OpenVPN 2.x in TLS peer-to-peer mode, AES-256-GCM data channel, certificates
  from `vpnsim.pki`;
- `wireguard-go`: the userspace WireGuard, configured with `wg` and netlink;
- `kernel`: a kernel VXLAN tunnel (no process at all, so no CPU figure): what this VM has.
  Its kernel has no WireGuard, ESP, ipip, GRE or FOU (checked: `ip link add` refuses them).
"""

from __future__ import annotations

import base64
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vpnsim import pki, proc
from vpnsim.impl import PSK_FILE, REFERENCE_VARIANTS, TunnelImpl, reference_argv
from vpnsim.model import TunnelSpec
from vpnsim.seed import seed_tunnel
from vpnsim.topology import Lab
from vpnsim.traffic.probes import Probes
from vpnsim.tunnel.bench.measure import BenchError, V
from vpnsim.vpn import start_tunnel, write_psk

CLIENT_ADDRESS = "10.9.0.5"
READY_TIMEOUT = 15.0
VXLAN_ID = 42


@dataclass
class Started:
    """A contender running: the processes whose CPU counts, and how to stop it."""

    pids: tuple[int, ...]
    ready_s: float
    stop: Callable[[], None]


Starter = Callable[[Lab, Path, Path | None], Started]


def _spec() -> TunnelSpec:
    spec = seed_tunnel().tunnel
    assert spec is not None
    return spec


def _warm_up(lab: Lab, what: str) -> None:
    """One echo through the tunnel (WireGuard and AEAD handshake on the first packet)."""
    probes = Probes(lab)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not probes.reaches("U", V, timeout=1.0):
            if time.monotonic() > deadline:
                raise BenchError(f"{what}: no echo from V through the tunnel")
    finally:
        probes.close()


def reference(label: str, *flags: str) -> Starter:
    """vpnsim's tunnel with `flags` on both ends (PSK_FILE becomes a fresh PSK file: 0600
    from its creation, in the lab's state folder, removed when the contender stops)."""

    def start(lab: Lab, work: Path, profile: Path | None) -> Started:
        spec = _spec()
        psk = write_psk(lab) if PSK_FILE in flags else None
        given = tuple(str(psk) if f == PSK_FILE else f for f in flags)

        def argv(side: str) -> tuple[str, ...]:
            base = reference_argv(side, spec)
            if profile is not None:  # python -m cProfile -o FILE -m vpnsim.tunnel ...
                out = str(profile / f"{label}-{side}.prof")
                base = (base[0], "-m", "cProfile", "-o", out, *base[1:])
            return (*base, *given)

        impl = TunnelImpl(label=label, client_argv=argv("client"), server_argv=argv("server"))

        def stop() -> None:
            try:
                tunnel.stop()
            finally:
                if psk is not None:
                    psk.unlink(missing_ok=True)

        started = time.monotonic()
        try:
            tunnel = start_tunnel(lab, impl, READY_TIMEOUT)
        except BaseException:
            if psk is not None:
                psk.unlink(missing_ok=True)
            raise
        try:
            _warm_up(lab, label)
        except BaseException:
            stop()
            raise
        return Started((tunnel.client.pid, tunnel.server.pid), time.monotonic() - started, stop)

    return start


def openvpn_gcm(lab: Lab, work: Path, profile: Path | None) -> Started:
    spec = _spec()
    folder = work / "openvpn-pki"
    ca = pki.init(folder)
    server_pem = pki.issue(folder, "server", ips=[spec.server_address])
    client_pem = pki.issue(folder, "client", client=True)
    server_ip, client_ip = spec.server_tun.split("/")[0], spec.client_tun.split("/")[0]
    common = (
        "openvpn", "--dev", "tun", "--proto", "udp", "--port", str(spec.port),
        "--dh", "none", "--ca", str(ca.cert), "--data-ciphers", "AES-256-GCM",
        "--disable-dco", "--verb", "1", "--auth-nocache",
    )  # fmt: skip
    server = (
        *common, "--tls-server", "--cert", str(server_pem.cert), "--key", str(server_pem.key),
        "--ifconfig", server_ip, client_ip,
    )  # fmt: skip
    routes = [a for cidr in spec.client_routes for a in ("--route", *_dotted(cidr), server_ip)]
    client = (
        *common, "--tls-client", "--cert", str(client_pem.cert), "--key", str(client_pem.key),
        "--remote", spec.server_address, "--nobind", "--ifconfig", client_ip, server_ip,
        *routes,
    )  # fmt: skip
    impl = TunnelImpl(label="openvpn-gcm", client_argv=client, server_argv=server)
    started = time.monotonic()
    tunnel = start_tunnel(lab, impl, READY_TIMEOUT)
    _warm_up(lab, "openvpn-gcm")
    return Started((tunnel.client.pid, tunnel.server.pid), time.monotonic() - started, tunnel.stop)


def _dotted(cidr: str) -> tuple[str, str]:
    import ipaddress

    net = ipaddress.ip_network(cidr)
    return str(net.network_address), str(net.netmask)


def _wg_keys() -> tuple[str, str]:
    """A WireGuard private and public key, base64 as `wg` reads them."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = X25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(key.private_bytes_raw()).decode(), base64.b64encode(public).decode()


def wireguard_go(lab: Lab, work: Path, profile: Path | None) -> Started:
    spec = _spec()
    token = secrets.token_hex(3)
    # wireguard-go's control sockets are /var/run/wireguard/NAME.sock, one filesystem for
    # every namespace: each end gets a name of its own.
    names = {"server": f"wgs{token}", "client": f"wgc{token}"}
    keys = {side: _wg_keys() for side in names}
    env = {"WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1", "LOG_LEVEL": "error"}
    hosts = {"server": spec.server, "client": spec.client}
    started = time.monotonic()
    programs: dict[str, proc.Program] = {}

    def stop() -> None:
        for program in programs.values():
            program.stop()

    try:
        for side, name in names.items():
            programs[side] = lab.start(
                hosts[side], ("wireguard-go", "-f", name), log_name=f"wg-{side}-{token}", env=env
            )
        for side, name in names.items():
            sock = Path(f"/var/run/wireguard/{name}.sock")
            programs[side].wait_ready(sock.exists, READY_TIMEOUT, f"{sock} exists")
            peer = "client" if side == "server" else "server"
            key_file = work / f"wg-{side}-{token}.key"
            key_file.write_text(keys[side][0] + "\n")
            wg = ["wg", "set", name, "private-key", str(key_file)]
            if side == "server":
                address = spec.client_tun.split("/")[0] + "/32"
                wg += ["listen-port", str(spec.port), "peer", keys[peer][1]]
                wg += ["allowed-ips", address]
            else:
                allowed = ",".join((spec.server_tun, *spec.client_routes))
                wg += ["peer", keys[peer][1], "allowed-ips", allowed]
                wg += ["endpoint", f"{spec.server_address}:{spec.port}"]
            _run(lab, hosts[side], wg)
            rtnl = lab.rtnl(hosts[side])
            rtnl.add_address(name, spec.server_tun if side == "server" else spec.client_tun)
            rtnl.up(name)
            if side == "client":
                for cidr in spec.client_routes:
                    rtnl.add_route(cidr, dev=name)
        _warm_up(lab, "wireguard-go")
    except BaseException:
        stop()
        raise
    return Started(tuple(p.pid for p in programs.values()), time.monotonic() - started, stop)


def _run(lab: Lab, host: str, argv: list[str]) -> None:
    program = lab.start(host, argv, log_name=f"{Path(argv[0]).name}-{secrets.token_hex(4)}")
    assert program.popen is not None
    if program.popen.wait(10) != 0:
        raise BenchError(f"{' '.join(argv)}: {program.stderr_tail()}")


def kernel_vxlan(lab: Lab, work: Path, profile: Path | None) -> Started:
    spec = _spec()
    name = f"vxk{secrets.token_hex(3)}"
    ends = {
        spec.client: (CLIENT_ADDRESS, spec.server_address, spec.client_tun),
        spec.server: (spec.server_address, CLIENT_ADDRESS, spec.server_tun),
    }
    started = time.monotonic()
    made: list[str] = []

    def stop() -> None:
        for host in made:
            lab.rtnl(host).delete_link(name)

    try:
        for host, (local, remote, inner) in ends.items():
            rtnl = lab.rtnl(host)
            rtnl.raw.link(
                "add",
                ifname=name,
                kind="vxlan",
                vxlan_id=VXLAN_ID,
                vxlan_group=remote,
                vxlan_local=local,
                vxlan_port=spec.port,
                vxlan_link=rtnl.index_of("eth0"),
            )
            made.append(host)
            rtnl.add_address(name, inner)
            rtnl.up(name)
        server_ip = spec.server_tun.split("/")[0]
        for cidr in spec.client_routes:
            lab.rtnl(spec.client).add_route(cidr, gateway=server_ip)
        _warm_up(lab, "kernel")
    except BaseException:
        stop()
        raise
    return Started((), time.monotonic() - started, stop)


CONTENDERS: dict[str, Starter] = {
    **{name: reference(name, *flags) for name, flags in REFERENCE_VARIANTS.items()},
    "openvpn-gcm": openvpn_gcm,
    "wireguard-go": wireguard_go,
    "kernel": kernel_vxlan,
}
# The programs each needs (Debian: iperf3 iputils-ping openvpn wireguard-go wireguard-tools).
NEEDS: dict[str, tuple[str, ...]] = {
    "openvpn-gcm": ("openvpn",),
    "wireguard-go": ("wireguard-go", "wg"),
}
MEASURING = ("iperf3", "ping")


def missing_programs(names: list[str]) -> list[str]:
    """Programs the chosen contenders (and the measurements) need but PATH lacks."""
    wanted = [*MEASURING, *(p for n in names for p in NEEDS.get(n, ()))]
    return [p for p in dict.fromkeys(wanted) if shutil.which(p) is None]
