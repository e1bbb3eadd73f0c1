"""The packet's path of a task (`grade.path`): built from a traced ping (`Trace.hops`), where
it stopped and why, as one line, and read back from a report. Traces are built hop by hop,
as the captures would report them (as in test_grade_judge)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vpnsim.grade.packets import ECHO_REPLY, ECHO_REQUEST, Echo
from vpnsim.grade.path import (
    NOT_LOOKED_AT,
    NOT_SEEN,
    SEEN,
    Hop,
    PacketPath,
    PathError,
    build_path,
)
from vpnsim.grade.report import GradeReport, ReportError, SubmissionResult, read_report
from vpnsim.grade.rubric import load_rubric
from vpnsim.grade.tasks import Verdict
from vpnsim.grade.trace import STAGE_HOPS, Trace, judge
from vpnsim.traffic.capture import UdpDatagram

U, SERVER, V, CLIENT_TUN = "10.9.0.5", "10.9.0.11", "192.168.60.5", "192.168.53.99"
PAYLOAD = b"vpnsim 0a1b2c3d0001 task3 " * 2 + b"vpnsim 0a1b"
TO_SERVER = UdpDatagram(U, 40001, SERVER, 9090, 92, b"")
TO_CLIENT = UdpDatagram(SERVER, 9090, U, 40001, 92, b"")
PROBE = "64-byte ping from U to 192.168.60.5"
NAMES = {"U": "tun0", "server": "tun1"}
WATCHED = {"U-tun", "server-tun"}


def _req(outgoing: bool, outer: UdpDatagram | None = None, src: str = CLIENT_TUN) -> Echo:
    return Echo(ECHO_REQUEST, src, V, PAYLOAD, outgoing, outer, 1.0)


def _rep(outgoing: bool, outer: UdpDatagram | None = None) -> Echo:
    return Echo(ECHO_REPLY, V, CLIENT_TUN, PAYLOAD, outgoing, outer, 2.0)


HOPS: dict[str, list[tuple[str, Echo]]] = {
    "into U's TUN": [("U-tun", _req(True))],
    "out of U": [("U-eth0", _req(True, TO_SERVER))],
    "at the server": [("server-eth0", _req(False, TO_SERVER))],
    "into the server's TUN": [("server-tun", _req(False))],
    "out of eth1": [("server-eth1", _req(True))],
    "at V": [("V-eth0", _req(False))],
    "V's reply": [("V-eth0", _rep(True))],
    "reply at eth1": [("server-eth1", _rep(False))],
    "reply into the server's TUN": [("server-tun", _rep(True))],
    "reply out of the server": [("server-eth0", _rep(True, TO_CLIENT))],
    "reply at U": [("U-eth0", _rep(False, TO_CLIENT))],
    "reply into U's TUN": [("U-tun", _rep(False))],
}


class Facts:
    client, server = "your client", "your server"

    def exited(self, role: str) -> str | None:
        return None

    def tun_name(self, host: str) -> str | None:
        return NAMES.get(host)

    def tun_ready(self, host: str) -> bool:
        return True

    def route(self, host: str, dst: str) -> tuple[str, str | None, str | None] | None:
        if host == "U":
            return ("unicast", "eth0", SERVER) if self.around else ("unicast", "tun0", None)
        return "unicast", "tun1", None

    def owner(self, host: str, address: str) -> str | None:
        return None

    def forwarding(self, host: str) -> str:
        return "1"

    def crashes(self, role: str) -> str:
        return ""

    def crash_count(self, role: str) -> int:
        return 0

    around = False


def _trace(
    without: tuple[str, ...] = (),
    extra: tuple[tuple[str, Echo], ...] = (),
    reply: bytes | None = PAYLOAD,
) -> Trace:
    seen: dict[str, list[Echo]] = {}
    hops = [hop for name, hops in HOPS.items() if name not in without for hop in hops]
    for point, echo in [*hops, *extra]:
        seen.setdefault(point, []).append(echo)
    return Trace(64, PAYLOAD, reply, "reply" if reply else "stalled", "", seen)


def _path(trace: Trace, stage: str = "back", facts: Facts | None = None) -> PacketPath:
    problem = judge(trace, stage, facts or Facts())
    return build_path(PROBE, trace.hops(), STAGE_HOPS[stage], problem, NAMES, WATCHED)


ROUND_TRIP = (
    "U:tun0 ✓ → U:eth0 ✓ → server:eth0 ✓ → server:tun1 ✓ → server:eth1 ✓ → V:eth0 ✓ ↩ "
    "V:eth0 ✓ → server:eth1 ✓ → server:tun1 ✓ → server:eth0 ✓ → U:eth0 ✓ → U:tun0 ✓"
)


def test_a_working_tunnel_is_seen_at_every_hop_out_and_back() -> None:
    path = _path(_trace())
    assert [(h.label, h.leg, h.state) for h in path.hops] == [
        ("U:tun0", "out", SEEN),
        ("U:eth0", "out", SEEN),
        ("server:eth0", "out", SEEN),
        ("server:tun1", "out", SEEN),
        ("server:eth1", "out", SEEN),
        ("V:eth0", "out", SEEN),
        ("V:eth0", "back", SEEN),
        ("server:eth1", "back", SEEN),
        ("server:tun1", "back", SEEN),
        ("server:eth0", "back", SEEN),
        ("U:eth0", "back", SEEN),
        ("U:tun0", "back", SEEN),
    ]
    assert (path.stop, path.reason, path.required, path.probe) == (None, "", 12, PROBE)
    assert path.line() == ROUND_TRIP


@pytest.mark.parametrize(
    ("stage", "line"),
    [
        ("server", "U:tun0 ✓ → U:eth0 ✓ → server:eth0 ✓"),
        (
            "v",
            "U:tun0 ✓ → U:eth0 ✓ → server:eth0 ✓ → server:tun1 ✓ → server:eth1 ✓ → V:eth0 ✓ ↩ "
            "V:eth0 ✓",
        ),
    ],
)
def test_a_passing_task_shows_the_hops_it_needs(stage: str, line: str) -> None:
    path = _path(_trace(without=("reply into U's TUN",), reply=None), stage)
    assert path.stop is None
    assert path.line() == line


def test_the_issues_example_the_server_does_not_write_its_tun() -> None:
    later = tuple(name for name in HOPS if name != "into U's TUN")[2:]
    path = _path(_trace(without=later, reply=None), "v")
    assert path.stop == 3
    assert path.line() == "U:tun0 ✓ → U:eth0 ✓ → server:eth0 ✓ → server:tun1 ✗"
    assert path.reason == (
        "the tunneled packets reach the server on UDP 9090, but your server never writes "
        "them to its TUN tun1"
    )


def test_replies_stop_at_the_server() -> None:
    trace = _trace(
        without=("reply out of the server", "reply at U", "reply into U's TUN"), reply=None
    )
    path = _path(trace)
    assert path.stop == 9
    assert path.stopped == Hop("server-eth0", "eth0", "back", NOT_SEEN)
    assert path.line() == (
        "U:tun0 ✓ → U:eth0 ✓ → server:eth0 ✓ → server:tun1 ✓ → server:eth1 ✓ → V:eth0 ✓ ↩ "
        "V:eth0 ✓ → server:eth1 ✓ → server:tun1 ✓ → server:eth0 ✗"
    )
    assert path.reason == (
        "your server never reads its TUN: requests reach V, replies stop at the server"
    )


def test_a_ping_that_never_entered_the_tun_stops_at_u_and_shows_where_it_went() -> None:
    facts = Facts()
    facts.around = True
    back = Echo(ECHO_REPLY, V, U, PAYLOAD, True, None, 2.0)
    clear = (
        ("U-eth0", _req(True, src=U)),
        ("server-eth1", _req(True, src=U)),
        ("V-eth0", _req(False, src=U)),
        ("V-eth0", back),
        ("server-eth1", Echo(ECHO_REPLY, V, U, PAYLOAD, False, None, 2.0)),
    )
    trace = _trace(without=tuple(HOPS), extra=clear)
    path = _path(trace, "server", facts)
    assert path.stop == 0
    # The request in clear from U's address is not the tunnel's, on eth1 or at V; the reply
    # is V's all the same: it came back another way.
    assert path.line() == "U:tun0 ✗ (seen after it: V:eth0 (reply), server:eth1 (reply))"
    assert path.reason.startswith("the ping left U in clear on eth0")


def test_a_server_that_sends_the_ping_onto_eth1_itself() -> None:
    path = _path(_trace(without=("into the server's TUN",)), "v")
    assert path.stop == 3
    assert path.line() == (
        "U:tun0 ✓ → U:eth0 ✓ → server:eth0 ✓ → server:tun1 ✗ (seen after it: server:eth1, "
        "V:eth0, V:eth0 (reply), server:eth1 (reply), server:tun1 (reply), server:eth0 (reply), "
        "U:eth0 (reply), U:tun0 (reply))"
    )


def test_a_ping_from_outside_the_tun_net_is_not_the_tunnels_at_v() -> None:
    nat = (("V-eth0", _req(False, src="192.168.60.11")),)
    path = _path(_trace(without=("at V",), extra=nat), "v")
    assert path.stop == 5
    assert path.stopped is not None and path.stopped.label == "V:eth0"
    assert path.reason.startswith("the ping reaches V from 192.168.60.11")


def test_every_hop_seen_but_the_reply_altered_stops_at_the_last() -> None:
    path = _path(_trace(reply=b"something else"))
    assert path.stop == 11
    assert path.line() == ROUND_TRIP.removesuffix("✓") + "✓"
    assert path.reason == "the reply to a 64-byte ping came back with a different payload"


def test_a_tun_not_captured_is_not_looked_at_and_never_the_stop() -> None:
    trace = _trace(without=("reply at U", "reply into U's TUN"), reply=None)
    problem = judge(trace, "back", Facts())
    path = build_path(PROBE, trace.hops(), 12, problem, {"U": "tun0"}, {"U-tun"})
    assert [h.state for h in path.hops if h.point == "server-tun"] == [NOT_LOOKED_AT] * 2
    assert [h.device for h in path.hops if h.point == "server-tun"] == ["TUN", "TUN"]
    assert path.stop == 10
    assert " → server:TUN ? → " in path.line()


def test_stops_without_a_trace() -> None:
    hops = [("U-tun", "out", True), ("U-eth0", "out", True)]
    assert build_path(PROBE, hops, 2, "wrong", NAMES, WATCHED).stop == 1
    assert build_path(PROBE, hops, 1, "wrong", NAMES, WATCHED).stop == 0
    assert build_path(PROBE, hops, 2, None, NAMES, WATCHED).stop is None


# -- in the report --------------------------------------------------------------------------


def test_the_path_round_trips_through_the_json_report(tmp_path: Path) -> None:
    path = _path(_trace(without=("into the server's TUN",)), "v")
    rubric = load_rubric()
    verdict = Verdict(False, "the ping reached V ...", ("$ ping",), (), 1.5, path)
    sub = SubmissionResult(
        "/s/a", "a", {"task4": verdict, "task1": Verdict(True, "ok")}, 0, 100, "x"
    )
    GradeReport("tunnel", rubric, [sub]).write_json(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    task4 = data["submissions"][0]["tasks"]["task4"]
    assert task4["path"]["stop"] == 3 and task4["path"]["required"] == 7
    assert task4["path"]["hops"][3] == {
        "host": "server", "point": "server-tun", "device": "tun1", "leg": "out",
        "state": "not seen",
    }  # fmt: skip
    assert data["submissions"][0]["tasks"]["task1"]["path"] is None
    back = read_report(tmp_path / "r.json").submissions[0].tasks
    assert back["task4"].path == path
    assert back["task1"].path is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["hops"][0].update(state="maybe"), "state 'maybe'"),
        (lambda p: p.update(stop=12), "stop 12 of 12 hops"),
        (lambda p: p.update(required=13), "required 13 of 12 hops"),
        (lambda p: p["hops"][1].pop("device"), "KeyError('device')"),
    ],
)
def test_a_broken_path_in_a_report_names_the_file(
    tmp_path: Path, change: Callable[[dict[str, Any]], object], message: str
) -> None:
    path = _path(_trace())
    data = path.to_dict()
    change(data)
    with pytest.raises(PathError, match=re.escape(message)):
        PacketPath.from_dict(data)
    sub = SubmissionResult("/s/a", "a", {"task5": Verdict(True, "ok", path=path)}, 0, 100, "x")
    report = GradeReport("tunnel", load_rubric(), [sub]).to_dict()
    report["submissions"][0]["tasks"]["task5"]["path"] = data
    (tmp_path / "r.json").write_text(json.dumps(report))
    with pytest.raises(ReportError, match=r"r\.json: not a vpnsim grade report: path: "):
        read_report(tmp_path / "r.json")
