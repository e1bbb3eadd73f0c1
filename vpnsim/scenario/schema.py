"""The scenario file format: pydantic models that validate a TOML document and give the JSON
Schema shipped for editors (`vpnsim schema`). Only what one value (or one table) shows is checked
here; what needs the whole file (names that must exist, addresses that must fit) is
`references.py`'s job, so every rule lives in one place.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
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
from vpnsim.model import NAME_RE

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
NAME = NAME_RE.pattern  # hosts, programs, labs: parts of namespace names
NETWORK_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"  # e.g. the lab's "net-10.9.0.0"
CHECK_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$"  # no dots: pytest shows them as "::"
IF_NAME = r"^[A-Za-z][A-Za-z0-9_.-]{0,14}$"
LINK = NAME[:-1] + ":" + IF_NAME[1:]  # HOST:IFNAME, as `vpnsim lab status` prints links
# A name in a hosts file (names.HOST_NAME, without its look-ahead for the length).
DNS_NAME = r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}(\.[A-Za-z0-9-]{1,63})*$"
USER_NAME = r"^[a-z_][a-z0-9_-]{0,31}$"  # as useradd takes them
EVENT = rf"^[0-9]+:({'|'.join(ACTIONS)})(=[0-9]+)?(@(both|out|in))?$"  # spec.parse_events' form
PATTERNS = {
    NAME: "letters, digits, - and _, at most 31, starting with a letter or digit",
    NETWORK_NAME: "letters, digits, '.', - and _, at most 63",
    CHECK_NAME: "letters, digits, - and _ (no dots), at most 80",
    IF_NAME: "an interface name: a letter, then letters, digits, '.', - or _, at most 15",
    LINK: "HOST:IFNAME, a host's interface, like U:eth0",
    DNS_NAME: "a host name: letters, digits, '-' and '.', like vpnlabserver.com",
    USER_NAME: "a user name: lower-case letters, digits, - and _, at most 32",
    EVENT: f"PACKET:ACTION[=VALUE][@out|in], ACTION one of {', '.join(ACTIONS)} "
    "(like 3:drop, 7:corrupt=40, 2:delay=30@out)",
}
Name = Annotated[str, Field(pattern=NAME)]
NetworkName = Annotated[str, Field(pattern=NETWORK_NAME)]
CheckName = Annotated[str, Field(pattern=CHECK_NAME)]
IfName = Annotated[str, Field(pattern=IF_NAME)]
LinkName = Annotated[str, Field(pattern=LINK)]
DnsName = Annotated[str, Field(pattern=DNS_NAME, max_length=253)]
UserName = Annotated[str, Field(pattern=USER_NAME)]
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
    names: dict[DnsName, IPAddr] = Field(
        {},
        description="host name -> address: this host's /etc/hosts, as its programs see it "
        "(nothing else sees it)",
    )


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


class TlsModel(Strict):
    """The TLS lab's material, made before any program starts, for programs' argv: `{ca}`
    (the lab CA), `{cert}` and `{key}` (the server's, issued by it to `server_name` and
    `server_address`), `{users}` (the logins, in /etc/shadow's format), `{pki}` (the folder:
    `{pki}/USER.password` holds each user's password), `{other_ca}` (a CA that signed nothing
    in the lab) and `{impostor_cert}`, `{impostor_key}` (self-signed, for `server_name`)."""

    server_name: DnsName = Field(description="the name in the server's certificate")
    server_address: IPAddr = Field(description="the server's address, in its certificate too")
    users: dict[UserName, Annotated[str, Field(min_length=1)]] = Field(
        {}, description="user name -> password: the server's logins"
    )


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
    output: Annotated[str, Field(min_length=1)] | None = Field(
        None, description="text the program prints (stdout or stderr) once it is ready"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ReadyModel:
        given = [
            self.tcp_port is not None,
            self.udp_port is not None,
            self.tun,
            self.output is not None,
        ]
        if sum(given) != 1:
            raise ValueError("give exactly one of tcp_port, udp_port, tun = true, output")
        return self


class ProgramModel(Strict):
    name: Name
    host: Name
    command: list[str] = Field(
        min_length=1, description='"{python}" is this Python; [tls] gives "{ca}", "{pki}", ...'
    )
    ready: ReadyModel | None = None
    timeout: Seconds = 10.0
    phase: Literal["before-tunnel", "tunnel"] = Field(
        "before-tunnel",
        description="tunnel: started with the tunnel, after the before-tunnel checks "
        "(e.g. the ends of a TLS tunnel)",
    )


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


Command = Annotated[
    list[str], Field(min_length=1, description="argv, with the placeholders of [[programs]]")
]
Reason = Annotated[str, Field(min_length=1)]


class RefusedCheck(CheckBase):
    """A client run on `host` is refused: it exits with a non-zero status within `timeout`,
    says `reason` (on stdout or stderr), and no TUN appears on `host` while it runs."""

    type: Literal["refused"]
    host: Name
    command: Command
    reason: Reason = Field(description="text the refusal must contain")
    timeout: Seconds = 10.0


class CleartextAbsentCheck(CheckBase):
    """Packets whose payload is `marker`, sent from `from` to `to` and echoed back, cross
    `link` (captured meanwhile) only encrypted: no captured frame holds the marker, and the
    link carried at least as many bytes as the probe sent (so it was the probe's path)."""

    type: Literal["cleartext_absent"]
    link: LinkName = Field(description="HOST:IFNAME to capture, e.g. the server's outer link")
    from_: Name = Field(alias="from")
    to: IPAddr
    proto: Proto = "icmp"
    marker: Annotated[str, Field(min_length=8, max_length=64)] = "vpnsim-cleartext-marker"
    size: Annotated[int, Field(ge=64, le=65000)] = Field(
        1000, description="payload bytes: the marker repeated"
    )
    timeout: Seconds | None = None


class MitmCheck(CheckBase):
    """A man in the middle gets no tunnel: `attacker` puts itself on the path from `client`
    to `server_address` (a route on the client, as ARP spoofing would) and redirects TCP
    `port` to `impostor` (nftables), a server of its own. The client `command` must then be
    refused as a `refused` check is, and must have reached the impostor (or the check
    proves nothing)."""

    type: Literal["mitm"]
    attacker: Name
    client: Name
    server_address: IPAddr
    port: Port = 4433
    impostor: Command = Field(description="the attacker's server, started on `attacker`")
    command: Command = Field(description="the client, run on `client`")
    reason: Reason = Field(description="text the refusal must contain")
    timeout: Seconds = 10.0


Check = Annotated[
    ReachCheck
    | UnreachableCheck
    | InterfaceCheck
    | RouteCheck
    | RunningCheck
    | RestartCheck
    | RefusedCheck
    | CleartextAbsentCheck
    | MitmCheck,
    Field(discriminator="type"),
]
CHECK_TYPES = (
    "reach",
    "unreachable",
    "interface",
    "route",
    "running",
    "restart",
    "refused",
    "cleartext_absent",
    "mitm",
)


class ScenarioFile(Strict):
    """A vpnsim scenario: a topology, the programs to start in it and the checks to make."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, title="vpnsim scenario")

    scenario: ScenarioMeta
    networks: dict[NetworkName, NetworkModel] = Field(min_length=1)
    hosts: dict[Name, HostModel] = Field(min_length=1)
    tunnel: TunnelModel | None = None
    tls: TlsModel | None = Field(
        None, description="the TLS lab's PKI and logins, for programs' argv placeholders"
    )
    impairments: list[ImpairmentModel] = Field(
        [], description="links impaired from the start, before the tunnel and any check"
    )
    programs: list[ProgramModel] = []
    checks: list[Check] = []
