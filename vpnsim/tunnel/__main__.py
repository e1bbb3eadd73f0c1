"""`python -m vpnsim.tunnel client|server`: the reference VPN endpoint, SEED wire-compatible.

    server: python -m vpnsim.tunnel server --tun-address 192.168.53.1/24 [--port 9090]
    client: python -m vpnsim.tunnel client --server 10.9.0.11 --tun-address 192.168.53.99/24 \\
                --route 192.168.60.0/24 [--port 9090]
    TAP (task 9): add --mode tap to both, and --gateway 192.168.53.1 to the client
    TLS (the TLS/SSL VPN lab): add --tls to both; see `vpnsim.tunnel.tls_main`
    encrypted: add --wire aead --psk-file FILE to both (X25519 + AES-256-GCM, `tunnel.secure`;
               not SEED-compatible, TUN only)
    fast: add --offload to both (TCP super-packets per datagram, `tunnel.offload`; not
          SEED-compatible, TUN only; with plain or aead)
    batched: add --gso to either or both (UDP GSO/GRO runs, `tunnel.gso`; the wire stays
          what it is, SEED's in plain mode; the client's TUN MTU drops to 1472, 1440 with
          aead; TUN only, not with --offload)

Each end creates its TUN (a TAP with --mode tap: Ethernet frames, one per datagram), gives it
the address, brings it up, adds the routes, binds its UDP socket and forwards until SIGTERM or
SIGINT; it then prints its counters as one JSON line on stdout (evidence for tests) and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from vpnsim.tunnel.driver import Driver, TunDevice, UdpTransport
from vpnsim.tunnel.frames import FrameClientProtocol, FrameServerProtocol
from vpnsim.tunnel.gso import GSO_TUN_MTU, GsoTransport
from vpnsim.tunnel.netconf import Netconf
from vpnsim.tunnel.offload import GSO_MAX_SIZE, OffloadTun
from vpnsim.tunnel.protocol import Address, ClientProtocol, Endpoint, ServerProtocol
from vpnsim.tunnel.tun import TunFile

DEFAULT_PORT = 9090
# An AEAD client adds its routes once its first handshake is done, or after this long (the
# server may be down: the client then starts anyway and keeps trying).
FIRST_HANDSHAKE_WAIT = 5.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m vpnsim.tunnel", description="The reference SEED VPN tunnel endpoint."
    )
    parser.add_argument("side", choices=("client", "server"))
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="UDP port of the server")
    parser.add_argument("--server", help="server address (client side)")
    parser.add_argument(
        "--mode",
        choices=("tun", "tap"),
        default="tun",
        help="tun: IP packets (default); tap: Ethernet frames, ARP through the tunnel",
    )
    parser.add_argument(
        "--wire",
        choices=("plain", "aead"),
        default="plain",
        help="plain: one raw IP packet per datagram, as SEED's (default); aead: encrypted",
    )
    parser.add_argument(
        "--offload",
        action="store_true",
        help="TCP super-packets of up to 64 KB per datagram (TUN TSO, `tunnel.offload`); "
        "both ends need it: not SEED-compatible",
    )
    parser.add_argument(
        "--gso",
        action="store_true",
        help="UDP GSO/GRO: runs of datagrams per system call (`tunnel.gso`); the wire stays "
        f"what it is; the client's TUN MTU defaults to {GSO_TUN_MTU} (less 32 with aead); "
        "TUN mode, not with --offload",
    )
    parser.add_argument(
        "--psk-file", type=Path, help="pre-shared key of --wire aead (16+ secret bytes)"
    )
    parser.add_argument(
        "--tun-address",
        action="append",
        required=True,
        metavar="CIDR",
        help="address of the TUN (repeatable: IPv4 and IPv6)",
    )
    parser.add_argument("--tun-name", help="name or template (default tun%%d, or tap%%d)")
    parser.add_argument("--mtu", type=int, help="TUN MTU (default: the kernel's, 1500)")
    parser.add_argument(
        "--route", action="append", default=[], metavar="CIDR", help="route CIDR into the TUN"
    )
    parser.add_argument(
        "--gateway",
        action="append",
        default=[],
        type=ipaddress.ip_address,
        metavar="ADDRESS",
        help="routes of this address's family go via it (the peer's TAP address, --mode tap)",
    )
    args = parser.parse_args(argv)
    if args.offload and args.mode != "tun":
        parser.error("--offload needs --mode tun")
    if args.gso and (args.mode != "tun" or args.offload):
        parser.error("--gso needs --mode tun, without --offload")
    if args.side == "client" and not args.server:
        parser.error("the client needs --server ADDRESS")
    if args.wire == "aead" and (args.psk_file is None or args.mode != "tun"):
        parser.error("--wire aead needs --psk-file FILE, and --mode tun")
    if args.wire == "aead":
        # Read before any device exists: a bad file is a usage error, not a half-made tunnel.
        from vpnsim.tunnel.crypto import PskFileError, load_psk

        try:
            args.psk = load_psk(args.psk_file)
        except PskFileError as exc:
            parser.error(str(exc))
    return args


def _endpoint(args: argparse.Namespace, server: Address | None) -> Endpoint:
    """The sans-IO endpoint of this side and mode (`server` None: we are the server)."""
    if args.wire == "aead":
        # Imported only here: plain mode's start-up never loads `cryptography`.
        from vpnsim.tunnel.secure import SecureClient, SecureServer

        return SecureServer(args.psk) if server is None else SecureClient(server, args.psk)
    if args.mode == "tap":
        return FrameServerProtocol() if server is None else FrameClientProtocol(server)
    return ServerProtocol() if server is None else ClientProtocol(server)


def _first_handshake(driver: Driver, endpoint: Endpoint) -> None:
    """Run an AEAD client until its first session is up, or FIRST_HANDSHAKE_WAIT has passed.

    Routes come after it: whoever waits for them (the harness's readiness) then finds a
    tunnel that forwards at once, not one whose first packets wait on a handshake retry.
    """
    from vpnsim.tunnel.secure import SecureClient

    assert isinstance(endpoint, SecureClient)
    client = endpoint
    driver.run_until(lambda: client.current is not None, FIRST_HANDSHAKE_WAIT)


def _gso_state(transport: UdpTransport) -> str:
    """What the start line says of --gso: on, or which half this kernel lacks."""
    if not isinstance(transport, GsoTransport):
        return ""
    counters = transport.counters
    missing = [
        name
        for name, has in (("UDP_SEGMENT", counters.segment), ("UDP_GRO", counters.gro))
        if not has
    ]
    return f" gso (this kernel lacks {' and '.join(missing)})" if missing else " gso"


class Stopped(Exception):
    """Raised by the SIGTERM/SIGINT handler: it interrupts a blocking select at once."""


def _stop(signum: int, frame: FrameType | None) -> None:
    # Raising, not setting a flag: Python retries an interrupted select (PEP 475), so a flag
    # would be seen only at the next tick and `stop()` would escalate to SIGKILL.
    raise Stopped


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if "--tls" in given:  # TLS mode: its own options (see tunnel.tls_main)
        from vpnsim.tunnel import tls_main

        return tls_main.main(given)
    args = parse_args(given)
    tun: TunDevice
    gso_max_size, mtu = None, args.mtu
    if args.gso and mtu is None and args.side == "client":
        mtu = GSO_TUN_MTU  # its TCP's segments then fit a run's datagrams (see tunnel.gso)
        if args.wire == "aead":
            from vpnsim.tunnel.secure_wire import DATA_MIN_BYTES

            mtu -= DATA_MIN_BYTES  # each packet is sealed behind a header, with a tag
    if args.offload:
        gso_max_size = GSO_MAX_SIZE
        tun = OffloadTun(args.tun_name or "tun%d")
    else:
        tun = TunFile(args.tun_name or f"{args.mode}%d", args.mode)
    gateways = {gateway.version: str(gateway) for gateway in args.gateway}
    server = None if args.side == "server" else (args.server, args.port)
    bind = ("0.0.0.0", args.port if server is None else 0)
    transport = GsoTransport(bind) if args.gso else UdpTransport(bind)
    endpoint = _endpoint(args, server)
    driver = Driver(endpoint, tun, transport)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with contextlib.suppress(Stopped):
        with Netconf() as netconf:
            for cidr in args.tun_address:
                netconf.add_address(tun.name, cidr)
            netconf.set_up(tun.name, mtu, gso_max_size)
            if args.wire == "aead" and server is not None:
                _first_handshake(driver, endpoint)
            for cidr in args.route:
                version = ipaddress.ip_network(cidr).version
                netconf.add_route(cidr, tun.name, gateways.get(version))
        addresses = " ".join(args.tun_address)
        wire = f"{args.wire}{' offload' if args.offload else ''}{_gso_state(transport)}"
        print(f"{args.side}: {tun.name} {addresses} up, udp port {args.port}, {wire}", flush=True)
        driver.run()
    report = {"side": args.side, "tun": tun.name, **vars(endpoint.stats), "errors": driver.errors}
    if isinstance(tun, OffloadTun):
        report["offload"] = tun.report()
    if isinstance(transport, GsoTransport):
        report["gso"] = transport.report()
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
