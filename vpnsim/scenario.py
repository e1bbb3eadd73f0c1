"""Scenario files: TOML, one scenario per file, loaded into a `Scenario` plus its programs and
checks. Every error names the file, the key path and the line, and says what was expected.

The pydantic models below are the format: the loader validates against them and the JSON
Schema shipped for editors (`vpnsim schema`) is generated from them. Cross-references (hosts,
networks, addresses, gateways, programs, links) are checked after, with the same kind of message.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from vpnsim.impair.spec import (
    ACTIONS,
    MAX_DELAY_MS,
    Impairment,
    ImpairmentError,
    parse_events,
    parse_rate,
)
from vpnsim.model import Host, Interface, Network, RouteSpec, Scenario, ScenarioError, TunnelSpec
from vpnsim.scenario_lines import Path as KeyPath
from vpnsim.scenario_lines import format_path, key_lines, line_of
from vpnsim.seed import HOST_SYSCTLS, ROUTER_SYSCTLS


class ScenarioFileError(ScenarioError):
    """A scenario file is malformed; one line per problem: FILE:LINE: KEY.PATH: what."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


# Values -----------------------------------------------------------------------------------


def _cidr(value: str) -> str:
    expected = f"expected an address with a prefix, like 10.9.0.5/24, got {value!r}"
    try:
        iface = ipaddress.ip_interface(value)
    except ValueError:
        raise ValueError(expected) from None
    if "/" not in value:
        raise ValueError(expected)
    return str(iface)


def _network(value: str) -> str:
    if value == "default":
        return value
    try:
        return str(ipaddress.ip_network(value))
    except ValueError:
        raise ValueError(
            f"expected a network like 192.168.60.0/24 (host bits zero) or 'default', got {value!r}"
        ) from None


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"expected an IP address like 10.9.0.11, got {value!r}") from None


Cidr = Annotated[str, AfterValidator(_cidr)]
NetworkCidr = Annotated[str, AfterValidator(_network)]
IPAddr = Annotated[str, AfterValidator(_address)]
# Patterns, and how an error message says them in words.
NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,30}$"  # hosts, programs: parts of namespace names
NETWORK_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"  # e.g. the lab's "net-10.9.0.0"
CHECK_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$"  # no dots: pytest shows them as "::"
IF_NAME = r"^[A-Za-z][A-Za-z0-9_.-]{0,14}$"
LINK = NAME[:-1] + ":" + IF_NAME[1:]  # HOST:IFNAME, as `vpnsim lab status` prints links
EVENT = rf"^[0-9]+:({'|'.join(ACTIONS)})(=[0-9]+)?(@(both|out|in))?$"  # spec.parse_events' form
PATTERNS = {
    NAME: "letters, digits, - and _, at most 31, starting with a letter or digit",
    NETWORK_NAME: "letters, digits, '.', - and _, at most 63",
    CHECK_NAME: "letters, digits, - and _ (no dots), at most 80",
    IF_NAME: "an interface name: a letter, then letters, digits, '.', - or _, at most 15",
    LINK: "HOST:IFNAME, a host's interface, like U:eth0",
    EVENT: f"PACKET:ACTION[=VALUE][@out|in], ACTION one of {', '.join(ACTIONS)} "
    "(like 3:drop, 7:corrupt=40, 2:delay=30@out)",
}
Name = Annotated[str, Field(pattern=NAME)]
NetworkName = Annotated[str, Field(pattern=NETWORK_NAME)]
CheckName = Annotated[str, Field(pattern=CHECK_NAME)]
IfName = Annotated[str, Field(pattern=IF_NAME)]
LinkName = Annotated[str, Field(pattern=LINK)]
Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0, le=600)]
Probability = Annotated[float, Field(ge=0, le=1)]
Milliseconds = Annotated[float, Field(ge=0, le=MAX_DELAY_MS)]


def _impairment_field(name: str, value: Any) -> None:
    """Impairment's own check of one field, as a ValueError pydantic places at that key."""
    try:
        Impairment(**{name: value})
    except ImpairmentError as exc:
        raise ValueError(str(exc).removeprefix(f"{name}: ")) from None


def _rate(value: object) -> int | str:
    # One validator for both forms: a union would report one error per member, at odd paths.
    if isinstance(value, int) and not isinstance(value, bool):
        _impairment_field("rate", value)
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected bit/s as an integer or a string like '10mbit', got {value!r}")
    try:
        bps = parse_rate(value)
    except ImpairmentError:
        raise ValueError(
            f"expected a rate like 10mbit, 512kbit or 1000000 (bit/s), got {value!r}"
        ) from None
    _impairment_field("rate", bps)
    return value


def _event(value: str) -> str:
    (event,) = parse_events(value)  # the pattern admits exactly one
    try:
        Impairment(events=(event,))  # packets count from 1, delays are bounded
    except ImpairmentError as exc:
        # Said of the text as written, not of the parsed Event.
        raise ValueError(f"{value!r}: " + str(exc).removeprefix(f"events: {event!r}: ")) from None
    return value


Rate = Annotated[
    int | str,
    PlainValidator(_rate),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer", "minimum": 8000}, {"type": "string"}],
            "description": "bit/s, or a string with a unit: 512kbit, 10mbit, 1gbit",
        }
    ),
]
EventText = Annotated[str, Field(pattern=EVENT), AfterValidator(_event)]
# A TOML array, not a tuple: strict mode takes a tuple only from a Python tuple.
ByteRange = Annotated[
    list[Annotated[int, Field(ge=0, le=65535)]], Field(min_length=2, max_length=2)
]


class Strict(BaseModel):
    """No unknown keys, no silent coercion of strings into numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# Topology ---------------------------------------------------------------------------------


class ScenarioMeta(Strict):
    name: Name
    description: str = ""
    profile: Literal["seed", "linux"] = Field(
        "seed",
        description="seed: IPv6 off and rp_filter 0 in every host, as in the lab's containers; "
        "linux: the kernel's defaults",
    )


class NetworkModel(Strict):
    subnet: NetworkCidr
    subnet6: NetworkCidr | None = Field(None, description="an IPv6 subnet too (dual stack)")


class InterfaceModel(Strict):
    name: IfName
    network: NetworkName
    address: Cidr
    address6: Cidr | None = Field(None, description="an IPv6 address in the network's subnet6")


class RouteModel(Strict):
    dst: NetworkCidr
    via: IPAddr | None = None
    dev: IfName | None = None

    @model_validator(mode="after")
    def _needs_a_way(self) -> RouteModel:
        if self.via is None and self.dev is None:
            raise ValueError("a route needs 'via' (a gateway) or 'dev' (an interface)")
        return self


class HostModel(Strict):
    interfaces: list[InterfaceModel] = Field(min_length=1)
    routes: list[RouteModel] = []
    router: bool = Field(False, description="forward packets (net.ipv4.ip_forward = 1)")
    sysctls: dict[str, str | int] = Field({}, description="net.* keys, set before any link")


class TunnelModel(Strict):
    client: Name
    server: Name
    server_address: IPAddr
    port: Port = 9090
    mode: Literal["tun", "tap"] = "tun"
    client_tun: Cidr
    server_tun: Cidr
    client_routes: list[NetworkCidr]
    server_routes: list[NetworkCidr] = []
    client_tun6: Cidr | None = Field(None, description="IPv6 inside the tunnel: client side")
    server_tun6: Cidr | None = Field(None, description="IPv6 inside the tunnel: server side")


# Impairments ------------------------------------------------------------------------------


class BurstModel(Strict):
    """Bursty loss (Gilbert-Elliott): `p` is the chance per packet of going bad, `r` of going
    good again; each state has its own loss chance."""

    p: Probability
    r: Probability
    loss_bad: Probability = 1.0
    loss_good: Probability = 0.0


class ImpairmentModel(Strict):
    """A seeded userspace wire on one link (vpnsim.impair): what happens to its packets.
    Probabilities are from 0 to 1; the same seed and the same traffic give the same fates."""

    link: LinkName = Field(description="HOST:IFNAME, e.g. U:eth0")
    seed: Annotated[int, Field(ge=0, le=2**64 - 1)] = 0
    loss: Probability = 0.0
    burst: BurstModel | None = Field(None, description="bursty loss, instead of loss")
    dup: Probability = 0.0
    reorder: Probability = Field(0.0, description="chance a packet goes after the next one")
    corrupt: Probability = Field(0.0, description="chance one byte of the IP packet is flipped")
    corrupt_bytes: ByteRange | None = Field(
        None, description="[start, end): the byte offsets corruption may hit"
    )
    fix_checksums: bool = Field(
        False, description="recompute IP, UDP, TCP and ICMP checksums if corrupted"
    )
    delay_ms: Milliseconds = 0.0
    jitter_ms: Milliseconds = Field(0.0, description="uniform +- around delay_ms (reorders)")
    rate: Rate | None = None
    mtu: Annotated[int, Field(ge=68, le=65535)] | None = Field(
        None, description="IP packets longer than this are dropped"
    )
    events: list[EventText] = Field(
        [], description='single packets, counted from 1 per direction: "3:drop", "7:corrupt=40"'
    )
    direction: Literal["both", "out", "in"] = Field(
        "both", description="out: what the host sends; in: what it receives"
    )

    def impairment(self) -> Impairment:
        """The spec this table describes; ImpairmentError if the fields conflict."""
        return Impairment.from_dict(self.model_dump(exclude={"link"}, exclude_none=True))


# Programs and checks ----------------------------------------------------------------------


class ReadyModel(Strict):
    """When a program counts as started: one condition, polled, never slept for."""

    tcp_port: Port | None = None
    udp_port: Port | None = None
    tun: bool = False

    @model_validator(mode="after")
    def _exactly_one(self) -> ReadyModel:
        given = [self.tcp_port is not None, self.udp_port is not None, self.tun]
        if sum(given) != 1:
            raise ValueError("give exactly one of tcp_port, udp_port, tun = true")
        return self


class ProgramModel(Strict):
    name: Name
    host: Name
    command: list[str] = Field(min_length=1, description='"{python}" is this Python')
    ready: ReadyModel | None = None
    timeout: Seconds = 10.0


class DeleteRoute(Strict):
    host: Name
    dst: NetworkCidr


class AddRoute(Strict):
    host: Name
    dst: NetworkCidr
    via: IPAddr | None = None
    dev: IfName | None = None


class SetSysctl(Strict):
    host: Name
    key: str
    value: str | int


class Action(Strict):
    """One change to the running lab, made before a check: exactly one key.

    A change is never undone after its check: the checks after it, in file order, see the lab
    as it left it, so a later action undoes it (`start` after `stop`, `add_route` after
    `delete_route`). Likewise an `impair` stays on its link until a later `impair` replaces it
    or `clear_impairment` leaves a clean wire (not the file's `[[impairments]]` entry: to go
    back to that, `impair` with its values).
    """

    delete_route: DeleteRoute | None = None
    add_route: AddRoute | None = None
    sysctl: SetSysctl | None = None
    stop: Name | None = Field(None, description="stop a program: client, server or a name")
    start: Name | None = Field(None, description="start a stopped program again")
    impair: ImpairmentModel | None = Field(
        None, description="set (or replace) the impairment of a link"
    )
    clear_impairment: LinkName | None = Field(
        None, description="a clean wire on a link (HOST:IFNAME): everything forwarded at once"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Action:
        given = [k for k, v in self.__dict__.items() if v is not None]
        if len(given) != 1:
            raise ValueError(
                "an action is exactly one of delete_route, add_route, sysctl, stop, start, "
                "impair, clear_impairment"
            )
        return self


class CheckBase(Strict):
    name: CheckName
    description: str = ""
    phase: Literal["before-tunnel", "tunnel"] = Field(
        "tunnel", description="before-tunnel checks run before the tunnel is started"
    )
    setup: list[Action] = []


Proto = Literal["icmp", "udp", "tcp"]


class ReachCheck(CheckBase):
    """`from` reaches `to`, and what comes back equals what was sent, for each size."""

    type: Literal["reach"]
    from_: Name = Field(alias="from")
    to: IPAddr
    proto: Proto = "icmp"
    sizes: list[Annotated[int, Field(ge=1, le=16 << 20)]] = Field(
        [56], description="payload bytes; ICMP and UDP at most 65507"
    )
    through_tunnel: bool = Field(
        False,
        description="also require evidence: TUN counters moved "
        "and datagrams crossed to the server's port",
    )
    timeout: Seconds | None = None


class UnreachableCheck(CheckBase):
    """`from` does not reach `to` (no route, or no answer within `timeout`)."""

    type: Literal["unreachable"]
    from_: Name = Field(alias="from")
    to: IPAddr
    proto: Proto = "icmp"
    timeout: Seconds = 1.0


class InterfaceCheck(CheckBase):
    """A host has an interface (by name, or the tunnel's TUN/TAP found by type) in a state."""

    type: Literal["interface"]
    host: Name
    interface: IfName | Literal["tunnel"] = Field(
        "tunnel", description="a name, or 'tunnel': the TUN (or TAP) device, however named"
    )
    address: Cidr | None = None
    up: bool = True


class RouteCheck(CheckBase):
    type: Literal["route"]
    host: Name
    dst: NetworkCidr
    via: IPAddr | None = None
    dev: IfName | Literal["tunnel"] | None = None


class RunningCheck(CheckBase):
    type: Literal["running"]
    program: Name = Field(description="client, server or a [[programs]] name")


class RestartCheck(CheckBase):
    """A TCP session from `from` to `to` survives a restart of `program`: bytes sent while it
    was down arrive once it is back (the lab's task 6)."""

    type: Literal["restart"]
    program: Literal["client", "server"] = "client"
    from_: Name = Field(alias="from")
    to: IPAddr
    timeout: Seconds = 10.0


Check = Annotated[
    ReachCheck | UnreachableCheck | InterfaceCheck | RouteCheck | RunningCheck | RestartCheck,
    Field(discriminator="type"),
]
CHECK_TYPES = ("reach", "unreachable", "interface", "route", "running", "restart")


class ScenarioFile(Strict):
    """A vpnsim scenario: a topology, the programs to start in it and the checks to make."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, title="vpnsim scenario")

    scenario: ScenarioMeta
    networks: dict[NetworkName, NetworkModel] = Field(min_length=1)
    hosts: dict[Name, HostModel] = Field(min_length=1)
    tunnel: TunnelModel | None = None
    impairments: list[ImpairmentModel] = Field(
        [], description="links impaired from the start, before the tunnel and any check"
    )
    programs: list[ProgramModel] = []
    checks: list[Check] = []


# Loading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedScenario:
    """A scenario file, validated: the topology, its programs and its checks, in file order."""

    path: Path
    scenario: Scenario
    programs: tuple[ProgramModel, ...]
    checks: tuple[Check, ...]
    impairments: tuple[ImpairmentModel, ...] = ()


def load(path: str | Path) -> LoadedScenario:
    """Read and validate a scenario file; ScenarioFileError lists every problem found."""
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioFileError([f"{where}: cannot read: {exc.strerror}"]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioFileError([f"{where}: TOML syntax error: {exc}"]) from None
    lines = key_lines(text)
    try:
        model = ScenarioFile.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioFileError(
            [_problem(where, lines, _error_path(e), _message(e)) for e in exc.errors()]
        ) from None
    problems = [_problem(where, lines, p, m) for p, m in cross_check(model)]
    if problems:
        raise ScenarioFileError(problems)
    scenario = dataclasses.replace(to_scenario(model), source=str(path.resolve()))
    return LoadedScenario(
        path, scenario, tuple(model.programs), tuple(model.checks), tuple(model.impairments)
    )


def json_schema() -> dict[str, Any]:
    schema = ScenarioFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def _problem(where: str, lines: dict[KeyPath, int], path: KeyPath, message: str) -> str:
    line = line_of(lines, path)
    at = f"{where}:{line}" if line is not None else where
    return f"{at}: {format_path(path) or '(top level)'}: {message}"


def _error_path(error: Any) -> KeyPath:
    path = _key_path(error["loc"])
    # An unknown check type is the `type` key's fault, not the whole table's.
    return (*path, "type") if error["type"] == "union_tag_invalid" else path


def _key_path(loc: Iterable[str | int]) -> KeyPath:
    # A discriminated union adds its tag ("reach") after a list index, and a bad dict key adds
    # "[key]": neither is a key of the file.
    path: list[str | int] = []
    for part in loc:
        is_tag = part in CHECK_TYPES and bool(path) and isinstance(path[-1], int)
        if part != "[key]" and not is_tag:
            path.append(part)
    return tuple(path)


def _message(error: Any) -> str:
    kind, message = error["type"], error["msg"]
    if kind == "extra_forbidden":
        return "unknown key (check its spelling; see `vpnsim schema`)"
    if kind == "missing":
        return "required key is missing"
    if kind == "value_error":
        return str(message).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        wanted = PATTERNS.get(error["ctx"]["pattern"], f"the pattern {error['ctx']['pattern']}")
        return f"{error['input']!r}: use {wanted}"
    given = error.get("input")
    shown = "" if isinstance(given, dict | list) else f" (got {given!r})"
    return f"{message}{shown}"


# Cross-references -------------------------------------------------------------------------


def cross_check(model: ScenarioFile) -> list[tuple[KeyPath, str]]:
    """What the schema cannot see: names that must exist, addresses that must fit."""
    problems: list[tuple[KeyPath, str]] = []
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
    program_names = {"client", "server"} if model.tunnel else set()
    for i, program in enumerate(model.programs):
        at = ("programs", i)
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


def _unknown_host(model: ScenarioFile, name: str) -> str:
    return f"unknown host {name!r} (hosts: {', '.join(model.hosts)})"


def _links(model: ScenarioFile) -> list[str]:
    return [f"{name}:{i.name}" for name, host in model.hosts.items() for i in host.interfaces]


def _unknown_link(model: ScenarioFile, link: str) -> str:
    return f"unknown link {link!r} (links: {', '.join(_links(model))})"


def _impairment_problems(
    model: ScenarioFile, at: KeyPath, entry: ImpairmentModel
) -> list[tuple[KeyPath, str]]:
    problems: list[tuple[KeyPath, str]] = []
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


def _route_problems(
    model: ScenarioFile, host_name: str, host: HostModel
) -> list[tuple[KeyPath, str]]:
    problems: list[tuple[KeyPath, str]] = []
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


def _tunnel_problems(model: ScenarioFile, tunnel: TunnelModel) -> list[tuple[KeyPath, str]]:
    problems: list[tuple[KeyPath, str]] = []
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
) -> list[tuple[KeyPath, str]]:
    problems: list[tuple[KeyPath, str]] = []
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


# To the pure model ------------------------------------------------------------------------


def to_scenario(model: ScenarioFile) -> Scenario:
    linux = model.scenario.profile == "linux"
    hosts = []
    for name, host in model.hosts.items():
        if linux:
            forward = "1" if host.router else "0"
            base: tuple[tuple[str, str], ...] = (
                ("net.ipv4.ip_forward", forward),
                ("net.ipv6.conf.all.forwarding", forward),
            )
        else:
            base = ROUTER_SYSCTLS if host.router else HOST_SYSCTLS
        sysctls = dict(base) | {key: str(value) for key, value in host.sysctls.items()}
        hosts.append(
            Host(
                name=name,
                interfaces=tuple(
                    Interface(i.name, i.network, i.address, i.address6) for i in host.interfaces
                ),
                routes=tuple(RouteSpec(r.dst, r.via, r.dev) for r in host.routes),
                sysctls=tuple(sysctls.items()),
            )
        )
    tunnel = model.tunnel
    spec = None
    if tunnel is not None:
        spec = TunnelSpec(
            client=tunnel.client,
            server=tunnel.server,
            server_address=tunnel.server_address,
            port=tunnel.port,
            client_tun=tunnel.client_tun,
            server_tun=tunnel.server_tun,
            client_routes=tuple(tunnel.client_routes),
            server_routes=tuple(tunnel.server_routes),
            mode=tunnel.mode,
            client_tun6=tunnel.client_tun6,
            server_tun6=tunnel.server_tun6,
        )
    return Scenario(
        name=model.scenario.name,
        description=model.scenario.description,
        networks=tuple(
            Network(name, net.subnet, net.subnet6) for name, net in model.networks.items()
        ),
        hosts=tuple(hosts),
        tunnel=spec,
    )
