"""The Tunneling lab's registry: each task's id, title and prerequisites, the check that
decides it, and the evidence it keeps (see `vpnsim.grade.registry`).

The ids and order follow the SEED VPN tunnel lab. Three runs attempt them, each in a fresh
lab (`vpnsim.grade.grader`): the student's client and server together ("pair"), the
student's client with the reference server, the reference client with the student's server.
A check gets its run's `TunnelRun`: the lab, its probes, the two ends (`Tunnel`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vpnsim.grade.registry import Entry, LabTasks, Run, Task
from vpnsim.grade.trace import CLIENT_TUN, PORT, SERVER_ADDR, TUN_NET, V_ADDR, Failed
from vpnsim.traffic.errors import ProbeFailed

if TYPE_CHECKING:  # the report writers read this registry: no netlink at import
    from vpnsim.grade.observe import Observation
    from vpnsim.grade.sides import Side, Sides
    from vpnsim.grade.tunnel_checks import Tunnel
    from vpnsim.topology import Lab
    from vpnsim.traffic.probes import Probes


@dataclass
class TunnelRun:
    """What a Tunneling-lab check works with: the run's lab and, once started, its ends."""

    lab: Lab
    observe: Observation
    probes: Probes
    sides: Sides
    log: list[str] = field(default_factory=list)
    tunnel: Tunnel | None = None
    server_problem: str | None = None  # why the student's server did not come up, if not

    @property
    def ends(self) -> Tunnel:
        if self.tunnel is None:
            raise RuntimeError("the run's ends were not started")
        return self.tunnel


def baseline(run: TunnelRun) -> str:
    """Task 1: the lab's own network, before any student program runs."""
    log = run.log
    for host, dst in (("U", SERVER_ADDR), ("server", V_ADDR)):
        log.append(f"$ ping from {host} to {dst}")
        try:
            run.probes.ping(host, dst)
        except ProbeFailed as exc:
            log.append(f"  {exc}")
            raise Failed(f"the lab's network is broken: {exc}") from None
        log.append("  reply")
    log.append(f"$ ping from U to {V_ADDR} (must fail: no VPN yet)")
    if run.probes.reaches("U", V_ADDR, timeout=0.5):
        raise Failed(f"U reaches {V_ADDR} without a VPN: the lab is not isolated")
    log.append("  no reply, as it should be")
    return f"U reaches {SERVER_ADDR}, the server reaches {V_ADDR}, U cannot reach {V_ADDR}"


def client_tun(run: TunnelRun) -> str:
    """Task 2: the client's TUN, up with its address."""
    tunnel = run.ends
    problem = tunnel.wait_client_up()
    tunnel.say(f"$ wait up to 10 s for a TUN on U with {CLIENT_TUN}, up")
    if problem is not None:
        raise Failed(problem)
    name = tunnel.up_tun["U"]
    tun = tunnel.tun("U")
    now = f"{' '.join(tun.addresses)}" if tun is not None and tun.name == name else "gone since"
    tunnel.say(f"  {name}: TUN, up, {now}")
    return f"{name} is a TUN device with {CLIENT_TUN}, up"


def to_v(run: TunnelRun) -> str:
    """Task 4, once the server came up (`server_problem` says why it did not)."""
    if run.server_problem:
        raise Failed(run.server_problem)
    return run.ends.task4_to_v()


def restart(run: TunnelRun) -> str:
    """Task 6; a server the robust task killed is started again first."""
    tunnel = run.ends
    if tunnel.server.exit_reason() is not None:
        tunnel.say("$ the server died in the robust task: start it again")
        tunnel.server = run.sides.start("server", student=True)
        problem = tunnel.wait_server_up()
        if problem is not None:
            raise Failed(f"the server could not be started again: {problem}")
    return tunnel.task6_restart()


def restarter(sides: Sides, tunnel: Callable[[], Tunnel]) -> Callable[[], Side]:
    """How task 6 kills and starts the student's client again."""

    def again() -> Side:
        sides.stop(tunnel().client)
        return sides.start("client", student=True)

    return again


def interop(run: TunnelRun) -> str:
    """client_interop / server_interop: one student end with the reference's other end."""
    tunnel = run.ends
    for problem in (tunnel.wait_server_up(), tunnel.wait_client_up()):
        if problem is not None:
            raise Failed(problem)
    return f"with {tunnel.server.who} and {tunnel.client.who}: " + tunnel.round_trip()


def _method(name: str) -> Callable[[TunnelRun], str]:
    def check(run: TunnelRun) -> str:
        result: str = getattr(run.ends, name)()
        return result

    check.__name__ = name
    return check


REGISTRY = LabTasks(
    lab="tunnel",
    rubric="rubric.toml",
    entries=(
        Entry(
            Task(
                "task1",
                "Network setup",
                "U reaches the server, the server reaches V, U cannot reach V.",
            ),
            baseline,
        ),
        Entry(
            Task(
                "task2",
                "TUN interface",
                f"The client creates a TUN device with {CLIENT_TUN} and brings it up.",
                ("task1",),
            ),
            client_tun,
        ),
        Entry(
            Task(
                "task3",
                "Send the IP packet to the VPN server through a tunnel",
                f"A ping from U to {V_ADDR} arrives at the server inside a UDP datagram to "
                f"port {PORT}.",
                ("task2",),
            ),
            _method("task3_to_server"),
        ),
        Entry(
            Task(
                "task4",
                "Set up the VPN server",
                "The server writes the packet to its TUN and it reaches V.",
                ("task3",),
            ),
            to_v,
        ),
        Entry(
            Task(
                "task5",
                "Handle traffic in both directions",
                "Ping replies come back to U, and a TCP exchange between U and V works.",
                ("task4",),
            ),
            _method("task5_both_ways"),
        ),
        Entry(
            Task(
                "task6",
                "Tunnel-breaking experiment",
                "The client is killed and restarted during a TCP session; the session resumes.",
                ("task5",),
            ),
            restart,
        ),
        Entry(
            Task(
                "task7",
                "Routing experiment on host V",
                f"V, with only a route to {TUN_NET} via the server, still answers U.",
                ("task5",),
            ),
            _method("task7_routes_on_v"),
        ),
        Entry(
            Task(
                "large",
                "Large packets",
                "Pings with 1400-byte and 3000-byte payloads make the round trip intact.",
                ("task5",),
            ),
            _method("large"),
        ),
        Entry(
            Task(
                "robust",
                "Robust server",
                f"The server survives a garbage datagram on UDP {PORT} and the tunnel still works.",
                ("task5",),
            ),
            _method("robust"),
        ),
        Entry(
            Task(
                "client_interop",
                "Your client with the reference server",
                "Ping and TCP from U to V work with your client and vpnsim's reference server.",
                ("task2",),
            ),
            interop,
        ),
        Entry(
            Task(
                "server_interop",
                "Your server with the reference client",
                "Ping and TCP from U to V work with vpnsim's reference client and your server.",
                ("task1",),
            ),
            interop,
        ),
    ),
    runs=(
        # task1 runs before the ends start; robust may kill the server, which task6 restarts.
        Run(
            "pair",
            "p",
            ("task1", "task2", "task3", "task4", "task5", "large", "task7", "robust", "task6"),
        ),
        Run("client_interop", "c", ("client_interop",)),
        Run("server_interop", "s", ("server_interop",)),
    ),
)
