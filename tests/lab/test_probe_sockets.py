"""Probes keep the lab's namespaces and a raw ICMP socket per host open (a probe then costs its
packets, not entering a namespace), and let go of them with the lab: a kept descriptor or
socket would keep a removed namespace alive."""

from __future__ import annotations

import os
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpnsim.net import namespace
from vpnsim.seed import seed_tunnel
from vpnsim.topology import Lab, build_lab, new_lab_name
from vpnsim.traffic.icmp import echo_request
from vpnsim.traffic.probes import Probes

pytestmark = pytest.mark.lab

SERVER = "10.9.0.11"  # on U's own network: no tunnel needed


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    built = build_lab(seed_tunnel(), name=new_lab_name("ps"), log_dir=tmp_path)
    try:
        yield built
    finally:
        built.teardown()


def _open_here(path: Path) -> bool:
    """Whether a descriptor of this process is open on `path` (even once it is unlinked)."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the listing's own descriptor, closed meanwhile
            continue
        if link.startswith(str(path)):  # "(deleted)" follows once it is unlinked
            return True
    return False


def test_a_stale_reply_on_the_kept_socket_is_not_taken_and_is_thrown_away(lab: Lab) -> None:
    probes = Probes(lab)
    assert probes.ping("U", SERVER, b"first").payload == b"first"
    kept = probes._echo_socket("U", v6=False)
    # Someone else's echo (another ident) whose reply waits, unread, on the kept socket.
    kept.sendto(echo_request(0xBEEF, 1, b"stale"), (SERVER, 0))
    assert select.select([kept], [], [], 5.0)[0] == [kept]

    assert probes.ping("U", SERVER, b"second").payload == b"second"
    assert probes._echo_socket("U", v6=False) is kept  # one socket, reused
    assert select.select([kept], [], [], 0)[0] == []  # the stale reply went with the drain


def test_the_lab_lets_go_of_its_namespaces_and_sockets_at_teardown(lab: Lab) -> None:
    u_namespace = namespace.path_of(lab.ns("U"))
    probes = Probes(lab)
    probes.ping("U", SERVER)
    kept = probes._echo_socket("U", v6=False)
    assert _open_here(u_namespace)

    lab.teardown()

    assert not _open_here(u_namespace)
    assert kept.fileno() == -1  # closed, so it holds no namespace either
    with pytest.raises(namespace.NamespaceError, match="does not exist"):
        lab.kept.socket_in(lab.ns("U"), socket.AF_INET, socket.SOCK_DGRAM)
