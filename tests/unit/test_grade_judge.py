"""Judging one ping by where the captures saw it (`checks.judge`): a pass needs the frames
of the task's path, a failure names the first hop missing, and a reply V never sent says
where it came from. Traces are built hop by hop, as the captures would report them."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from vpnsim.grade.packets import ECHO_REPLY, ECHO_REQUEST, Echo
from vpnsim.grade.trace import Trace, judge, port_words
from vpnsim.traffic.capture import UdpDatagram

U, SERVER, V, CLIENT_TUN = "10.9.0.5", "10.9.0.11", "192.168.60.5", "192.168.53.99"
PAYLOAD = b"vpnsim 0a1b2c3d0001 task3 " * 2 + b"vpnsim 0a1b"  # 64 bytes
CLIENT_PORT = 40001  # the client's socket (an ephemeral port)


@dataclass
class Facts:
    """Lab facts as a diagnosis would read them, fixed."""

    client: str = "your client"
    server: str = "your server"
    exits: dict[str, str] = field(default_factory=dict)
    tuns: dict[str, str] = field(default_factory=lambda: {"U": "tun0", "server": "tun1"})
    ready: bool = True
    routes: dict[tuple[str, str], tuple[str, str | None, str | None] | None] = field(
        default_factory=lambda: {
            ("U", V): ("unicast", "tun0", None),
            ("server", CLIENT_TUN): ("unicast", "tun1", None),
        }
    )
    owners: dict[tuple[str, str], str] = field(default_factory=dict)
    forward: str = "1"
    crashed: str = ""
    tracebacks: int = 0

    def exited(self, role: str) -> str | None:
        return self.exits.get(role)

    def tun_name(self, host: str) -> str | None:
        return self.tuns.get(host)

    def tun_ready(self, host: str) -> bool:
        return self.ready

    def route(self, host: str, dst: str) -> tuple[str, str | None, str | None] | None:
        return self.routes.get((host, dst))

    def owner(self, host: str, address: str) -> str | None:
        return self.owners.get((host, address))

    def forwarding(self, host: str) -> str:
        return self.forward

    def crashes(self, role: str) -> str:
        return self.crashed

    def crash_count(self, role: str) -> int:
        return self.tracebacks


def _udp(src: str, sport: int, dst: str, dport: int) -> UdpDatagram:
    return UdpDatagram(src, sport, dst, dport, 92, b"")


def _req(outgoing: bool, outer: UdpDatagram | None = None, src: str = CLIENT_TUN) -> Echo:
    return Echo(ECHO_REQUEST, src, V, PAYLOAD, outgoing, outer, 1.0)


def _rep(outgoing: bool, outer: UdpDatagram | None = None, dst: str = CLIENT_TUN) -> Echo:
    return Echo(ECHO_REPLY, V, dst, PAYLOAD, outgoing, outer, 2.0)


TO_SERVER = _udp(U, CLIENT_PORT, SERVER, 9090)
TO_CLIENT = _udp(SERVER, 9090, U, CLIENT_PORT)

# Every hop of a working tunnel, in the order the packets cross them.
HOPS: dict[str, list[tuple[str, Echo]]] = {
    "into U's TUN": [("U-tun", _req(True))],
    "out of U": [("U-eth0", _req(True, TO_SERVER))],
    "at the server": [("server-eth0", _req(False, TO_SERVER))],
    "into the server's TUN": [("server-tun", _req(False))],
    "out of eth1": [("server-eth1", _req(True))],
    "at V": [("V-eth0", _req(False))],
    "V's reply": [("V-eth0", _rep(True)), ("server-eth1", _rep(False))],
    "reply into the server's TUN": [("server-tun", _rep(True))],
    "reply out of the server": [("server-eth0", _rep(True, TO_CLIENT))],
    "reply at U": [("U-eth0", _rep(False, TO_CLIENT))],
    "reply into U's TUN": [("U-tun", _rep(False))],
}


def _trace(
    *,
    without: tuple[str, ...] = (),
    extra: tuple[tuple[str, Echo], ...] = (),
    reply: bytes | None = PAYLOAD,
    ended: str = "reply",
    problem: str = "",
) -> Trace:
    seen: dict[str, list[Echo]] = {}
    hops = [hop for name, hops in HOPS.items() if name not in without for hop in hops]
    for point, echo in [*hops, *extra]:
        seen.setdefault(point, []).append(echo)
    return Trace(64, PAYLOAD, reply, ended, problem, seen)


def _after(name: str) -> tuple[str, ...]:
    """Every hop from `name` on (the packet stopped before it)."""
    names = list(HOPS)
    return tuple(names[names.index(name) :])


@pytest.mark.parametrize("stage", ["server", "v", "back"])
def test_a_working_tunnel_passes_every_stage(stage: str) -> None:
    assert judge(_trace(), stage, Facts()) is None


def test_the_stages_need_only_their_hops() -> None:
    no_reply = {"reply": None, "ended": "stalled"}
    assert (
        judge(_trace(without=_after("into the server's TUN"), **no_reply), "server", Facts())
        is None
    )
    assert (
        judge(_trace(without=_after("reply into the server's TUN"), **no_reply), "v", Facts())
        is None
    )


def test_the_hops_log_in_order() -> None:
    lines = _trace(without=_after("at V"), reply=None).lines()
    assert lines == [
        "  seen: into U's TUN (192.168.53.99 > 192.168.60.5); out of U inside UDP "
        "(192.168.53.99 > 192.168.60.5 in UDP 10.9.0.5:40001 > 10.9.0.11:9090); at the server "
        "inside UDP to 9090 (192.168.53.99 > 192.168.60.5 in UDP 10.9.0.5:40001 > "
        "10.9.0.11:9090); written into the server's TUN (192.168.53.99 > 192.168.60.5); out of "
        "the server's eth1 (192.168.53.99 > 192.168.60.5)"
    ]
    assert Trace(64, PAYLOAD, None, "stalled", "").lines() == ["  seen: nowhere"]


# -- replies that V never sent -------------------------------------------------------------


def test_answered_on_u_itself() -> None:
    trace = Trace(64, PAYLOAD, PAYLOAD, "reply", "", {})
    facts = Facts(owners={("U", V): "lo"}, routes={("U", V): ("local", "lo", None)})
    reason = "answered on U itself: no request left U (192.168.60.5 is an address of U, on lo)"
    for stage in ("server", "v", "back"):
        assert judge(trace, stage, facts) == reason
    assert judge(trace, "server", Facts()) == "answered on U itself: no request left U"


def test_a_client_that_routes_around_the_tunnel() -> None:
    clear = (
        ("U-eth0", _req(True, src=U)),
        ("V-eth0", _req(False, src=U)),
        ("V-eth0", _rep(True, dst=U)),
        ("U-eth0", _rep(False, dst=U)),
    )
    trace = Trace(64, PAYLOAD, PAYLOAD, "reply", "", {})
    for point, echo in clear:
        trace.seen.setdefault(point, []).append(echo)
    facts = Facts(routes={("U", V): ("unicast", "eth0", SERVER)})
    assert judge(trace, "server", facts) == (
        "the ping left U in clear on eth0, not inside UDP to 10.9.0.11:9090: U routes "
        "192.168.60.5 via 10.9.0.11 dev eth0, not into tun0; V answered it in clear"
    )


def test_a_copy_in_clear_fails_even_beside_the_tunneled_one() -> None:
    trace = _trace(extra=(("U-eth0", _req(True)),))
    facts = Facts(routes={("U", V): ("unicast", "eth0", None)})
    assert judge(trace, "server", facts) == (
        "the ping left U in clear on eth0, not inside UDP to 10.9.0.11:9090 (a copy also left "
        "inside UDP): U routes 192.168.60.5 dev eth0, not into tun0"
    )


def test_answered_by_the_server_itself() -> None:
    trace = _trace(without=("out of eth1", "at V", "V's reply"))
    facts = Facts(owners={("server", V): "lo"}, forward="0")
    assert judge(trace, "server", facts) is None  # the client's part is done
    reason = (
        "answered by the server itself: V's link saw nothing (192.168.60.5 is an address of "
        "the server, on lo)"
    )
    assert judge(trace, "v", facts) == reason
    assert judge(trace, "back", facts) == reason


def test_answered_by_the_server_although_v_got_the_ping() -> None:
    trace = _trace(without=("V's reply",))
    assert judge(trace, "v", Facts()) == (
        "answered by the server itself: V got the ping but sent no reply"
    )


def test_a_reply_written_by_the_client_itself() -> None:
    trace = _trace(without=("reply out of the server", "reply at U"))
    assert judge(trace, "server", Facts()) == (
        "answered on U by your client: it wrote a reply into tun0 that no datagram from the "
        "server carried"
    )


def test_a_reply_in_clear() -> None:
    trace = _trace(without=("reply at U", "reply into U's TUN"), extra=(("U-eth0", _rep(False)),))
    assert judge(trace, "server", Facts()) == (
        "the reply came back to U in clear from 192.168.60.5, not inside UDP from the server"
    )


def test_a_reply_from_nowhere_seen() -> None:
    trace = _trace(without=("reply at U", "reply into U's TUN"))
    assert judge(trace, "server", Facts()) == "answered on U itself: no reply came from the server"


# -- the request, hop by hop ---------------------------------------------------------------


def test_no_route_into_the_tun() -> None:
    trace = Trace(
        64, PAYLOAD, None, "no route", "the ping could not be sent: Network is unreachable"
    )
    facts = Facts(routes={})
    assert judge(trace, "server", facts) == (
        "no route to 192.168.60.0/24 into the TUN on U: add one "
        "(ip route add 192.168.60.0/24 dev tun0)"
    )


def test_a_route_elsewhere() -> None:
    trace = Trace(64, PAYLOAD, None, "stalled", "no reply")
    facts = Facts(routes={("U", V): ("unicast", "eth0", "10.9.0.1")})
    assert judge(trace, "server", facts) == (
        "U routes 192.168.60.5 via 10.9.0.1 dev eth0, not into tun0: route 192.168.60.0/24 "
        "into the TUN (ip route add 192.168.60.0/24 dev tun0)"
    )


def test_the_client_does_not_read_its_tun() -> None:
    trace = _trace(without=_after("out of U"), reply=None, ended="timeout")
    assert judge(trace, "server", Facts()) == (
        "the ping entered tun0 but no UDP datagram carrying it left U: your client does not "
        "read its TUN or does not send what it reads"
    )
    crash = 'File "tun_client.py", line 9, in <module>: threading.Thread(...)\nRuntimeError'
    crashed = Facts(crashed=crash, tracebacks=1)  # a thread died; the program runs on
    assert judge(trace, "server", crashed) == (
        "the ping entered tun0 but no UDP datagram carrying it left U: your client does not "
        'read its TUN or does not send what it reads; its processes crash: File "tun_client.py", '
        "line 9, in <module>: threading.Thread(...)\nRuntimeError"
    )


def test_a_client_whose_processes_keep_crashing_reads_the_same_dead_or_alive() -> None:
    crash = 'File "tun_client.py", line 24, in <module>: os.fork()\nBlockingIOError'
    reason = (
        "no UDP datagram carrying the ping left U: your client's processes crash: "
        'File "tun_client.py", line 24, in <module>: os.fork()\nBlockingIOError'
    )
    alive = _trace(without=_after("out of U"), reply=None, ended="timeout")
    assert judge(alive, "server", Facts(crashed=crash, tracebacks=62)) == reason
    dead = Trace(64, PAYLOAD, None, "exited", "your client exited", {})
    exits = {"client": "your client was killed by signal 9"}
    assert judge(dead, "server", Facts(crashed=crash, tracebacks=63, exits=exits)) == reason


def test_a_dead_client_says_how_it_died() -> None:
    trace = _trace(without=_after("out of U"), reply=None, ended="exited")
    facts = Facts(exits={"client": "your client exited with status 1: OSError: [Errno 9]"})
    assert judge(trace, "server", facts) == "your client exited with status 1: OSError: [Errno 9]"


def test_nothing_entered_the_tun_either() -> None:
    trace = _trace(without=_after("into U's TUN"), reply=None, ended="stalled", problem="no reply")
    assert judge(trace, "server", Facts()) == "no reply"


@pytest.mark.parametrize(
    ("outer", "reason"),
    [
        (
            _udp(U, CLIENT_PORT, SERVER, 9091),
            "your client sends the tunneled packets to UDP port 9091; the server listens on 9090",
        ),
        (
            _udp(U, CLIENT_PORT, SERVER, 45000),
            "your client sends the tunneled packets to UDP another port; the server listens "
            "on 9090",
        ),
        (
            _udp(U, CLIENT_PORT, "10.9.0.12", 9090),
            "your client sends the tunneled packets to 10.9.0.12 port 9090; the server is "
            "10.9.0.11 port 9090",
        ),
    ],
)
def test_datagrams_to_the_wrong_place(outer: UdpDatagram, reason: str) -> None:
    trace = Trace(64, PAYLOAD, None, "stalled", "", {"U-eth0": [_req(True, outer)]})
    assert judge(trace, "server", Facts()) == reason


def test_a_datagram_lost_on_the_way() -> None:
    trace = _trace(without=_after("at the server"), reply=None, ended="stalled")
    assert judge(trace, "server", Facts()) == (
        "the datagram left U for 10.9.0.11:9090 but did not arrive at the server's eth0"
    )


def test_a_server_that_sends_it_onto_eth1_itself() -> None:
    trace = _trace(without=("into the server's TUN",))
    assert judge(trace, "server", Facts()) is None
    assert judge(trace, "v", Facts()) == (
        "the ping reached V without coming out of the server's TUN tun1 (nothing was written "
        "to it): your server sent it onto eth1 another way; write it to the TUN"
    )


def test_a_server_that_does_not_write_its_tun() -> None:
    trace = _trace(without=_after("into the server's TUN"), reply=None, ended="stalled")
    assert judge(trace, "v", Facts()) == (
        "the tunneled packets reach the server on UDP 9090, but your server never writes them "
        "to its TUN tun1"
    )
    died = Facts(exits={"server": "your server exited with status 1: AttributeError: scr"})
    assert judge(trace, "v", died) == "your server exited with status 1: AttributeError: scr"
    assert judge(trace, "v", Facts(ready=False)) == "your server has no TUN up with an address"
    assert judge(trace, "v", Facts(tuns={"U": "tun0"})) == (
        "your server has no TUN up with an address"
    )


def test_a_server_that_does_not_forward() -> None:
    trace = _trace(without=_after("out of eth1"), reply=None, ended="stalled")
    assert judge(trace, "v", Facts(forward="0")) == (
        "ip_forward is off on server: the packet came out of tun1 but the server does not "
        "forward it to V"
    )
    assert (
        judge(trace, "v", Facts())
        == "the packet came out of the server's TUN tun1 but never reached V"
    )


def test_a_ping_that_reaches_v_from_outside_the_tun_net() -> None:
    trace = _trace(without=("at V",), extra=(("V-eth0", _req(False, src="192.168.60.11")),))
    assert judge(trace, "v", Facts()) == (
        "the ping reaches V from 192.168.60.11, outside 192.168.53.0/24: the packet must leave "
        "the server as it came out of the TUN"
    )


def test_v_does_not_answer() -> None:
    trace = _trace(without=_after("V's reply"), reply=None, ended="stalled")
    assert (
        judge(trace, "v", Facts())
        == "V receives the ping from 192.168.53.99 but does not answer it"
    )


# -- the reply, hop by hop -----------------------------------------------------------------


def test_no_route_back_into_the_servers_tun() -> None:
    trace = _trace(without=_after("reply into the server's TUN"), reply=None, ended="stalled")
    assert judge(trace, "v", Facts()) is None
    facts = Facts(routes={("server", CLIENT_TUN): ("unicast", "eth1", "192.168.60.1")})
    assert judge(trace, "back", facts) == (
        "no route to 192.168.53.0/24 into the TUN on server: V's replies cannot enter tun1"
    )
    assert judge(trace, "back", Facts()) == (
        "V's reply reached the server but did not enter its TUN tun1"
    )
    died = Facts(routes={}, exits={"server": "your server exited with status 1: OSError"})
    assert judge(trace, "back", died) == "your server exited with status 1: OSError"


def test_a_server_that_never_reads_its_tun() -> None:
    trace = _trace(without=_after("reply out of the server"), reply=None, ended="stalled")
    assert judge(trace, "back", Facts()) == (
        "your server never reads its TUN: requests reach V, replies stop at the server"
    )
    died = Facts(exits={"server": "your server was killed by signal 9"})
    assert judge(trace, "back", died) == "your server was killed by signal 9"


@pytest.mark.parametrize(
    ("outer", "reason"),
    [
        (
            _udp(SERVER, 9090, U, 12345),
            "your server sends the replies to port 12345 on U, not to the port the client's "
            "datagrams come from: answer the address and port they came from",
        ),
        (
            _udp(SERVER, 9090, U, 50000),
            "your server sends the replies to another port on U, not to the port the client's "
            "datagrams come from: answer the address and port they came from",
        ),
        (
            _udp(SERVER, 9090, "10.9.0.6", CLIENT_PORT),
            "your server sends the replies to 10.9.0.6, but the client is 10.9.0.5: answer the "
            "address the datagrams came from",
        ),
    ],
)
def test_replies_sent_to_the_wrong_place(outer: UdpDatagram, reason: str) -> None:
    trace = _trace(
        without=_after("reply out of the server"),
        extra=(("server-eth0", _rep(True, outer)),),
        reply=None,
        ended="stalled",
    )
    assert judge(trace, "back", Facts()) == reason


def test_replies_lost_between_the_server_and_u() -> None:
    trace = _trace(without=_after("reply at U"), reply=None, ended="stalled")
    assert judge(trace, "back", Facts()) == (
        "the replies left the server for 10.9.0.5 but did not arrive at U"
    )


def test_a_client_that_does_not_write_the_replies() -> None:
    trace = _trace(without=("reply into U's TUN",), reply=None, ended="stalled")
    assert judge(trace, "back", Facts()) == (
        "the replies reach U inside UDP, but your client never writes them to its TUN"
    )


def test_replies_in_us_tun_but_no_answer() -> None:
    trace = _trace(reply=None, ended="timeout")
    assert judge(trace, "back", Facts()) == "the replies reach U's TUN but the ping gets no answer"


def test_an_altered_reply() -> None:
    trace = _trace(reply=PAYLOAD[:-1] + b"!")
    assert judge(trace, "v", Facts()) is None
    assert judge(trace, "back", Facts()) == (
        "the reply to a 64-byte ping came back with a different payload"
    )


def test_port_words_never_name_an_ephemeral_port() -> None:
    assert port_words(9091) == "port 9091"
    assert port_words(32767) == "port 32767"
    assert port_words(32768) == "another port"
    assert port_words(60999) == "another port"
    assert port_words(61000) == "port 61000"
