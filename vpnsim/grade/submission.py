"""A student's submission: a folder with the SEED lab's tun_client.py and tun_server.py, or
a vpnsim.toml naming what to run on each end.

    # vpnsim.toml (optional)
    client = "python3 -u vpn_client.py"     # run in the submission's folder on U
    server = "./vpnserver"                   # ... and on the VPN server
    build = "make"                           # run once before grading (optional)

A folder that cannot be graded (no client, a malformed vpnsim.toml) is still a submission:
`problem` says why, and every task fails with that reason. Nothing here runs student code.
"""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

from vpnsim.impl import SEED_CLIENT, SEED_SERVER
from vpnsim.scenario.lines import key_lines, line_of

CONFIG = "vpnsim.toml"
KEYS = ("client", "server", "build", "lab")
LABS = ("tunnel",)


@dataclass(frozen=True)
class Submission:
    path: Path  # the folder, resolved
    client: tuple[str, ...] = ()
    server: tuple[str, ...] = ()
    build: tuple[str, ...] = ()
    lab: str = "tunnel"
    problem: str = ""  # why it cannot be graded, or ""

    @property
    def name(self) -> str:
        return self.path.name


def seed_command(script: str) -> tuple[str, ...]:
    return ("python3", "-u", script)


def load_submission(folder: Path) -> Submission:
    """The submission in `folder`; a problem with it is recorded, never raised."""
    path = folder.resolve()
    if not path.is_dir():
        return Submission(path, problem=f"{folder}: not a folder")
    config = path / CONFIG
    if config.is_file():
        return _from_config(path, config)
    missing = [name for name in (SEED_CLIENT, SEED_SERVER) if not (path / name).is_file()]
    if missing:
        return Submission(
            path,
            problem=f"no {' and no '.join(missing)} in {path.name}/ (and no {CONFIG} "
            "naming what to run)",
        )
    return Submission(path, seed_command(SEED_CLIENT), seed_command(SEED_SERVER))


def _from_config(path: Path, config: Path) -> Submission:
    try:
        text = config.read_text()
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        return Submission(path, problem=f"{config}: cannot read: {exc}")
    except tomllib.TOMLDecodeError as exc:
        return Submission(path, problem=f"{config}: {exc}")
    lines = key_lines(text)

    def where(key: str) -> str:
        line = line_of(lines, (key,))
        return f"{config}:{line}" if line is not None else str(config)

    for key in data:
        if key not in KEYS:
            return Submission(
                path, problem=f"{where(key)}: {key}: unknown key (known: {', '.join(KEYS)})"
            )
    commands: dict[str, tuple[str, ...]] = {}
    for key in ("client", "server", "build"):
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            return Submission(path, problem=f"{where(key)}: {key}: expected a command string")
        try:
            commands[key] = tuple(shlex.split(value))
        except ValueError as exc:
            return Submission(path, problem=f"{where(key)}: {key}: {exc}")
    lab = data.get("lab", "tunnel")
    if lab not in LABS:
        return Submission(
            path,
            problem=f"{where('lab')}: lab: {lab!r} cannot be graded (known: {', '.join(LABS)})",
        )
    client = commands.get("client") or _default(path, SEED_CLIENT)
    server = commands.get("server") or _default(path, SEED_SERVER)
    for side, argv, script in (("client", client, SEED_CLIENT), ("server", server, SEED_SERVER)):
        if not argv:
            return Submission(
                path, problem=f"{config}: no {side} command and no {script} in {path.name}/"
            )
    return Submission(path, client, server, commands.get("build", ()), lab)


def _default(path: Path, script: str) -> tuple[str, ...]:
    return seed_command(script) if (path / script).is_file() else ()
