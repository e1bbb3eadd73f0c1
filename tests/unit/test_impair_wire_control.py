"""The wire's control service without root or a lab: real Unix sockets, the select rounds of
`Wire.run` driven by hand. Replies never block the loop, a client that does not read its
replies holds up nobody, and clients that overflow or fail are closed."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from vpnsim.impair.wire import Control

WAIT = 5.0  # seconds a test waits for what must happen at once
NEWLINE = b"\n"


class Handler:
    """Answers every request with its `n` and `size` bytes of padding; counts the calls."""

    def __init__(self, size: int = 0) -> None:
        self.size = size
        self.calls: list[dict[str, Any]] = []

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(request)
        return {"ok": True, "n": request.get("n"), "pad": "x" * self.size}


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind("")  # Linux autobind: a fresh abstract address
    sock.listen(8)
    yield sock
    sock.close()


def connect(listener: socket.socket) -> socket.socket:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(WAIT)
    client.connect(listener.getsockname())
    return client


def pump(control: Control, rounds: int = 3) -> None:
    """`rounds` select rounds as `Wire.run` makes them, failing if one blocks."""
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            for _ in range(rounds):
                readable, writable, _ = select.select(control.readers(), control.writers(), [], 0)
                for sock in readable:
                    control.readable(sock)
                for sock in writable:
                    control.writable(sock)
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive(), "a select round of the control loop blocked"
    if errors:
        raise errors[0]


def replies(control: Control, client: socket.socket, count: int) -> list[dict[str, Any]]:
    """Read `count` replies on `client`, pumping the control loop meanwhile."""
    data = b""
    deadline = time.monotonic() + WAIT
    client.setblocking(False)  # the loop runs in this thread: never wait in recv
    while data.count(NEWLINE) < count:
        assert time.monotonic() < deadline, f"{data.count(NEWLINE)} of {count} replies"
        pump(control, 1)
        try:
            chunk = client.recv(1 << 20)
        except BlockingIOError:
            continue
        assert chunk, "the control service closed the connection"
        data += chunk
    client.settimeout(WAIT)
    lines = data.split(b"\n")
    assert lines[count:] == [b""], "more replies than requests"
    return [json.loads(line) for line in lines[:count]]


def requests(*numbers: int) -> bytes:
    return b"".join(json.dumps({"op": "stats", "n": n}).encode() + b"\n" for n in numbers)


def assert_closed_by_peer(client: socket.socket) -> None:
    """The other end closed: EOF (or a reset) once what was sent is read, not a timeout."""
    client.settimeout(WAIT)
    try:
        while client.recv(1 << 20):
            pass
    except ConnectionResetError:
        pass


def test_pipelined_requests_get_one_reply_each_in_order(listener: socket.socket) -> None:
    handler = Handler()
    control = Control(listener, handler)
    with connect(listener) as client:
        client.sendall(requests(1, 2) + b"not json\n[1]\n" + requests(3))
        got = replies(control, client, 5)
    assert [reply.get("n") for reply in got] == [1, 2, None, None, 3]
    assert got[2]["error"].startswith("bad request: Expecting value")
    assert got[3] == {"ok": False, "error": "bad request: expected a JSON object"}
    assert [call["n"] for call in handler.calls] == [1, 2, 3]


def test_a_client_that_never_reads_holds_up_neither_the_loop_nor_other_clients(
    listener: socket.socket,
) -> None:
    handler = Handler(size=1 << 20)  # 1 MiB a reply: more than a socket buffers
    control = Control(listener, handler)
    rogue = connect(listener)
    try:
        assert rogue.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < 1 << 20
        rogue.sendall(requests(*range(20)))
        pump(control, 10)  # would block forever in a blocking send of the first reply
        assert len(handler.calls) == 1  # the next request waits until this reply has gone
        assert len(control.writers()) == 1
        assert rogue.recv(1, socket.MSG_PEEK) == b"{"  # a partial reply went out

        handler.size = 10
        with connect(listener) as other:
            other.sendall(requests(100))
            assert [reply["n"] for reply in replies(control, other, 1)] == [100]
        assert len(control.writers()) == 1  # the rogue's reply still waits

        got = replies(control, rogue, 20)  # it reads at last: everything, in order
        assert [reply["n"] for reply in got] == list(range(20))
        assert len(got[0]["pad"]) == 1 << 20
        assert len(got[19]["pad"]) == 10  # answered once the rogue took its replies
        assert control.writers() == []
    finally:
        rogue.close()


def test_a_client_whose_pending_output_exceeds_the_limit_is_closed(
    listener: socket.socket,
) -> None:
    handler = Handler(size=10_000)  # a reply of 10,035 bytes
    control = Control(listener, handler, limit=10_000)
    with connect(listener) as client, connect(listener) as other:
        client.sendall(requests(1, 2))
        pump(control)
        assert_closed_by_peer(client)
        assert len(control.inbox) == len(control.outbox) == 1  # only `other` is left
        assert len(handler.calls) == 1  # nothing more is answered for a closed client
        handler.size = 9_000
        other.sendall(requests(3))  # under the limit
        assert [reply["n"] for reply in replies(control, other, 1)] == [3]


def test_a_request_that_never_ends_is_closed_at_the_limit(listener: socket.socket) -> None:
    handler = Handler()
    control = Control(listener, handler, limit=10_000)
    with connect(listener) as client:
        client.sendall(b'{"op": "stats", "n": "' + b"9" * 9_000)
        pump(control)
        assert len(control.inbox) == 1  # under the limit: waits for the rest of its line
        client.sendall(b"9" * 2_000)
        pump(control)
        assert_closed_by_peer(client)
    assert control.inbox == control.outbox == {}
    assert handler.calls == []


def test_a_client_that_goes_away_with_replies_pending_is_closed(listener: socket.socket) -> None:
    handler = Handler(size=4 << 20)
    control = Control(listener, handler)
    client = connect(listener)
    client.sendall(requests(1, 2, 3))
    pump(control)
    assert len(control.writers()) == 1
    client.close()  # without reading: the wire's next send fails
    pump(control)
    assert control.inbox == control.outbox == {}
    assert len(handler.calls) == 1
    with connect(listener) as other:
        other.sendall(requests(4))
        assert [reply["n"] for reply in replies(control, other, 1)] == [4]
