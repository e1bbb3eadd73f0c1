"""A student's submission: a folder with the SEED lab's tun_client.py and tun_server.py (the
TLS lab: tls_client.py and tls_server.py), or a vpnsim.toml naming what to run on each end.

    # vpnsim.toml (optional)
    client = "python3 -u vpn_client.py"     # run in the submission's folder on U
    server = "./vpnserver"                   # ... and on the VPN server
    build = "make"                           # run once before grading (optional)
    lab = "tls"                              # which lab it is for (default: --lab's)

The TLS lab's contract (`vpnsim grade --lab tls`; README "Grading TLS submissions"):

    server_name = "vpnlabserver.com"   # the name the server's certificate is for (default)
    port = 4433                        # TCP port the server listens on (default)
    certificates = "issued"            # the grader issues CA and server certificate (default),
                                       # or "own": the submission ships them
    ca = "ca.crt"                      # where they are, in the submission's folder (defaults);
    cert = "server.crt"                # "issued" writes them there, over anything shipped
    key = "server.key"
    users = "shadow"                   # the grader writes the lab's login (seed/dees) here, in
                                       # /etc/shadow's format

The client command gets `SERVER_NAME PORT` appended (or put `{host}` and `{port}` where they
go), and its stdin holds the user name and the password, a line each. The server command
may name `{cert}`, `{key}`, `{ca}`, `{users}` and `{port}`; they are replaced by the paths
above (relative to its folder) and the port.

A folder that cannot be graded (no client, a malformed vpnsim.toml) is still a submission:
`problem` says why, and every task fails with that reason. Nothing here runs student code.
"""

from __future__ import annotations

import shlex
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vpnsim.impl import SEED_CLIENT, SEED_SERVER
from vpnsim.scenario.lines import key_lines, line_of

CONFIG = "vpnsim.toml"
KEYS = ("client", "server", "build", "lab")
TLS_KEYS = ("server_name", "port", "certificates", "ca", "cert", "key", "users")
LABS = ("tunnel", "tls")
# The programs a folder without vpnsim.toml runs, by lab.
SCRIPTS = {"tunnel": (SEED_CLIENT, SEED_SERVER), "tls": ("tls_client.py", "tls_server.py")}


@dataclass(frozen=True)
class TlsContract:
    """The TLS lab's part of vpnsim.toml (see the module's docstring)."""

    server_name: str = "vpnlabserver.com"
    port: int = 4433
    certificates: str = "issued"  # or "own"
    ca: str = "ca.crt"
    cert: str = "server.crt"
    key: str = "server.key"
    users: str = "shadow"


@dataclass(frozen=True)
class Submission:
    path: Path  # the folder, resolved
    client: tuple[str, ...] = ()
    server: tuple[str, ...] = ()
    build: tuple[str, ...] = ()
    lab: str = "tunnel"
    problem: str = ""  # why it cannot be graded, or ""
    tls: TlsContract = TlsContract()

    @property
    def name(self) -> str:
        return self.path.name


def seed_command(script: str) -> tuple[str, ...]:
    return ("python3", "-u", script)


def load_submission(folder: Path, lab: str = "tunnel") -> Submission:
    """The submission in `folder`, graded for `lab`; a problem with it is recorded, never
    raised."""
    path = folder.resolve()
    if not path.is_dir():
        return Submission(path, lab=lab, problem=f"{folder}: not a folder")
    config = path / CONFIG
    if config.is_file():
        return _from_config(path, config, lab)
    client_script, server_script = SCRIPTS[lab]
    missing = [name for name in (client_script, server_script) if not (path / name).is_file()]
    if missing:
        return Submission(
            path,
            lab=lab,
            problem=f"no {' and no '.join(missing)} in {path.name}/ (and no {CONFIG} "
            "naming what to run)",
        )
    return Submission(path, seed_command(client_script), seed_command(server_script), lab=lab)


def _tls_contract(data: dict[str, object], where: Callable[[str], str]) -> TlsContract | str:
    """The TLS keys of vpnsim.toml, or the problem with one of them."""
    values: dict[str, object] = {}
    for key in TLS_KEYS:
        if key not in data:
            continue
        value = data[key]
        if key == "port":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
                return f"{where(key)}: port: expected a TCP port number, got {value!r}"
        elif key == "certificates":
            if value not in ("issued", "own"):
                return f'{where(key)}: certificates: "issued" or "own", got {value!r}'
        elif not isinstance(value, str) or not value.strip():
            return f"{where(key)}: {key}: expected a string"
        elif key != "server_name" and (value.startswith("/") or ".." in Path(value).parts):
            return f"{where(key)}: {key}: a path inside the submission's folder, got {value!r}"
        values[key] = value
    return TlsContract(**values)  # type: ignore[arg-type]


def _from_config(path: Path, config: Path, wanted: str = "tunnel") -> Submission:
    try:
        text = config.read_text()
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        return Submission(path, lab=wanted, problem=f"{config}: cannot read: {exc}")
    except tomllib.TOMLDecodeError as exc:
        return Submission(path, lab=wanted, problem=f"{config}: {exc}")
    lines = key_lines(text)

    def where(key: str) -> str:
        line = line_of(lines, (key,))
        return f"{config}:{line}" if line is not None else str(config)

    lab = data.get("lab", wanted)
    known = KEYS + TLS_KEYS if lab == "tls" else KEYS
    for key in data:
        if key not in known:
            return Submission(
                path,
                lab=wanted,
                problem=f"{where(key)}: {key}: unknown key (known: {', '.join(known)})",
            )
    commands: dict[str, tuple[str, ...]] = {}
    for key in ("client", "server", "build"):
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            return Submission(
                path, lab=wanted, problem=f"{where(key)}: {key}: expected a command string"
            )
        try:
            commands[key] = tuple(shlex.split(value))
        except ValueError as exc:
            return Submission(path, lab=wanted, problem=f"{where(key)}: {key}: {exc}")
    if lab not in LABS:
        return Submission(
            path,
            lab=wanted,
            problem=f"{where('lab')}: lab: {lab!r} cannot be graded (known: {', '.join(LABS)})",
        )
    if lab != wanted:
        return Submission(
            path,
            lab=wanted,
            problem=f"{where('lab')}: it is for the {lab} lab; this grading is for the "
            f"{wanted} lab (vpnsim grade --lab {lab})",
        )
    tls = _tls_contract(data, where) if lab == "tls" else TlsContract()
    if isinstance(tls, str):
        return Submission(path, lab=lab, problem=tls)
    client_script, server_script = SCRIPTS[lab]
    client = commands.get("client") or _default(path, client_script)
    server = commands.get("server") or _default(path, server_script)
    for side, argv, script in (
        ("client", client, client_script),
        ("server", server, server_script),
    ):
        if not argv:
            return Submission(
                path,
                lab=lab,
                problem=f"{config}: no {side} command and no {script} in {path.name}/",
            )
    return Submission(path, client, server, commands.get("build", ()), lab, tls=tls)


def _default(path: Path, script: str) -> tuple[str, ...]:
    return seed_command(script) if (path / script).is_file() else ()
