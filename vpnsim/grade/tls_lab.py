"""The TLS/SSL VPN lab's registry: each task's id, title and prerequisites, the check that
decides it, and the evidence it keeps (see `vpnsim.grade.registry`).

Three runs, each in a fresh lab (`vpnsim.grade.tls_grader`), so that one broken side does
not hide the other's work:
- "pair": the student's client and server: tunnel_up, encrypted, large;
- "client": the student's client with the reference TLS server: client_interop, then
  server_auth (an impostor server, the right server under a wrong name);
- "server": the reference TLS client with the student's server: server_interop, then
  client_auth (a wrong password, then the right one) and multiple_clients (a second client,
  from U2, while U's stays connected).
A check gets its run's `TlsRun` and starts the ends it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from vpnsim.grade.observe import Observation
from vpnsim.grade.registry import Entry, LabTasks, Run, Task
from vpnsim.grade.sides import Side
from vpnsim.grade.tls_checks import TlsPlaces, TlsProbe
from vpnsim.grade.tls_ends import TlsSides, wrong_name
from vpnsim.grade.trace import Failed
from vpnsim.topology import Lab

SECOND_CLIENT = "U2"


@dataclass
class TlsRun:
    """What a TLS-lab check works with: the run's lab, probes, and the ends started so far."""

    lab: Lab
    observe: Observation
    sides: TlsSides
    probe: TlsProbe
    places: TlsPlaces
    started: float  # when the run's lab was up (the handshakes happen after)
    client: Side | None = None
    server: Side | None = None
    log: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.probe.say(line)


def _up(run: TlsRun, side: Side, ready: str) -> Side:
    peers = (run.server,) if ready == "client" else ()
    problem = run.probe.wait(side, ready, peers)
    if problem is not None:
        raise Failed(problem)
    return side


def _student_pair(run: TlsRun) -> None:
    if run.server is None:
        run.server = _up(run, run.sides.student_server(), "server")
    if run.client is None:
        name = run.sides.contract.server_name
        run.client = _up(run, run.sides.student_client("U", name), "client")


def tunnel_up(run: TlsRun) -> str:
    _student_pair(run)
    ping = run.probe.through("U", 64, "tunnel")
    run.probe.tcp("U", "tunnel tcp")
    return f"your client and server: {ping}; a TCP exchange with V worked"


def encrypted(run: TlsRun) -> str:
    mark = run.probe.mark()
    run.probe.through("U", 200, "encrypted")
    run.probe.tcp("U", "encrypted tcp")
    port = run.sides.contract.port
    clear = run.probe.cleartext(mark)
    if clear is not None:
        raise Failed(
            f"the probes' payloads crossed {clear} in clear, inside TCP port {port}: the "
            "tunnel does not encrypt (wrap the socket with TLS)"
        )
    records = run.probe.records("U-eth0", run.started)
    if not records.get("data") or not records.get("handshake"):
        seen = ", ".join(f"{n} {kind}" for kind, n in sorted(records.items())) or "none"
        raise Failed(
            f"no probe payload in clear, but U's outer link shows no TLS handshake and "
            f"application data on TCP port {port} (TLS records seen: {seen})"
        )
    links = ", ".join(run.probe.outer_links())
    return (
        f"no probe payload crossed the outer links ({links}) in clear; U's link carried a "
        f"TLS handshake and TLS application-data records on TCP port {port}"
    )


def large(run: TlsRun) -> str:
    for size in (1400, 3000):
        try:
            run.probe.through("U", size, f"large {size}")
        except Failed as exc:
            raise Failed(f"a {size}-byte ping (64-byte pings work): {exc.reason}") from None
    return "1400-byte and 3000-byte pings went through the TLS tunnel to V and came back intact"


def client_interop(run: TlsRun) -> str:
    files = run.sides.files
    run.server = _up(run, run.sides.reference_server(files.cert, files.key), "server")
    client = run.sides.student_client("U", run.sides.contract.server_name)
    problem = run.probe.wait(client, "client", (run.server,))
    if problem is not None:
        if not run.probe.hello_sent("U", run.started):
            problem += f"; it sent no TLS handshake to TCP port {run.sides.contract.port}"
        raise Failed(problem)
    run.client = client
    ping = run.probe.through("U", 64, "client interop")
    run.probe.tcp("U", "client interop tcp")
    return f"your client with the reference TLS server: {ping}; a TCP exchange with V worked"


def server_auth(run: TlsRun) -> str:
    contract = run.sides.contract
    files = run.sides.files
    first = _refuses(
        run,
        lambda: run.sides.reference_server(files.impostor_cert, files.impostor_key),
        contract.server_name,
        "an impostor",
    )
    second = _refuses(
        run,
        lambda: run.sides.reference_server(files.cert, files.key),
        wrong_name(contract),
        "the wrong name",
    )
    return (
        f"your client refused an impostor whose certificate for {contract.server_name} comes "
        f"from a CA it does not trust ({first}), and the real server reached as "
        f"{wrong_name(contract)}, a name its certificate is not for ({second}): no login, no "
        "tunnel"
    )


def _refuses(run: TlsRun, start: Callable[[], Side], name: str, case: str) -> str:
    """Start the student's client against the server `start` starts (the run's ends are
    stopped first), under `name`; it must stop before it logs in. The words of how it
    stopped, else Failed."""
    for side in (run.client, run.server):
        if side is not None:
            run.sides.stop(side)
    run.client = None
    server = run.server = _up(run, start(), "server")
    since = run.probe.now()
    run.say(f"$ your client to {name} ({case})")
    client = run.sides.student_client("U", name)
    run.client = client

    def logged_in() -> bool:
        return ", user " in server.program.stderr() and "open" in server.program.stderr()

    how = run.probe.settle_refused(client, logged_in, (server,))
    run.say(f"  {how}")
    if how in ("login", "tunnel"):
        if case == "an impostor":
            raise Failed(
                f"your client accepted an impostor: a server whose certificate for {name} is "
                "signed by a CA it does not trust; it logged in and sent the password. Verify "
                "the server's certificate against the lab CA (CERT_REQUIRED, "
                "load_verify_locations)"
            )
        raise Failed(
            f"your client accepted the server under the name {name}, which its certificate "
            "is not for: check the host name (check_hostname = True, or SSL_set1_host in C)"
        )
    if not run.probe.hello_sent("U", since):
        raise Failed(
            f"your client, given {name} ({case}), never started a TLS handshake with the "
            f"server, so its refusal proves nothing ({how})"
        )
    return "it exited" if how == "exited" else "it stopped"


def server_interop(run: TlsRun) -> str:
    run.server = _up(run, run.sides.student_server(), "server")
    run.client = _up(run, run.sides.reference_client("U"), "client")
    ping = run.probe.through("U", 64, "server interop")
    run.probe.tcp("U", "server interop tcp")
    return f"the reference TLS client with your server: {ping}; a TCP exchange with V worked"


def _server_running(run: TlsRun) -> Side:
    """The student's server, started again if it died in an earlier task."""
    if run.server is None or run.server.exit_reason() is not None:
        run.say("$ your server is not running: start it again")
        run.server = _up(run, run.sides.student_server(), "server")
    return run.server


def client_auth(run: TlsRun) -> str:
    if run.client is not None:  # server_interop's client logs out first
        run.sides.stop(run.client)
        run.client = None
    server = _server_running(run)
    files = run.sides.files
    run.say("$ the reference client from U with a wrong password")
    wrong = run.sides.reference_client("U", files.wrong_password)
    if run.probe.wait(wrong, "client", (server,)) is None:
        run.sides.stop(wrong)
        raise Failed("your server accepted a wrong password: the client got a tunnel")
    told = "told so" if "refused the login" in wrong.program.stderr() else "disconnected"
    run.say(f"  refused ({told})")
    run.say("$ the reference client from U with the right password")
    right = run.sides.reference_client("U", files.password)
    problem = run.probe.wait(right, "client", (server,))
    if problem is not None:
        raise Failed(
            "your server refused a wrong password, but then did not let the right one in: "
            + (server.exit_reason() or problem)
        )
    run.client = right
    return (
        f"your server refused a wrong password (the client was {told}) and accepted the right one"
    )


def multiple_clients(run: TlsRun) -> str:
    server = _server_running(run)
    if run.client is None or run.client.exit_reason() is not None:
        run.client = _up(run, run.sides.reference_client("U"), "client")
    run.say(f"$ a second reference client from {SECOND_CLIENT}, while U's stays connected")
    second = run.sides.reference_client(SECOND_CLIENT)
    problem = run.probe.wait(second, "client", (server,))
    if problem is not None:
        raise Failed(f"a second client could not connect while the first one was: {problem}")
    first_tun, second_tun = run.probe.tun("U"), run.probe.tun(SECOND_CLIENT)
    addresses = [t.addresses[0] if t else "?" for t in (first_tun, second_tun)]
    if addresses[0] == addresses[1]:
        raise Failed(f"both clients got the same TUN address {addresses[0]}")
    try:
        run.probe.through(SECOND_CLIENT, 64, "second client")
        run.probe.through("U", 64, "first client again")
    except Failed as exc:
        raise Failed(f"with two clients connected: {exc.reason}") from None
    return (
        f"two clients at once, U ({addresses[0]}) and {SECOND_CLIENT} ({addresses[1]}): each "
        "pinged V through your server and got its own replies"
    )


REGISTRY = LabTasks(
    lab="tls",
    rubric="rubric-tls.toml",
    entries=(
        Entry(
            Task(
                "tunnel_up",
                "TLS tunnel up",
                "Your client and server carry a ping and a TCP exchange from U to V.",
            ),
            tunnel_up,
        ),
        Entry(
            Task(
                "encrypted",
                "Encrypted tunnel",
                "The outer link holds no probe payload in clear, and TLS records on the port.",
                ("tunnel_up",),
            ),
            encrypted,
        ),
        Entry(
            Task(
                "client_interop",
                "Your client with the reference TLS server",
                "Ping and TCP from U to V work with your client and vpnsim's TLS server.",
            ),
            client_interop,
        ),
        Entry(
            Task(
                "server_auth",
                "Server authentication",
                "Your client refuses an impostor's untrusted certificate, and the real server "
                "under a wrong host name.",
                ("client_interop",),
            ),
            server_auth,
        ),
        Entry(
            Task(
                "server_interop",
                "Your server with the reference TLS client",
                "Ping and TCP from U to V work with vpnsim's TLS client and your server.",
            ),
            server_interop,
        ),
        Entry(
            Task(
                "client_auth",
                "Client authentication",
                "Your server refuses a wrong password and accepts the right one.",
                ("server_interop",),
            ),
            client_auth,
        ),
        Entry(
            Task(
                "multiple_clients",
                "Multiple clients",
                "Two clients at once (U and U2), each with its own TUN address and replies.",
                ("server_interop",),
            ),
            multiple_clients,
        ),
        Entry(
            Task(
                "large",
                "Large packets",
                "Pings with 1400-byte and 3000-byte payloads make the round trip intact.",
                ("tunnel_up",),
            ),
            large,
        ),
    ),
    runs=(
        Run("pair", "p", ("tunnel_up", "encrypted", "large")),
        Run("client", "c", ("client_interop", "server_auth")),
        Run("server", "s", ("server_interop", "client_auth", "multiple_clients")),
    ),
)

Check = Callable[[TlsRun], str]
