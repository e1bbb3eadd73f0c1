"""`python -m vpnsim.tunnel server|client --tls ...`: the reference tunnel in TLS mode.

    server: python -m vpnsim.tunnel server --tls --cert server.crt --key server.key \\
                --tun-address 192.168.53.1/24 [--users shadow] [--pool 192.168.53.0/24]
    client: python -m vpnsim.tunnel client --tls --server vpnserver.lab --ca ca.crt \\
                --route 192.168.60.0/24 [--user seed] [--password-file F] [--tun-address CIDR]

The client connects to `--server` (a name, resolved through the host's hosts file, or an
address; `--connect` sends the connection elsewhere, the name still being what is checked),
verifies the certificate against `--ca` and that name, logs in, and only then creates its
TUN, with the address the server assigned unless `--tun-address` gives one. The password
comes from `--password-file`, else $VPNSIM_PASSWORD, else a prompt without echo; the user
name from `--user`, else a prompt. `--no-login` skips the login (a server without
`--users`). A refusal (wrong name, untrusted CA, wrong password) ends the client with
status 2 and a line saying which; a lost connection with status 1.

The server listens on TCP `--port` (4433), serves many clients (one TUN address each, from
`--pool`, the TUN's network by default), and checks logins against `--users`, a file in
/etc/shadow's format. Both print their counters as one JSON line on stdout when they stop.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import ipaddress
import json
import os
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from vpnsim.tunnel.netconf import Netconf
from vpnsim.tunnel.shadow import ShadowError, read_shadow
from vpnsim.tunnel.tls_channel import server_context, verify_hostname_context
from vpnsim.tunnel.tls_driver import TlsClientDriver, TlsServerDriver
from vpnsim.tunnel.tls_protocol import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_SEND_LIMIT,
    AddressPool,
    Credentials,
    TlsClientProtocol,
    TlsServerProtocol,
)
from vpnsim.tunnel.tun import TunFile

DEFAULT_TLS_PORT = 4433
PASSWORD_ENV = "VPNSIM_PASSWORD"
EXIT_REFUSED = 2
EXIT_LOST = 1


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m vpnsim.tunnel", description="The reference VPN endpoint, TLS mode."
    )
    parser.add_argument("side", choices=("client", "server"))
    parser.add_argument("--tls", action="store_true", required=True)
    parser.add_argument("--port", type=int, default=DEFAULT_TLS_PORT, help="TCP port (4433)")
    parser.add_argument("--tun-address", metavar="CIDR", help="address of the TUN")
    parser.add_argument("--tun-name", default="tun%d", help="name or template (tun%%d)")
    parser.add_argument("--route", action="append", default=[], metavar="CIDR")
    server = parser.add_argument_group("server")
    server.add_argument("--cert", type=Path, help="the server's certificate (PEM)")
    server.add_argument("--key", type=Path, help="its private key (PEM)")
    server.add_argument("--users", type=Path, help="logins, in /etc/shadow's format")
    server.add_argument("--pool", metavar="CIDR", help="client TUN addresses (the TUN's net)")
    server.add_argument("--handshake-timeout", type=float, default=DEFAULT_HANDSHAKE_TIMEOUT)
    server.add_argument("--send-limit", type=int, default=DEFAULT_SEND_LIMIT, metavar="BYTES")
    client = parser.add_argument_group("client")
    client.add_argument("--server", help="the server's host name (checked) or address")
    client.add_argument("--connect", metavar="ADDRESS", help="connect here instead")
    client.add_argument("--ca", type=Path, help="the CA certificate to trust (PEM)")
    client.add_argument("--user", help="user name (default: asked)")
    client.add_argument("--password-file", type=Path, help=f"else ${PASSWORD_ENV}, else asked")
    client.add_argument("--no-login", action="store_true", help="the server asks for none")
    client.add_argument("--timeout", type=float, default=10.0, help="to connect and log in")
    args = parser.parse_args(argv)
    if args.side == "server":
        if not (args.cert and args.key and args.tun_address):
            parser.error("the server needs --cert, --key and --tun-address")
    elif not (args.server and args.ca):
        parser.error("the client needs --server NAME and --ca FILE")
    return args


class Stopped(Exception):
    """Raised by the SIGTERM/SIGINT handler to leave a blocking select at once."""


def _stop(signum: int, frame: object) -> None:
    raise Stopped


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        return serve(args) if args.side == "server" else connect(args)
    except Stopped:
        return 0


def _configure(tun: TunFile, address: str, routes: list[str]) -> None:
    with Netconf() as netconf:
        netconf.add_address(tun.name, address)
        netconf.set_up(tun.name)
        for cidr in routes:
            netconf.add_route(cidr, tun.name)


def serve(args: argparse.Namespace) -> int:
    try:
        users = read_shadow(args.users) if args.users else None
        context = server_context(str(args.cert), str(args.key))
    except (ShadowError, OSError) as exc:
        print(f"server: {exc}", file=sys.stderr)
        return EXIT_LOST
    own = ipaddress.ip_interface(args.tun_address)
    pool = AddressPool(args.pool or str(own.network), reserved=(str(own.ip),))
    protocol = TlsServerProtocol(context, users, pool, args.handshake_timeout, args.send_limit)
    tun = TunFile(args.tun_name)
    _configure(tun, args.tun_address, args.route)
    listener = socket.create_server(("0.0.0.0", args.port), reuse_port=False)
    driver = TlsServerDriver(protocol, tun, listener)
    login = f"logins from {args.users}" if users is not None else "no login"
    print(f"server: {tun.name} {args.tun_address} up, tls port {args.port}, {login}", flush=True)
    with contextlib.suppress(Stopped):
        driver.run()
    stats = vars(protocol.stats)
    report = {"side": "server", "tun": tun.name, **stats, "errors": driver.errors}
    print(json.dumps(report), flush=True)
    return 0


def credentials(args: argparse.Namespace) -> Credentials | None:
    if args.no_login:
        return None
    user = args.user or input("user name: ").strip()
    if args.password_file:
        password = args.password_file.read_text().splitlines()[0]
    elif PASSWORD_ENV in os.environ:
        password = os.environ[PASSWORD_ENV]
    else:
        password = getpass.getpass("password: ")
    return Credentials(user, password)


def connect(args: argparse.Namespace) -> int:
    try:
        context = verify_hostname_context(str(args.ca))
    except OSError as exc:
        print(f"client: CA file {args.ca}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_LOST
    try:
        login = credentials(args)
    except EOFError:  # no terminal and no option: nothing to ask
        print("client: no user name or password: give --user and --password-file", file=sys.stderr)
        return EXIT_LOST
    target = args.connect or args.server
    try:
        sock = socket.create_connection((target, args.port), timeout=args.timeout)
    except OSError as exc:
        print(f"client: cannot connect to {target}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_LOST
    protocol = TlsClientProtocol(context, args.server, login)
    driver = TlsClientDriver(protocol, sock)
    driver.establish(args.timeout)
    if protocol.state != "open":
        print(f"client: refused: {protocol.closed_reason}", file=sys.stderr, flush=True)
        print(json.dumps({"side": "client", "refused": protocol.closed_kind}), flush=True)
        return EXIT_REFUSED if protocol.closed_kind != "eof" else EXIT_LOST
    address = args.tun_address or protocol.assigned
    if not address:
        print("client: no TUN address: give --tun-address (the server assigns none)")
        return EXIT_LOST
    tun = TunFile(args.tun_name)
    _configure(tun, address, args.route)
    version = protocol.channel.tls.version()
    user = f", user {login.user}" if login else ""
    peer = f"{args.server}:{args.port}"
    print(f"client: {tun.name} {address} up, {version} to {peer}{user}", flush=True)
    stopped = False
    try:
        driver.run(tun)
    except Stopped:
        stopped = True
        protocol.close()
        driver.flush()
    report = {"side": "client", "tun": tun.name, **vars(protocol.stats), "errors": driver.errors}
    print(json.dumps(report), flush=True)
    if stopped:
        return 0
    print(f"client: connection ended: {protocol.closed_reason}", file=sys.stderr, flush=True)
    return EXIT_LOST
