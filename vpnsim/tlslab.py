"""The TLS/SSL VPN lab in one call: the seed-tls topology, its PKI, U's hosts file, a user
file, and the reference TLS server and clients started in it, each waited for.

```
  U 10.0.2.7 ---- net-10.0.2.0 ---- 10.0.2.8 [gateway: VPN server] 192.168.60.1
                                                       |
                                   net-192.168.60.0 ---+-- V 192.168.60.101
  tunnel: server TUN 192.168.53.1/24, clients from the pool (192.168.53.2, ...), TLS on TCP 4433
```

Tests and the benchmark start programs with the argv built here; a scenario's `[tls]` table
makes its files with `make_files` (the seed-tls scenario writes its own argv, in TOML).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vpnsim import names, pki, proc
from vpnsim.scenario.shipped import SHIPPED_DIR
from vpnsim.topology import Lab
from vpnsim.tunnel.shadow import shadow_line

# The lab's topology, shipped in the package.
SCENARIO_FILE = SHIPPED_DIR / "seed-tls.toml"
# The name students' TLS-lab programs most often expect (SEED-LABS.md); only U resolves it.
SERVER_NAME = "vpnlabserver.com"
SERVER_ADDRESS = "10.0.2.8"
SERVER_TUN = "192.168.53.1/24"
PRIVATE_NET = "192.168.60.0/24"
PORT = 4433
USER, PASSWORD = "seed", "dees"  # the SEED VM's account
READY_TIMEOUT = 15.0


@dataclass(frozen=True)
class TlsLabFiles:
    """What the lab's programs read: the CA, the server's material, the user file, and for
    refusal checks a CA that signed nothing and a self-signed impostor certificate."""

    folder: Path
    ca: Path
    cert: Path
    key: Path
    users: Path
    password: Path  # the first user's password
    other_ca: Path | None = None
    impostor_cert: Path | None = None
    impostor_key: Path | None = None

    def placeholders(self) -> dict[str, str]:
        """What a scenario's `{name}` in a program's argv stands for."""
        named = {
            "pki": self.folder,
            "ca": self.ca,
            "cert": self.cert,
            "key": self.key,
            "users": self.users,
            "other_ca": self.other_ca,
            "impostor_cert": self.impostor_cert,
            "impostor_key": self.impostor_key,
        }
        return {name: str(path) for name, path in named.items() if path is not None}


def prepare(
    lab: Lab, server_name: str = SERVER_NAME, client_hosts: Sequence[str] = ("U",)
) -> TlsLabFiles:
    """Issue the lab's certificates (cached), write the user file, and let `client_hosts`
    resolve `server_name` to the server's outer address."""
    files = make_files(pki.lab_folder(lab.name), server_name, SERVER_ADDRESS, {USER: PASSWORD})
    for host in client_hosts:
        names.write_hosts(lab.ns(host), {server_name: SERVER_ADDRESS})
    return files


def make_files(
    folder: Path, server_name: str, server_address: str, users: Mapping[str, str]
) -> TlsLabFiles:
    """The lab CA and the server's certificate (cached), the logins (`shadow`, and
    `USER.password` per user), another CA and a self-signed impostor certificate."""
    server = pki.issue(folder, server_name, ips=[server_address])
    shadow = folder / "shadow"
    shadow.write_text("".join(shadow_line(user, pw) + "\n" for user, pw in users.items()))
    passwords = []
    for user, password in users.items():
        passwords.append(folder / f"{user}.password")
        passwords[-1].write_text(password + "\n")
    legacy = folder / "password"  # the first user's, as tests and the benchmark read it
    legacy.write_text(next(iter(users.values()), "") + "\n")
    other = pki.init(folder / "other-ca", subject="an untrusted CA")
    # A self-signed certificate whose subject is the server's name: what an impostor shows.
    impostor = pki.init(folder / "impostor", subject=server_name)
    return TlsLabFiles(
        folder,
        folder / "ca.crt",
        server.cert,
        server.key,
        shadow,
        legacy,
        other.cert,
        impostor.cert,
        impostor.key,
    )


def server_argv(files: TlsLabFiles, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "vpnsim.tunnel", "server", "--tls",
        "--cert", str(files.cert), "--key", str(files.key), "--users", str(files.users),
        "--tun-address", SERVER_TUN, "--port", str(PORT), *extra,
    ]  # fmt: skip


def client_argv(files: TlsLabFiles, server: str = SERVER_NAME, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "vpnsim.tunnel", "client", "--tls", "--server", server,
        "--ca", str(files.ca), "--user", USER, "--password-file", str(files.password),
        "--route", PRIVATE_NET, "--port", str(PORT), *extra,
    ]  # fmt: skip


def start_server(lab: Lab, argv: Sequence[str], host: str = "gateway") -> proc.Program:
    """Start a TLS server and wait until its TCP port listens."""
    program = lab.start(host, argv, log_name=f"tls-server-{time.monotonic_ns() % 10**8}")
    program.wait_ready(
        lambda: proc.port_bound(program.pid, PORT, "tcp"), READY_TIMEOUT, f"TCP port {PORT}"
    )
    return program


def start_client(lab: Lab, argv: Sequence[str], host: str = "U") -> tuple[proc.Program, float]:
    """Start a TLS client and wait until it says its TUN is up (after handshake and login);
    returns it and the seconds that took."""
    program = lab.start(host, argv, log_name=f"tls-client-{host}-{time.monotonic_ns() % 10**8}")
    waited = program.wait_ready(
        lambda: " up, " in program.stdout(), READY_TIMEOUT, "its TUN up (TLS session open)"
    )
    return program, waited


def run_refused(lab: Lab, argv: Sequence[str], host: str = "U") -> proc.Program:
    """Run a client expected to be refused; returns it once it has exited."""
    program = lab.start(host, argv, log_name=f"tls-refused-{time.monotonic_ns() % 10**8}")
    if program.popen is not None:
        program.popen.wait(READY_TIMEOUT)
    return program
