"""The grading tasks: ids (as in the JSON report), what each checks, and what each needs.

The ids and order follow the SEED VPN tunnel lab. A task whose prerequisite did not pass is
"not reached" (passed=None) with the headline of that prerequisite's reason (one short
line, not its traceback), never failed for it twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vpnsim.grade.path import PacketPath


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    checks: str  # one sentence a student can read
    needs: tuple[str, ...] = ()


TASKS: tuple[Task, ...] = (
    Task("task1", "Network setup", "U reaches the server, the server reaches V, U cannot reach V."),
    Task(
        "task2",
        "TUN interface",
        "The client creates a TUN device with 192.168.53.99/24 and brings it up.",
        ("task1",),
    ),
    Task(
        "task3",
        "Send the IP packet to the VPN server through a tunnel",
        "A ping from U to 192.168.60.5 arrives at the server inside a UDP datagram to port 9090.",
        ("task2",),
    ),
    Task(
        "task4",
        "Set up the VPN server",
        "The server writes the packet to its TUN and it reaches V.",
        ("task3",),
    ),
    Task(
        "task5",
        "Handle traffic in both directions",
        "Ping replies come back to U, and a TCP exchange between U and V works.",
        ("task4",),
    ),
    Task(
        "task6",
        "Tunnel-breaking experiment",
        "The client is killed and restarted during a TCP session; the session resumes.",
        ("task5",),
    ),
    Task(
        "task7",
        "Routing experiment on host V",
        "V, with only a route to 192.168.53.0/24 via the server, still answers U.",
        ("task5",),
    ),
    Task(
        "large",
        "Large packets",
        "Pings with 1400-byte and 3000-byte payloads make the round trip intact.",
        ("task5",),
    ),
    Task(
        "robust",
        "Robust server",
        "The server survives a garbage datagram on UDP 9090 and the tunnel still works.",
        ("task5",),
    ),
    Task(
        "client_interop",
        "Your client with the reference server",
        "Ping and TCP from U to V work with your client and vpnsim's reference server.",
        ("task2",),
    ),
    Task(
        "server_interop",
        "Your server with the reference client",
        "Ping and TCP from U to V work with vpnsim's reference client and your server.",
        ("task1",),
    ),
)

TASK_IDS: tuple[str, ...] = tuple(task.id for task in TASKS)
BY_ID: dict[str, Task] = {task.id: task for task in TASKS}


@dataclass(frozen=True)
class Verdict:
    """One task's outcome: passed True/False, or None when not reached (or not run)."""

    passed: bool | None
    reason: str
    log: tuple[str, ...] = ()  # commands run and what they printed, in order
    evidence: tuple[str, ...] = ()  # files beside the report, relative to its artifacts folder
    seconds: float = 0.0
    path: PacketPath | None = None  # where the task's probe was seen (None: it traced none)

    @property
    def status(self) -> str:
        return {True: "passed", False: "failed", None: "not reached"}[self.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "log": list(self.log),
            "evidence": list(self.evidence),
            "seconds": round(self.seconds, 3),
            "path": None if self.path is None else self.path.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        return cls(
            passed=data["passed"],
            reason=data["reason"],
            log=tuple(data.get("log", ())),
            evidence=tuple(data.get("evidence", ())),
            seconds=float(data.get("seconds", 0.0)),
            path=None if data.get("path") is None else PacketPath.from_dict(data["path"]),
        )


HEADLINE = 100  # characters of a reason that a task it blocks repeats


def headline(reason: str) -> str:
    """A reason's first, short part: its first line up to the first ": " (reasons read
    "what: detail"), at most HEADLINE characters. A task that is not reached names its
    cause with this, not with a whole traceback."""
    line = reason.strip().split("\n", 1)[0]
    line = line.split(": ", 1)[0]
    if len(line) > HEADLINE:
        line = line[: HEADLINE - 1].rsplit(" ", 1)[0] + "…"
    return line


@dataclass
class Outcome:
    """Verdicts as tasks run: a task is attempted only when its prerequisites passed."""

    verdicts: dict[str, Verdict] = field(default_factory=dict)

    def blocker(self, task_id: str) -> str | None:
        """Why `task_id` cannot run (the first prerequisite that did not pass), or None."""
        for need in BY_ID[task_id].needs:
            verdict = self.verdicts.get(need)
            if verdict is None:
                return f"needs {need} ({BY_ID[need].title}), which was not run"
            if verdict.passed is None:  # the root cause, not a chain of "needs"
                return verdict.reason
            if verdict.passed is False:
                return (
                    f"needs {need} ({BY_ID[need].title}), which failed: {headline(verdict.reason)}"
                )
        return None

    def record(self, task_id: str, verdict: Verdict) -> None:
        self.verdicts[task_id] = verdict

    def not_reached(self, task_id: str, reason: str) -> Verdict:
        verdict = Verdict(None, reason)
        self.verdicts[task_id] = verdict
        return verdict

    def ordered(self) -> dict[str, Verdict]:
        """Every task, in TASKS order; one never recorded is not reached."""
        return {
            task_id: self.verdicts.get(task_id, Verdict(None, "not run")) for task_id in TASK_IDS
        }
