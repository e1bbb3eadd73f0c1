"""The TLS lab's part of the scenario format, without a lab: placeholders, the new tables and
check types as the loader reports their mistakes, and the pure parts of the new checks."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

from vpnsim.model import Host, Interface, Network, Scenario
from vpnsim.pytest.grouping import scope_of
from vpnsim.scenario.loaded import ScenarioFileError
from vpnsim.scenario.loader import load
from vpnsim.scenario.placeholders import fill, placeholder_problems
from vpnsim.scenario.redirect import redirect_rule
from vpnsim.scenario.schema import CleartextAbsentCheck, MitmCheck, RefusedCheck
from vpnsim.scenario.shipped import SHIPPED_DIR
from vpnsim.scenario.tlschecks import (
    AttackerPath,
    attacker_path,
    frames_holding,
    last_report,
    marked_payload,
    tcp_segments_to,
)
from vpnsim.traffic.capture import Frame

SEED_TLS = (SHIPPED_DIR / "seed-tls.toml").read_text()

# Placeholders -------------------------------------------------------------------------------


def test_placeholders_are_filled_anywhere_in_an_argument_and_other_braces_are_left() -> None:
    values = {"ca": "/lab/pki/ca.crt", "pki": "/lab/pki"}
    argv = ["{python}", "--ca={ca}", "{pki}/seed.password", "print({'a': 1})", "{other_ca}"]
    assert fill(argv, values) == [
        sys.executable,
        "--ca=/lab/pki/ca.crt",
        "/lab/pki/seed.password",
        "print({'a': 1})",
        "{other_ca}",  # not given: left as written (the loader refuses it without [tls])
    ]


def test_placeholder_problems_name_the_argument_and_say_what_is_missing() -> None:
    argv = ["{python}", "{kee}", "--ca={ca}", "print({'a': 1})", "{x}"]
    without_tls = placeholder_problems(argv, has_tls=False)
    known = "{python}, {pki}, {ca}, {cert}, {key}, {users}, {other_ca}, {impostor_cert}, "
    known += "{impostor_key}"
    assert without_tls == [
        (1, f"unknown placeholder '{{kee}}' (known: {known})"),
        (2, "{ca} needs a [tls] table (the lab's PKI and logins)"),
        (4, f"unknown placeholder '{{x}}' (known: {known})"),
    ]
    assert [i for i, _ in placeholder_problems(argv, has_tls=True)] == [1, 4]


# The format, as the loader reports it -------------------------------------------------------


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ScenarioFileError) as caught:
        load(path)
    return [p.removeprefix(f"{path}:") for p in caught.value.problems]


def test_seed_tls_loads_with_its_tls_table_names_and_tunnel_phase_programs() -> None:
    loaded = load(SHIPPED_DIR / "seed-tls.toml")
    assert loaded.tls is not None
    assert (loaded.tls.server_name, loaded.tls.server_address) == ("vpnlabserver.com", "10.0.2.8")
    assert dict(loaded.tls.users) == {"seed": "dees"}
    assert loaded.names == {
        "U": {"vpnlabserver.com": "10.0.2.8", "wrongname.lab": "10.0.2.8"},
        "U2": {"vpnlabserver.com": "10.0.2.8"},
    }
    assert [(p.name, p.phase) for p in loaded.programs] == [
        ("tls-server", "tunnel"),
        ("tls-client", "tunnel"),
        ("tls-client2", "tunnel"),
    ]
    kinds = [type(c) for c in loaded.checks]
    assert kinds.count(RefusedCheck) == 3
    assert kinds.count(CleartextAbsentCheck) == 2
    assert kinds.count(MitmCheck) == 1


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('"--key", "{key}"', '"--key", "{kee}"',
         "60: programs[0].command[8]: unknown placeholder '{kee}' (known: {python}, {pki}, "
         "{ca}, {cert}, {key}, {users}, {other_ca}, {impostor_cert}, {impostor_key})"),
        ('server_address = "10.0.2.8"\nusers', 'server_address = "10.0.2.99"\nusers',
         "52: tls.server_address: 10.0.2.99 is no host's address"),
        ('attacker = "mitm"', 'attacker = "V"',
         "214: checks[16].attacker: V is not on 10.0.2.0/24, where U reaches 10.0.2.8: it "
         "cannot get in between"),
        ('attacker = "mitm"', 'attacker = "U"',
         "214: checks[16].attacker: the attacker cannot be the client itself"),
        ('"wrongname.lab" = "10.0.2.8"', '"wrong name" = "10.0.2.8"',
         "26: hosts.U.names.\"wrong name\": 'wrong name': use a host name: letters, digits, "
         "'-' and '.', like vpnlabserver.com"),
        ('"wrongname.lab" = "10.0.2.8"', '"wrongname.lab" = "10.0.2"',
         "26: hosts.U.names.\"wrongname.lab\": expected an IP address like 10.9.0.11, got "
         "'10.0.2'"),
        ("ready = { tcp_port = 4433 }", 'ready = { tcp_port = 4433, output = "up" }',
         "61: programs[0].ready: give exactly one of tcp_port, udp_port, tun = true, output"),
        ('reason = "wrong user name or password"', 'reason = ""',
         "181: checks[11].reason: String should have at least 1 character (got '')"),
    ],
)  # fmt: skip
def test_a_mistake_in_the_tls_parts_is_one_line_with_its_key_path(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert SEED_TLS.count(old) >= 1
    assert problems(tmp_path, SEED_TLS.replace(old, new, 1)) == [expected]


def test_tls_placeholders_without_a_tls_table_are_each_reported(tmp_path: Path) -> None:
    before, after = SEED_TLS.split("\n[tls]\n")
    text = before + "\n[[programs]]" + after.split("[[programs]]", 1)[1]
    found = problems(tmp_path, text)
    assert found[0] == (
        "54: programs[0].command[6]: {cert} needs a [tls] table (the lab's PKI and logins)"
    )
    # The three programs, the three refusals and the mitm's two commands: every use is named.
    assert len(found) == 17
    assert all("needs a [tls] table" in p for p in found)


# The new checks' pure parts -----------------------------------------------------------------


def test_a_marked_payload_is_the_marker_repeated_to_the_size() -> None:
    assert marked_payload("abcdefgh", 20) == b"abcdefghabcdefghabcd"
    assert len(marked_payload("vpnsim-cleartext-marker", 3000)) == 3000


def frame(data: bytes) -> Frame:
    return Frame(0.0, data, outgoing=False)


def ipv4_tcp(src: str, dst: str, dport: int, payload: bytes = b"") -> bytes:
    ethernet = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00"
    tcp = struct.pack("!HHIIBBHHH", 40000, dport, 0, 0, 5 << 4, 2, 65535, 0, 0) + payload
    total = 20 + len(tcp)
    ip = struct.pack("!BBHHHBBH", 0x45, 0, total, 0, 0, 64, 6, 0)
    ip += bytes(int(x) for x in src.split(".")) + bytes(int(x) for x in dst.split("."))
    return ethernet + ip + tcp


def test_frames_holding_the_marker_are_found_by_index() -> None:
    frames = [frame(b"x" * 50), frame(b"..vpnsim-marker.."), frame(b"vpnsim-mark")]
    assert frames_holding(b"vpnsim-marker", frames) == [1]
    assert frames_holding(b"absent", frames) == []


def test_tcp_segments_are_counted_by_source_destination_and_port() -> None:
    frames = [
        frame(ipv4_tcp("10.0.2.7", "10.0.2.8", 4433)),
        frame(ipv4_tcp("10.0.2.7", "10.0.2.8", 4433, b"hello")),
        frame(ipv4_tcp("10.0.2.7", "10.0.2.8", 4434)),  # another port
        frame(ipv4_tcp("10.0.2.9", "10.0.2.8", 4433)),  # another client
        frame(b"\x00" * 60),  # not IPv4
    ]
    assert tcp_segments_to(frames, "10.0.2.7", "10.0.2.8", 4433) == 2
    assert tcp_segments_to(frames, "10.0.2.7", "10.0.2.66", 4433) == 0


def test_the_attacker_path_is_on_the_network_the_client_reaches_the_server_on() -> None:
    outer, inner = Network("outer", "10.0.2.0/24"), Network("inner", "192.168.60.0/24")
    scenario = Scenario(
        "s",
        "",
        (outer, inner),
        (
            Host("U", (Interface("eth0", "outer", "10.0.2.7/24"),)),
            Host("mitm", (Interface("eth3", "outer", "10.0.2.66/24"),)),
            Host("V", (Interface("eth0", "inner", "192.168.60.101/24"),)),
        ),
    )
    assert attacker_path(scenario, "mitm", "U", "10.0.2.8") == AttackerPath(
        "10.0.2.66", "eth3", "10.0.2.7"
    )
    assert attacker_path(scenario, "V", "U", "10.0.2.8") is None  # not on that network
    assert attacker_path(scenario, "mitm", "U", "172.16.0.1") is None  # U has no such network


def test_the_last_json_line_is_the_report() -> None:
    out = 'server: tun0 up\n{"side": "server", "logins": 1}\nnoise\n'
    assert last_report(out) == {"side": "server", "logins": 1}
    assert last_report("no report\n") == {}


def test_the_redirect_rule_matches_tcp_to_the_address_and_port_then_redirects() -> None:
    rule = redirect_rule("10.0.2.8", 4433)
    names = [dict(e["attrs"])["NFTA_EXPR_NAME"] for e in rule]
    assert names == ["meta", "cmp", "payload", "cmp", "payload", "cmp", "redir"]
    compared = [
        dict(dict(dict(e["attrs"])["NFTA_EXPR_DATA"]["attrs"])["NFTA_CMP_DATA"]["attrs"])[
            "NFTA_DATA_VALUE"
        ]
        for e in rule
        if dict(e["attrs"])["NFTA_EXPR_NAME"] == "cmp"
    ]
    assert compared == [b"\x06", bytes([10, 0, 2, 8]), (4433).to_bytes(2, "big")]


def test_a_scenario_files_items_share_one_scope_and_others_are_alone() -> None:
    def is_scenario(path: str) -> bool:
        return path.endswith(".toml")

    assert scope_of("scenarios/a.toml::check-1", is_scenario) == "scenarios/a.toml"
    assert scope_of("scenarios/a.toml::check-2", is_scenario) == "scenarios/a.toml"
    assert scope_of("tests/test_x.py::test_y", is_scenario) == "tests/test_x.py::test_y"
