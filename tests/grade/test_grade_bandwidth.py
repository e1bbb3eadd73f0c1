"""Bandwidth caps on a real lab's fabric ports: what is installed is read back from the
kernel, exactly; a kernel without htb (or tbf) gets the fallback, said in the report.

That the caps hold against a real flood is checked on the graded corpus
(tests/grade/test_grade_corpus.py: hostile_flood's verdicts and its caps' drops).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import Any

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from vpnsim.grade import bandwidth
from vpnsim.grade.bandwidth import Caps, install_caps, read_caps
from vpnsim.grade.grader import CONFINED_HOSTS
from vpnsim.net import namespace
from vpnsim.seed import builtin_scenario
from vpnsim.topology import FABRIC, Lab, build_lab, new_lab_name

pytestmark = pytest.mark.grade

PORTS = ["U:eth0", "V2:eth0", "V:eth0", "server:eth0", "server:eth1"]  # the SEED lab's
ABSENT = "sfq"  # a qdisc this kernel lacks (checked below): stands for a missing htb/tbf


CONFIGURED = {
    "control": {"classid": "1:10", "rate": 1_000_000, "ceil": 1_000_000, "prio": 0, "queue": 32},
    "tunnel": {"classid": "1:20", "rate": 20_000_000, "ceil": 20_000_000, "prio": 1, "queue": 128},
    "student": {"classid": "1:30", "rate": 10_000_000, "ceil": 10_000_000, "prio": 2, "queue": 64},
}
COUNTERS = {"packets", "bytes", "dropped"}  # the hosts' own IPv6 chatter may move them


def configured(reading: dict[str, Any]) -> dict[str, Any]:
    """A port's reading without its counters."""
    classes = reading.get("classes", {})
    return {
        **{k: v for k, v in reading.items() if k not in COUNTERS | {"classes"}},
        **({"classes": {n: {k: v for k, v in c.items() if k not in COUNTERS}
                        for n, c in classes.items()}} if classes else {}),
    }  # fmt: skip


@pytest.fixture
def lab() -> Iterator[Lab]:
    built = build_lab(builtin_scenario("seed-tunnel"), name=new_lab_name(), confined=CONFINED_HOSTS)
    try:
        yield built
    finally:
        built.teardown()


def test_htb_with_three_capped_classes_on_every_host_port(lab: Lab) -> None:
    caps = install_caps(lab)
    assert caps == Caps("htb", ())
    assert caps.describe() == (
        "bandwidth: htb per graded link, tunnel 20 Mbit/s, student 10 Mbit/s"
    )
    readings = read_caps(lab)
    assert sorted(readings) == PORTS
    for port, reading in readings.items():
        assert configured(reading) == {"kind": "htb", "classes": CONFIGURED, "filters": 6}, port
        assert set(reading) == {"kind", "classes", "filters", *COUNTERS}


def test_what_the_tunnel_carries_gets_its_class_and_junk_the_student_class(lab: Lab) -> None:
    """Datagrams from U to the server's 9090, each waited for at the server (so it has
    passed the server's port): two tunnel-shaped, one of them fragmented, then junk."""
    install_caps(lab)
    before = read_caps(lab)["server:eth0"]["classes"]
    inner = bytes([0x45, 0, 0, 128]) + bytes(124)  # starts as an IPv4 header would
    big = bytes([0x45]) + bytes(2999)  # 3008 bytes of UDP: fragments of 1480, 1480, 48
    junk = b"\xde\xad\xbe\xef" * 350
    with (
        namespace.socket_in(lab.ns("server")) as rx,
        namespace.socket_in(lab.ns("U")) as tx,
    ):
        rx.bind(("10.9.0.11", 9090))
        rx.settimeout(10.0)  # a backstop: each datagram is waited for, not slept on
        for payload in (inner, big, junk):
            tx.sendto(payload, ("10.9.0.11", 9090))
            assert rx.recv(4096) == payload
    after = read_caps(lab)["server:eth0"]["classes"]
    tunnel = {k: after["tunnel"][k] - before["tunnel"][k] for k in ("packets", "bytes")}
    # frames with their 14-byte Ethernet header: 14+20+8+128, then 14+20+1480 twice, 14+20+48
    assert tunnel == {"packets": 4, "bytes": 170 + 1514 + 1514 + 82}
    assert after["tunnel"]["dropped"] == 0
    assert after["student"]["bytes"] - before["student"]["bytes"] >= 14 + 20 + 8 + len(junk)


def _kernel_lacks(lab: Lab, kind: str) -> bool:
    fabric = lab.rtnl(FABRIC)
    index = fabric.index_of("br0")
    try:
        fabric.raw.tc("add", kind, index, bandwidth.ROOT)
    except NetlinkError as exc:
        return exc.code == errno.ENOENT
    fabric.raw.tc("del", index=index, root=True)
    return False


def _absent(ipr: Any, index: int) -> None:
    """In place of a qdisc's installer: asks for one this kernel lacks (ENOENT, for real)."""
    ipr.tc("add", ABSENT, index, bandwidth.ROOT)


def test_without_htb_one_tbf_cap_per_port(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _kernel_lacks(lab, ABSENT), f"this kernel has {ABSENT}: name another absent qdisc"
    monkeypatch.setitem(bandwidth._INSTALL, "htb", _absent)
    caps = install_caps(lab)
    assert caps == Caps("tbf", ("htb",))
    assert caps.describe() == (
        "bandwidth: tbf 31 Mbit/s per graded link, probes not given their own share "
        "(this kernel has no htb)"
    )
    readings = read_caps(lab)
    assert sorted(readings) == PORTS
    for port, reading in readings.items():
        assert configured(reading) == {"kind": "tbf", "rate": 31_000_000}, port
        assert set(reading) == {"kind", "rate", *COUNTERS}


def test_without_htb_and_tbf_no_cap_and_the_report_says_so(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(bandwidth._INSTALL, "htb", _absent)
    monkeypatch.setitem(bandwidth._INSTALL, "tbf", _absent)
    caps = install_caps(lab)
    assert caps == Caps("none", ("htb", "tbf"))
    assert caps.describe() == "bandwidth: not capped (this kernel has no htb, no tbf)"
    assert read_caps(lab) == {port: {"kind": "none"} for port in PORTS}


def test_a_refusal_that_is_not_a_missing_qdisc_is_the_harness_fault(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bandwidth, "ROOT", 0xFFFFFFFF)  # no qdisc may have this handle
    with pytest.raises(bandwidth.CapsFailed) as info:
        install_caps(lab)
    assert str(info.value).startswith(f"{lab.fabric_ns}: cannot cap with htb: (")
