"""The ends of a graded TLS tunnel: the grading's certificates and logins, the student's
programs (jailed, started as the submission's contract says), and vpnsim's reference TLS
server and client (`vpnsim.tlslab`'s commands).

The contract (`vpnsim.grade.submission.TlsContract`, README "Grading TLS submissions"):
the client gets `SERVER_NAME PORT` on its command line (or where `{host}` and `{port}`
are) and the user name and password on its stdin, a line each; the server may name
`{cert}`, `{key}`, `{ca}`, `{users}` and `{port}`. With `certificates = "issued"` the
grader writes a fresh lab CA, the server's certificate and key for the submission's
server name, and the user file into the work copy where the contract says; with "own" the
submission's own CA, certificate and key are used, by the reference ends too.
"""

from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from vpnsim import names, pki, tlslab
from vpnsim.grade.environment import StudentEnvironment
from vpnsim.grade.jail import JailLimits
from vpnsim.grade.sides import Role, Side, Sides
from vpnsim.grade.submission import Submission, TlsContract
from vpnsim.topology import Lab
from vpnsim.tunnel.shadow import shadow_line

LOGIN_FILE = ".vpnsim-login"  # in the work copy: the client's stdin
WRONG_PASSWORD = "not-" + tlslab.PASSWORD
IMPOSTOR_CA = "an impostor CA"


def wrong_name(contract: TlsContract) -> str:
    """A name that resolves to the server, and that its certificate is not for."""
    return f"not-{contract.server_name}"


@dataclass(frozen=True)
class TlsGradingFiles:
    """What the ends read: in the work copy (the student's) and the grader's folder."""

    ca: Path  # the CA the clients trust
    cert: Path  # the server's certificate and key
    key: Path
    users: Path  # the lab's login, /etc/shadow's format
    password: Path  # the right password, for the reference client
    wrong_password: Path
    impostor_cert: Path  # for the right name, from a CA no client trusts
    impostor_key: Path


def prepare_files(submission: Submission, work: Path, folder: Path) -> TlsGradingFiles:
    """Issue (or take the submission's own) certificates, and write the logins: the work
    copy gets what the contract names, `folder` (the grader's) the rest."""
    contract = submission.tls
    folder.mkdir(parents=True, exist_ok=True)
    ca, cert, key = (work / contract.ca, work / contract.cert, work / contract.key)
    if contract.certificates == "issued":
        server = pki.issue(folder / "lab", contract.server_name, ips=[tlslab.SERVER_ADDRESS])
        for source, target in ((folder / "lab" / "ca.crt", ca), (server.cert, cert)):
            _place(source, target)
        _place(server.key, key)
    impostor = pki.issue(folder / "impostor", contract.server_name, ips=[tlslab.SERVER_ADDRESS])
    users = work / contract.users
    users.parent.mkdir(parents=True, exist_ok=True)
    users.write_text(shadow_line(tlslab.USER, tlslab.PASSWORD) + "\n")
    (work / LOGIN_FILE).write_text(f"{tlslab.USER}\n{tlslab.PASSWORD}\n")
    password = folder / "password"
    password.write_text(tlslab.PASSWORD + "\n")
    wrong = folder / "wrong-password"
    wrong.write_text(WRONG_PASSWORD + "\n")
    return TlsGradingFiles(ca, cert, key, users, password, wrong, impostor.cert, impostor.key)


def _place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)  # a shipped file (or a link) is replaced, not written through
    shutil.copyfile(source, target)


def give_names(lab: Lab, contract: TlsContract, hosts: tuple[str, ...]) -> None:
    """Let the client hosts resolve the server's name, and a wrong one, to its address."""
    for host in hosts:
        names.write_hosts(
            lab.ns(host),
            {
                contract.server_name: tlslab.SERVER_ADDRESS,
                wrong_name(contract): tlslab.SERVER_ADDRESS,
            },
        )


class TlsSides(Sides):
    """Starts the TLS lab's ends; the server runs on the gateway."""

    def __init__(
        self,
        lab: Lab,
        work: Path,
        submission: Submission,
        files: TlsGradingFiles,
        limits: JailLimits,
        environment: StudentEnvironment,
        server_host: str,
    ) -> None:
        super().__init__(lab, work, submission.client, submission.server, limits, environment)
        self.contract = submission.tls
        self.files = files
        self.server_host = server_host
        self.references = 0

    def build_host(self) -> str:
        return self.server_host

    def student_client(self, host: str, name: str) -> Side:
        """The student's client on `host`, connecting to `name`, its login on stdin."""
        port = str(self.contract.port)
        command = fill_command(self.commands["client"], {"host": name, "port": port})
        if command == list(self.commands["client"]):  # no placeholders: append them
            command += [name, port]
        # exec: the program is the shell's process, with the login file as its stdin.
        wrapped = ["sh", "-c", f'exec "$@" < {LOGIN_FILE}', "sh", *command]
        return self.start_jailed("client", host, wrapped)

    def student_server(self) -> Side:
        c = self.contract
        values = {"cert": c.cert, "key": c.key, "ca": c.ca, "users": c.users, "port": str(c.port)}
        return self.start_jailed(
            "server", self.server_host, fill_command(self.commands["server"], values)
        )

    def reference_server(self, cert: Path, key: Path) -> Side:
        files = tlslab.TlsLabFiles(
            self.files.cert.parent, self.files.ca, cert, key, self.files.users, self.files.password
        )
        argv = tlslab.server_argv(files, "--port", str(self.contract.port))
        return self._reference("server", self.server_host, argv)

    def reference_client(self, host: str, password: Path | None = None) -> Side:
        files = tlslab.TlsLabFiles(
            self.files.cert.parent, self.files.ca, self.files.cert, self.files.key,
            self.files.users, self.files.password,
        )  # fmt: skip
        extra = ["--port", str(self.contract.port), "--tun-name", "ref%d"]
        if password is not None:
            extra += ["--password-file", str(password)]
        argv = tlslab.client_argv(files, self.contract.server_name, *extra)
        return self._reference("client", host, argv)

    def _reference(self, role: Role, host: str, argv: list[str]) -> Side:
        self.references += 1
        program = self.lab.start(host, argv, log_name=f"reference-{role}-{self.references}")
        return Side(role, host, False, program)


def fill_command(command: tuple[str, ...], values: dict[str, str]) -> list[str]:
    """`command` with `{name}` replaced by its value in each word (other braces kept)."""
    filled = []
    for word in command:
        for name, value in values.items():
            word = word.replace("{" + name + "}", value)
        filled.append(word)
    return filled


def command_words(side: Side) -> str:
    """The student's command as run (without the jail), for a log line."""
    argv = list(side.program.argv)
    return shlex.join(argv[argv.index("--") + 1 :] if "--" in argv else argv)
