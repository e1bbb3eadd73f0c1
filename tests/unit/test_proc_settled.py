"""`proc.settled` / `Program.wait_settled`: has a program handled what it was sent? Real child
processes, no namespaces."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpnsim.proc import Program, settled

# A UDP receiver that reads one datagram each time it is told to on stdin.
READER = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
for line in sys.stdin:
    sock.recv(2048)
"""


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[tuple[Program, int]]:
    popen = subprocess.Popen(
        [sys.executable, "-c", READER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert popen.stdout is not None
    port = int(popen.stdout.readline())
    program = Program("lo", "", ("reader",), popen.pid, tmp_path / "out", tmp_path / "err", popen)
    yield program, port
    popen.kill()
    popen.wait()


def _wait_queued(port: int, size: int, timeout: float = 5.0) -> None:
    """Wait until the kernel shows a datagram queued on the UDP socket bound to 127.0.0.1:port
    (/proc/net/udp counts its bytes and overhead in rx_queue)."""
    local = f"0100007F:{port:04X}"
    deadline = time.monotonic() + timeout
    while True:
        with open("/proc/net/udp") as table:
            rows = [line.split() for line in table.readlines()[1:]]
        if any(row[1] == local and int(row[4].split(":")[1], 16) >= size for row in rows):
            return
        assert time.monotonic() < deadline, f"no datagram queued on {local} after {timeout} s"
        time.sleep(0.001)


def test_a_program_waiting_for_input_with_nothing_unread_is_settled(
    reader: tuple[Program, int],
) -> None:
    program, _ = reader

    assert program.wait_settled(timeout=2.0)
    assert settled(program.pid)


def test_unread_data_on_its_socket_means_not_settled_until_it_reads(
    reader: tuple[Program, int],
) -> None:
    program, port = reader
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"are you done?", ("127.0.0.1", port))
    _wait_queued(port, len(b"are you done?"))

    assert not settled(program.pid)
    assert not program.wait_settled(timeout=0.05)
    assert program.popen is not None and program.popen.stdin is not None
    program.popen.stdin.write("read\n")
    program.popen.stdin.flush()
    assert program.wait_settled(timeout=2.0)


def test_a_busy_program_is_not_settled_and_a_dead_one_is(tmp_path: Path) -> None:
    spin = "print('spinning', flush=True)\nwhile True: pass"
    popen = subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.PIPE, text=True)
    program = Program("lo", "", ("spin",), popen.pid, tmp_path / "out", tmp_path / "err", popen)
    try:
        assert popen.stdout is not None and popen.stdout.readline() == "spinning\n"
        assert not settled(popen.pid)
        assert not program.wait_settled(timeout=0.1)
    finally:
        popen.kill()
        popen.wait()
    assert program.wait_settled(timeout=0.1)
    assert settled(popen.pid)  # gone: nothing of it left to wait for
