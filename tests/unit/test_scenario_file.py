"""Scenario files: every error names the file, the key path and the line, and what was expected.
No root needed: loading and validating never touch the kernel."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema
import pytest

from vpnsim.scenario import ReachCheck, ScenarioFileError, json_schema, load
from vpnsim.scenario.lines import format_path, key_lines
from vpnsim.seed import seed_tunnel

SCENARIOS = Path(__file__).parents[2] / "vpnsim" / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.toml"))

VALID = """\
[scenario]
name = "small"

[networks]
lan = { subnet = "10.0.0.0/24" }
wan = { subnet = "10.9.0.0/24" }

[hosts.A]
interfaces = [{ name = "eth0", network = "lan", address = "10.0.0.2/24" }]
routes = [
    { dst = "default", via = "10.0.0.1" },
]

[hosts.R]
router = true
interfaces = [
    { name = "eth0", network = "lan", address = "10.0.0.1/24" },
    { name = "eth1", network = "wan", address = "10.9.0.1/24" },
]

[[checks]]
name = "a-reaches-r"
type = "reach"
from = "A"
to = "10.0.0.1"
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ScenarioFileError) as raised:
        load(path)
    return [p.replace(str(path), "s.toml") for p in raised.value.problems]


def test_the_small_valid_file_loads_into_the_pure_model(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(VALID)
    loaded = load(path)
    assert [h.name for h in loaded.scenario.hosts] == ["A", "R"]
    assert dict(loaded.scenario.host("R").sysctls)["net.ipv4.ip_forward"] == "1"
    assert dict(loaded.scenario.host("A").sysctls)["net.ipv6.conf.all.disable_ipv6"] == "1"
    (check,) = loaded.checks
    assert isinstance(check, ReachCheck)
    assert (check.from_, check.to, check.proto, check.sizes) == ("A", "10.0.0.1", "icmp", [56])


def test_the_shipped_seed_tunnel_file_is_the_builtin_seed_lab() -> None:
    loaded = load(SCENARIOS / "seed-tunnel.toml")
    builtin = seed_tunnel()
    assert loaded.scenario.hosts == builtin.hosts
    assert loaded.scenario.networks == builtin.networks
    assert loaded.scenario.tunnel == builtin.tunnel


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_file_is_valid_and_starts_with_a_diagram(path: Path) -> None:
    loaded = load(path)
    assert loaded.checks, "a shipped scenario checks something"
    first = path.read_text().splitlines()[0]
    assert first.startswith("# ")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'network = "lan", address = "10.0.0.2/24"',
            'network = "lna", address = "10.0.0.2/24"',
            "s.toml:9: hosts.A.interfaces[0].network: unknown network 'lna' (networks: lan, wan)",
        ),
        (
            'address = "10.0.0.2/24"',
            'address = "10.0.1.2/24"',
            "s.toml:9: hosts.A.interfaces[0].address: 10.0.1.2/24 is not an address of network "
            "lan (10.0.0.0/24)\n"
            "s.toml:11: hosts.A.routes[0].via: gateway 10.0.0.1 is not on any network of A "
            "(10.0.1.0/24): it cannot be reached",
        ),
        (
            'address = "10.0.0.2/24"',
            'address = "10.0.0.1/24"',
            "s.toml:17: hosts.R.interfaces[0].address: duplicate address 10.0.0.1 (also at "
            "hosts.A.interfaces[0].address)",
        ),
        (
            'via = "10.0.0.1"',
            'via = "10.7.0.1"',
            "s.toml:11: hosts.A.routes[0].via: gateway 10.7.0.1 is not on any network of A "
            "(10.0.0.0/24): it cannot be reached",
        ),
        (
            'subnet = "10.0.0.0/24"',
            'subnet = "10.0.0.0/33"',
            "s.toml:5: networks.lan.subnet: expected a network like 192.168.60.0/24 (host bits "
            "zero) or 'default', got '10.0.0.0/33'",
        ),
        (
            'address = "10.0.0.2/24"',
            'address = "10.0.0.2"',
            "s.toml:9: hosts.A.interfaces[0].address: expected an address with a prefix, like "
            "10.9.0.5/24, got '10.0.0.2'",
        ),
        (
            "router = true",
            "routr = true",
            "s.toml:15: hosts.R.routr: unknown key (check its spelling; see `vpnsim schema`)",
        ),
        (
            "router = true",
            'router = "yes"',
            "s.toml:15: hosts.R.router: Input should be a valid boolean (got 'yes')",
        ),
        (
            'from = "A"',
            'from = "B"',
            "s.toml:24: checks[0].from: unknown host 'B' (hosts: A, R)",
        ),
        (
            'type = "reach"',
            'type = "raech"',
            "s.toml:23: checks[0].type: Input tag 'raech' found using 'type' does not match any of "
            "the "
            "expected tags: 'reach', 'unreachable', 'interface', 'route', 'running', 'restart', "
            "'refused', 'cleartext_absent', 'mitm'",
        ),
        (
            "[hosts.R]",
            "[hosts.lan]",
            "s.toml:14: hosts.lan: duplicate name: 'lan' is a network",
        ),
        (
            "[hosts.A]",
            '[hosts."A.1"]',
            "s.toml:8: hosts.\"A.1\": 'A.1': use letters, digits, - and _, at most 31, starting "
            "with a letter or digit",
        ),
    ],
)
def test_each_mistake_is_one_line_with_file_line_key_path_and_what_was_expected(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert VALID.count(old) >= 1
    assert problems(tmp_path, VALID.replace(old, new, 1)) == expected.split("\n")


def test_a_missing_required_key_names_where_it_belongs(tmp_path: Path) -> None:
    text = VALID.replace('name = "a-reaches-r"\n', "")
    assert problems(tmp_path, text) == ["s.toml:21: checks[0].name: required key is missing"]


def test_a_toml_syntax_error_says_where(tmp_path: Path) -> None:
    text = VALID.replace("router = true", "router = ")
    assert problems(tmp_path, text) == [
        "s.toml: TOML syntax error: Invalid value (at line 15, column 10)"
    ]


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    text = VALID.replace('from = "A"', 'from = "Z"').replace("router = true", "routr = true")
    assert problems(tmp_path, text) == [
        "s.toml:15: hosts.R.routr: unknown key (check its spelling; see `vpnsim schema`)"
    ]  # schema errors first: cross-references are checked on a file that has its shape
    fixed = text.replace("routr", "router")
    assert problems(tmp_path, fixed) == [
        "s.toml:24: checks[0].from: unknown host 'Z' (hosts: A, R)"
    ]


def test_icmp_and_udp_sizes_are_limited_but_tcp_is_not(tmp_path: Path) -> None:
    big = VALID.replace('to = "10.0.0.1"', 'to = "10.0.0.1"\nsizes = [56, 70000]')
    assert problems(tmp_path, big) == [
        "s.toml:26: checks[0].sizes[1]: 70000 bytes: an ICMP payload to 10.0.0.1 is at most "
        '65507 bytes (use proto = "tcp")'
    ]
    path = tmp_path / "tcp.toml"
    path.write_text(big.replace('type = "reach"', 'type = "reach"\nproto = "tcp"'))
    assert load(path).checks[0].sizes == [56, 70000]  # type: ignore[union-attr]


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ScenarioFileError) as raised:
        load(tmp_path / "nope.toml")
    assert str(raised.value) == f"{tmp_path / 'nope.toml'}: cannot read: No such file or directory"


def test_key_lines_follow_tables_arrays_and_inline_tables() -> None:
    lines = key_lines(VALID)
    assert lines[("networks", "wan", "subnet")] == 6
    assert lines[("hosts", "A", "routes", 0, "via")] == 11
    assert lines[("hosts", "R", "interfaces", 1, "network")] == 18
    assert lines[("checks", 0)] == 21
    assert lines[("checks", 0, "to")] == 25


def test_key_lines_count_array_tables_and_skip_strings_with_brackets() -> None:
    text = '[[a]]\nx = "[not a table]"\n[[a]]\ny = { z = "}", w = [1, [2, 3]] }\n'
    lines = key_lines(text)
    assert (lines[("a", 0, "x")], lines[("a", 1, "y", "z")], lines[("a", 1, "y", "w", 1, 0)]) == (
        2,
        4,
        4,
    )


def test_key_paths_are_written_as_a_user_would_type_them() -> None:
    assert format_path(("hosts", "U", "routes", 1, "via")) == "hosts.U.routes[1].via"
    assert format_path(("networks", "net-10.9.0.0", "subnet")) == 'networks."net-10.9.0.0".subnet'


def test_the_shipped_schema_is_the_one_the_loader_uses() -> None:
    shipped = json.loads((SCENARIOS / "schema.json").read_text())
    assert shipped == json_schema(), "regenerate: vpnsim schema > vpnsim/scenarios/schema.json"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_an_editor_checking_the_schema_accepts_every_shipped_file(path: Path) -> None:
    schema = json.loads((SCENARIOS / "schema.json").read_text())
    jsonschema.validate(tomllib.loads(path.read_text()), schema)


def test_the_schema_rejects_what_the_loader_rejects_for_shape() -> None:
    schema = json.loads((SCENARIOS / "schema.json").read_text())
    data = tomllib.loads(VALID)
    data["hosts"]["R"]["routr"] = True
    with pytest.raises(jsonschema.ValidationError, match="Additional properties"):
        jsonschema.validate(data, schema)
