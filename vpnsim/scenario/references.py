"""What the schema cannot see: names that must exist (hosts, networks, programs, links) and
addresses that must fit (in their subnet, unique, gateways reachable). Every problem is a key
path and a message; `load` puts the file and line in front.
"""

from __future__ import annotations

import ipaddress

from vpnsim.impair.spec import ImpairmentError
from vpnsim.scenario.lines import Path as KeyPath
from vpnsim.scenario.lines import format_path
from vpnsim.scenario.placeholders import placeholder_problems
from vpnsim.scenario.schema import (
    Check,
    HostModel,
    ImpairmentModel,
    InterfaceCheck,
    MitmCheck,
    ReachCheck,
    RefusedCheck,
    RestartCheck,
    RouteCheck,
    RunningCheck,
    ScenarioFile,
    TunnelModel,
)

Problem = tuple[KeyPath, str]


def cross_check(model: ScenarioFile) -> list[Problem]:
    """What the schema cannot see: names that must exist, addresses that must fit."""
    problems: list[Problem] = []
    nets = {name: ipaddress.ip_network(net.subnet) for name, net in model.networks.items()}
    seen: dict[str, KeyPath] = {}
    for host_name, host in model.hosts.items():
        if host_name in model.networks:
            problems.append((("hosts", host_name), f"duplicate name: {host_name!r} is a network"))
        names: set[str] = set()
        for i, iface in enumerate(host.interfaces):
            at: KeyPath = ("hosts", host_name, "interfaces", i)
            if iface.name in names:
                problems.append(((*at, "name"), f"duplicate interface name {iface.name!r}"))
            names.add(iface.name)
            subnet = nets.get(iface.network)
            if subnet is None:
                known = ", ".join(model.networks)
                problems.append(
                    ((*at, "network"), f"unknown network {iface.network!r} (networks: {known})")
                )
                continue
            subnet6 = model.networks[iface.network].subnet6
            net6 = ipaddress.ip_network(subnet6) if subnet6 else None
            for key_name, cidr, net in (
                ("address", iface.address, subnet),
                ("address6", iface.address6, net6),
            ):
                if cidr is None:
                    continue
                if net is None:
                    problems.append(((*at, key_name), f"network {iface.network} has no subnet6"))
                    continue
                ip = ipaddress.ip_interface(cidr)
                if ip.network != net:
                    message = f"{cidr} is not an address of network {iface.network} ({net})"
                    problems.append(((*at, key_name), message))
                if str(ip.ip) in seen:
                    message = f"duplicate address {ip.ip} (also at {format_path(seen[str(ip.ip)])})"
                    problems.append(((*at, key_name), message))
                seen.setdefault(str(ip.ip), (*at, key_name))
        problems += _route_problems(model, host_name, host)
    if model.tunnel is not None:
        problems += _tunnel_problems(model, model.tunnel)
    if model.tls is not None and not _owner(model, model.tls.server_address):
        problems.append(
            (("tls", "server_address"), f"{model.tls.server_address} is no host's address")
        )
    program_names = {"client", "server"} if model.tunnel else set()
    for i, program in enumerate(model.programs):
        at = ("programs", i)
        problems += _command_problems(model, (*at, "command"), program.command)
        if program.host not in model.hosts:
            problems.append(((*at, "host"), _unknown_host(model, program.host)))
        if program.name in program_names:
            problems.append(((*at, "name"), f"duplicate program name {program.name!r}"))
        program_names.add(program.name)
    impaired: dict[str, KeyPath] = {}
    for i, entry in enumerate(model.impairments):
        at = ("impairments", i)
        problems += _impairment_problems(model, at, entry)
        if entry.link in impaired:
            also = format_path(impaired[entry.link])
            problems.append(((*at, "link"), f"duplicate link {entry.link!r} (also at {also})"))
        impaired.setdefault(entry.link, at)
    check_names: set[str] = set()
    for i, check in enumerate(model.checks):
        at = ("checks", i)
        if isinstance(check, ReachCheck) and check.proto != "tcp":
            # The IP length field bounds ICMP and UDP: IPv4 counts its header, IPv6 does not.
            limit = 65527 if ipaddress.ip_address(check.to).version == 6 else 65507
            what = "an ICMP" if check.proto == "icmp" else "a UDP"
            for k, size in enumerate(check.sizes):
                if size > limit:
                    message = f"{size} bytes: {what} payload to {check.to} is at most {limit} bytes"
                    problems.append(((*at, "sizes", k), f'{message} (use proto = "tcp")'))
        if check.name in check_names:
            problems.append(((*at, "name"), f"duplicate check name {check.name!r}"))
        check_names.add(check.name)
        problems += _check_problems(model, at, check, program_names)
    return problems


def _owner(model: ScenarioFile, address: str) -> str | None:
    """The host that has `address` on one of its interfaces."""
    for name, host in model.hosts.items():
        if any(str(ipaddress.ip_interface(i.address).ip) == address for i in host.interfaces):
            return name
    return None


def _command_problems(model: ScenarioFile, at: KeyPath, argv: list[str]) -> list[Problem]:
    return [((*at, i), message) for i, message in placeholder_problems(argv, model.tls is not None)]


def _mitm_problems(model: ScenarioFile, at: KeyPath, check: MitmCheck) -> list[Problem]:
    problems: list[Problem] = []
    for key in ("attacker", "client"):
        if getattr(check, key) not in model.hosts:
            problems.append(((*at, key), _unknown_host(model, getattr(check, key))))
    if problems:
        return problems
    target = ipaddress.ip_address(check.server_address)
    client_nets = [
        ipaddress.ip_interface(i.address).network for i in model.hosts[check.client].interfaces
    ]
    shared = [net for net in client_nets if target in net]
    attacker_nets = {
        ipaddress.ip_interface(i.address).network for i in model.hosts[check.attacker].interfaces
    }
    if not shared:
        message = f"{check.server_address} is on no network of {check.client}"
        problems.append(((*at, "server_address"), message))
    elif not attacker_nets & set(shared):
        message = (
            f"{check.attacker} is not on {shared[0]}, where {check.client} reaches "
            f"{check.server_address}: it cannot get in between"
        )
        problems.append(((*at, "attacker"), message))
    if check.attacker == check.client:
        problems.append(((*at, "attacker"), "the attacker cannot be the client itself"))
    problems += _command_problems(model, (*at, "impostor"), check.impostor)
    return problems


def _unknown_host(model: ScenarioFile, name: str) -> str:
    return f"unknown host {name!r} (hosts: {', '.join(model.hosts)})"


def _links(model: ScenarioFile) -> list[str]:
    return [f"{name}:{i.name}" for name, host in model.hosts.items() for i in host.interfaces]


def _unknown_link(model: ScenarioFile, link: str) -> str:
    return f"unknown link {link!r} (links: {', '.join(_links(model))})"


def _impairment_problems(model: ScenarioFile, at: KeyPath, entry: ImpairmentModel) -> list[Problem]:
    problems: list[Problem] = []
    if entry.link not in _links(model):
        problems.append(((*at, "link"), _unknown_link(model, entry.link)))
    try:
        entry.impairment()  # what only the whole spec sees, e.g. both loss and burst
    except ImpairmentError as exc:
        # Impairment's messages start with the field they are about: "corrupt_bytes: ...".
        field, sep, rest = str(exc).partition(": ")
        keys = field.split(".")
        if sep and keys[0] in ImpairmentModel.model_fields:
            problems.append(((*at, *keys), rest))
        else:
            problems.append((at, str(exc)))
    return problems


def _route_problems(model: ScenarioFile, host_name: str, host: HostModel) -> list[Problem]:
    problems: list[Problem] = []
    connected = [
        ipaddress.ip_interface(cidr).network
        for i in host.interfaces
        for cidr in (i.address, i.address6)
        if cidr is not None
    ]
    names = {i.name for i in host.interfaces}
    for j, route in enumerate(host.routes):
        at: KeyPath = ("hosts", host_name, "routes", j)
        if route.via is not None:
            gateway = ipaddress.ip_address(route.via)
            if not any(gateway in net for net in connected):
                nets = ", ".join(str(n) for n in connected)
                problems.append(
                    (
                        (*at, "via"),
                        f"gateway {route.via} is not on any network of "
                        f"{host_name} ({nets}): it cannot be reached",
                    )
                )
        if route.dev is not None and route.dev not in names:
            problems.append(
                (
                    (*at, "dev"),
                    f"{host_name} has no interface {route.dev!r} "
                    f"(interfaces: {', '.join(sorted(names))})",
                )
            )
    return problems


def _tunnel_problems(model: ScenarioFile, tunnel: TunnelModel) -> list[Problem]:
    problems: list[Problem] = []
    for side in ("client", "server"):
        name = getattr(tunnel, side)
        if name not in model.hosts:
            problems.append((("tunnel", side), _unknown_host(model, name)))
    server = model.hosts.get(tunnel.server)
    if server is not None:
        addresses = [str(ipaddress.ip_interface(i.address).ip) for i in server.interfaces]
        if tunnel.server_address not in addresses:
            problems.append(
                (
                    ("tunnel", "server_address"),
                    f"{tunnel.server_address} is not an "
                    f"address of {tunnel.server} ({', '.join(addresses)})",
                )
            )
    client_net = ipaddress.ip_interface(tunnel.client_tun).network
    if ipaddress.ip_interface(tunnel.server_tun).ip not in client_net:
        problems.append(
            (
                ("tunnel", "server_tun"),
                f"{tunnel.server_tun} is not on the client's TUN network {client_net}",
            )
        )
    if ipaddress.ip_interface(tunnel.server_tun).ip == ipaddress.ip_interface(tunnel.client_tun).ip:
        problems.append((("tunnel", "server_tun"), "the same address as client_tun"))
    return problems


def _check_problems(
    model: ScenarioFile, at: KeyPath, check: Check, programs: set[str]
) -> list[Problem]:
    problems: list[Problem] = []
    hosts = [("from", getattr(check, "from_", None)), ("host", getattr(check, "host", None))]
    for key, name in hosts:
        if name is not None and name not in model.hosts:
            problems.append(((*at, key), _unknown_host(model, name)))
    if isinstance(check, RunningCheck) and check.program not in programs:
        problems.append(
            (
                (*at, "program"),
                f"unknown program {check.program!r} "
                f"(programs: {', '.join(sorted(programs)) or 'none'})",
            )
        )
    if isinstance(check, RefusedCheck):
        problems += _command_problems(model, (*at, "command"), check.command)
    if isinstance(check, MitmCheck):
        problems += _mitm_problems(model, at, check)
        problems += _command_problems(model, (*at, "command"), check.command)
    if model.tunnel is None and needs_tunnel(check):
        problems.append((at, "this check needs a [tunnel] in the scenario"))
    for k, action in enumerate(check.setup):
        where = (*at, "setup", k)
        target = action.delete_route or action.add_route or action.sysctl
        if target is not None and target.host not in model.hosts:
            key = next(n for n in ("delete_route", "add_route", "sysctl") if getattr(action, n))
            problems.append(((*where, key, "host"), _unknown_host(model, target.host)))
        for key in ("stop", "start"):
            name = getattr(action, key)
            if name is not None and name not in programs:
                problems.append(
                    (
                        (*where, key),
                        f"unknown program {name!r} "
                        f"(programs: {', '.join(sorted(programs)) or 'none'})",
                    )
                )
        if action.impair is not None:
            problems += _impairment_problems(model, (*where, "impair"), action.impair)
        link = action.clear_impairment
        if link is not None and link not in _links(model):
            problems.append(((*where, "clear_impairment"), _unknown_link(model, link)))
    return problems


def needs_tunnel(check: Check) -> bool:
    """Whether a check is about the scenario's tunnel (so it must have one)."""
    return (
        isinstance(check, RestartCheck)
        or (isinstance(check, ReachCheck) and check.through_tunnel)
        or (isinstance(check, InterfaceCheck) and check.interface == "tunnel")
        or (isinstance(check, RouteCheck) and check.dev == "tunnel")
    )
