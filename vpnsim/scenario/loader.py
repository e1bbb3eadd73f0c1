"""Loading a scenario: TOML -> the schema's models -> cross-references -> a `Scenario`.

One set of rules for every scenario: a file (`load`, errors as FILE:LINE: KEY.PATH: what) and a
`Scenario` built in code (`validate`, the same checks on its file form, errors as
scenario NAME: KEY.PATH: what).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vpnsim.model import Host, Interface, Network, RouteSpec, Scenario, TunnelSpec
from vpnsim.scenario.lines import Path as KeyPath
from vpnsim.scenario.lines import format_path, key_lines, line_of
from vpnsim.scenario.loaded import LoadedScenario, ScenarioFileError
from vpnsim.scenario.references import cross_check
from vpnsim.scenario.schema import CHECK_TYPES, PATTERNS, ScenarioFile
from vpnsim.seed import HOST_SYSCTLS, ROUTER_SYSCTLS


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
    model = _checked(raw, where, key_lines(text))
    return LoadedScenario(
        path,
        to_scenario(model),
        tuple(model.programs),
        tuple(model.checks),
        tuple(model.impairments),
        model.tls,
        {name: dict(host.names) for name, host in model.hosts.items() if host.names},
    )


def validate(scenario: Scenario) -> None:
    """Check a scenario built in code by the file format's rules; ScenarioFileError if not."""
    where = f"scenario {scenario.name}"
    # Names a file cannot repeat (TOML refuses a key twice), but tuples can.
    for kind, names in (
        ("hosts", [h.name for h in scenario.hosts]),
        ("networks", [n.name for n in scenario.networks]),
    ):
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ScenarioFileError([f"{where}: {kind}: duplicate name {n!r}" for n in twice])
    _checked(to_document(scenario), where, {})


def _checked(raw: dict[str, Any], where: str, lines: dict[KeyPath, int]) -> ScenarioFile:
    try:
        model = ScenarioFile.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioFileError(
            [_problem(where, lines, _error_path(e), _message(e)) for e in exc.errors()]
        ) from None
    problems = [_problem(where, lines, p, m) for p, m in cross_check(model)]
    if problems:
        raise ScenarioFileError(problems)
    return model


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


def to_document(scenario: Scenario) -> dict[str, Any]:
    """A scenario in the file's form (profile linux, its sysctls as they are), to validate."""
    hosts: dict[str, Any] = {}
    for host in scenario.hosts:
        interfaces = []
        for i in host.interfaces:
            entry = {"name": i.name, "network": i.network, "address": i.address}
            interfaces.append(entry | ({"address6": i.address6} if i.address6 else {}))
        routes = [
            {k: v for k, v in (("dst", r.dst), ("via", r.via), ("dev", r.dev)) if v is not None}
            for r in host.routes
        ]
        hosts[host.name] = {
            "interfaces": interfaces,
            "routes": routes,
            "sysctls": dict(host.sysctls),
        }
    document: dict[str, Any] = {
        "scenario": {
            "name": scenario.name,
            "description": scenario.description,
            "profile": "linux",
        },
        "networks": {
            n.name: {"subnet": n.subnet} | ({"subnet6": n.subnet6} if n.subnet6 else {})
            for n in scenario.networks
        },
        "hosts": hosts,
    }
    tunnel = scenario.tunnel
    if tunnel is not None:
        fields = dict(vars(tunnel))
        fields["client_routes"] = list(tunnel.client_routes)
        fields["server_routes"] = list(tunnel.server_routes)
        document["tunnel"] = {k: v for k, v in fields.items() if v is not None}
    return document
