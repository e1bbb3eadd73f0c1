"""When the grader stops waiting for an end to come up (`liveness.stuck`): it waits for input
with no timeout and nothing unread (a final state), or it keeps computing. Real child
processes, no root: each runs a tiny script and settles where a student's program would."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpnsim import proc
from vpnsim.grade import liveness
from vpnsim.grade.liveness import BUSY, quiet, stuck, waits_forever
from vpnsim.grade.sides import Side

PROGRAMS = {
    "recvfrom": "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.bind(('127.0.0.1', 0))\nprint('ready', flush=True)\ns.recvfrom(10)\n",
    "select": "import select, socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "print('ready', flush=True)\nselect.select([s], [], [])\n",
    "select with a timeout": "import select, socket\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nprint('ready', flush=True)\n"
    "select.select([s], [], [], 60)\n",
    "sleep": "import time\nprint('ready', flush=True)\ntime.sleep(60)\n",
    "thread join": "import threading, socket\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "t = threading.Thread(target=lambda: s.recvfrom(10))\nt.start()\n"
    "print('ready', flush=True)\nt.join()\n",
    "os.system": "import os\nprint('ready', flush=True)\nos.system('sleep 60')\n",
    "spin": "print('ready', flush=True)\nwhile True: pass\n",
}


def _side(program: proc.Program) -> Side:
    return Side("client", "U", True, program)  # not jailed: every process is the student's


@pytest.fixture
def running(tmp_path: Path) -> Iterator[dict[str, Side]]:
    """Each program of PROGRAMS started and past its "ready" line."""
    sides = {}
    for name, source in PROGRAMS.items():
        script = tmp_path / f"{len(sides)}.py"
        script.write_text(source)
        out, err = tmp_path / f"{len(sides)}.out", tmp_path / f"{len(sides)}.err"
        popen = subprocess.Popen(
            [sys.executable, "-u", str(script)], stdout=out.open("wb"), stderr=err.open("wb")
        )
        program = proc.Program("U", "-", (sys.executable, str(script)), popen.pid, out, err, popen)
        sides[name] = _side(program)
    deadline = time.monotonic() + 30
    for side in sides.values():
        while "ready" not in side.program.stdout():
            assert time.monotonic() < deadline, side.program.stderr()
            time.sleep(0.01)
    yield sides
    for side in sides.values():
        for pid in proc.process_tree(side.program.pid)[1:]:
            proc.kill_and_wait([pid])
        side.program.stop()


def _settled(side: Side, timeout: float = 10.0) -> None:
    assert side.program.wait_settled(timeout)


@pytest.mark.parametrize(
    ("name", "call"),
    [("recvfrom", "recvfrom"), ("select", "select"), ("thread join", "futex")],
)
def test_a_program_waiting_for_input_with_no_timeout_is_stuck(
    running: dict[str, Side], name: str, call: str
) -> None:
    side = running[name]
    _settled(side)
    assert waits_forever(side.program.pid) == call
    assert stuck(side) == f"it waits in {call}() for input that nothing sends it"
    assert quiet(side)


@pytest.mark.parametrize("name", ["select with a timeout", "sleep"])
def test_a_program_asleep_on_a_timer_may_still_get_somewhere(
    running: dict[str, Side], name: str
) -> None:
    side = running[name]
    _settled(side)
    assert waits_forever(side.program.pid) is None
    assert stuck(side) is None
    assert quiet(side)


def test_a_program_waiting_for_a_child_that_sleeps_is_not_stuck(running: dict[str, Side]) -> None:
    side = running["os.system"]
    deadline = time.monotonic() + 10
    while len(proc.process_tree(side.program.pid)) < 2:  # python -> sh (-> sleep, or sh execs it)
        assert time.monotonic() < deadline
        time.sleep(0.01)
    _settled(side)
    assert waits_forever(side.program.pid) == "wait4"  # the parent alone would be
    assert stuck(side) is None  # but its grandchild sleeps on a timer


def test_a_spinning_program_is_stuck_once_it_used_its_cpu_time(running: dict[str, Side]) -> None:
    side = running["spin"]
    assert not quiet(side)
    assert waits_forever(side.program.pid) is None
    deadline = time.monotonic() + 600  # a guard against a hang: the load decides the pace
    while liveness.cpu_seconds(liveness.own_pids(side)) < liveness.UP_CPU:
        assert stuck(side) is None
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert stuck(side) == BUSY == "it kept computing"


def test_an_exited_program_is_not_stuck_but_ended(running: dict[str, Side]) -> None:
    side = running["sleep"]
    side.program.stop()
    assert stuck(side) is None
    assert quiet(side)
    assert liveness.ended(side)
    assert liveness.exit_reason(side) == "your client was killed by signal 15 (nothing on stderr)"
