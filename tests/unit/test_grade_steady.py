"""Reasons read the same on every run (`grader.steady`): two gradings of a class differ only
where a verdict did, not in a lab's name, a work folder, a PID, a time left or a port the
kernel picked."""

from __future__ import annotations

import pytest

from vpnsim.grade.grader import WORK_ROOT, steady

LAB, TOKEN = "gr1a2b3cp", "1a2b3c"


@pytest.mark.parametrize(
    ("reason", "same"),
    [
        (
            "the check could not run: network namespace 'vpnsim.gr1a2b3cp.U' does not exist",
            "the check could not run: network namespace 'vpnsim.<lab>.U' does not exist",
        ),
        (
            f"your client exited with status 1: cannot open {WORK_ROOT}/alice-{TOKEN}/key.pem",
            "your client exited with status 1: cannot open key.pem",
        ),
        (  # as workcopy.folder_name makes it: the grader's PID after the token
            f"your client exited with status 1: cannot open {WORK_ROOT}/alice-{TOKEN}.4242/k.pem",
            "your client exited with status 1: cannot open k.pem",
        ),
        (
            "U: python3 -u tun_client.py (pid 4242) exited",
            "U: python3 -u tun_client.py (pid N) exited",
        ),
        (
            "your server was killed by signal 9: vpnsim-jail: wall time limit of 63.25 s reached: "
            "killed the jail",
            "your server was killed by signal 9: vpnsim-jail: wall time limit reached: "
            "killed the jail",
        ),
        (
            "OSError: <socket.socket fd=3 at 0x7f3a2b1c9e40> closed",
            "OSError: <socket.socket fd=3 at 0x…> closed",
        ),
        (
            "ConnectionError: from ('10.9.0.5', 52752) and 10.9.0.5:41000",
            "ConnectionError: from ('10.9.0.5', …) and 10.9.0.5:…",
        ),
    ],
)
def test_what_changes_from_run_to_run_is_left_out(reason: str, same: str) -> None:
    assert steady(reason, LAB, TOKEN) == same


@pytest.mark.parametrize(
    "reason",
    [
        "your client sends the tunneled packets to UDP port 9091; the server listens on 9090",
        "the ping left U in clear on eth0, not inside UDP to 10.9.0.11:9090: U routes ...",
        "your server sends the replies to port 12345 on U, not to the port the client's ...",
        "from 10.9.0.5:61000 and ('10.9.0.5', 32767): ports no kernel picked",
        "your client did not create a TUN within 10 s",
    ],
)
def test_what_a_student_chose_is_kept(reason: str) -> None:
    assert steady(reason, LAB, TOKEN) == reason
