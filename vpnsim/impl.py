"""What VPN implementation to run: the reference tunnel, a SEED submission folder, or commands.

Pure data, no kernel access: the CLI and the pytest plugin parse `--vpn-impl` with this before
anything heavy is imported (`vpnsim.vpn` runs an implementation in a lab).
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from vpnsim.errors import UsageError
from vpnsim.model import TunnelSpec

SEED_CLIENT = "tun_client.py"
SEED_SERVER = "tun_server.py"


class ImplementationError(UsageError):
    """A --vpn-impl value that cannot be understood: says which forms are accepted."""


@dataclass(frozen=True)
class TunnelImpl:
    """How to start each end: argv per side (None: the reference, built from the lab's spec)."""

    label: str
    client_argv: tuple[str, ...] | None = None
    server_argv: tuple[str, ...] | None = None
    cwd: Path | None = None

    @property
    def is_reference(self) -> bool:
        return self.client_argv is None and self.server_argv is None

    def argv(self, side: str, spec: TunnelSpec) -> tuple[str, ...]:
        given = self.client_argv if side == "client" else self.server_argv
        return given if given is not None else reference_argv(side, spec)

    @classmethod
    def parse(cls, values: list[str]) -> TunnelImpl:
        """Accepts `reference`; a folder with the SEED lab's tun_client.py and tun_server.py;
        or `client=CMD` and/or `server=CMD` (the other side stays the reference)."""
        if not values or values == ["reference"]:
            return REFERENCE
        if len(values) == 1 and "=" not in values[0]:
            folder = Path(values[0]).resolve()
            missing = [n for n in (SEED_CLIENT, SEED_SERVER) if not (folder / n).is_file()]
            if not folder.is_dir() or missing:
                raise ImplementationError(
                    f"--vpn-impl {values[0]}: expected 'reference', a folder with "
                    f"{SEED_CLIENT} and {SEED_SERVER}, or client=CMD / server=CMD"
                )
            python = ("python3", "-u")
            return cls(
                label=str(folder),
                client_argv=(*python, str(folder / SEED_CLIENT)),
                server_argv=(*python, str(folder / SEED_SERVER)),
                cwd=folder,
            )
        sides: dict[str, tuple[str, ...]] = {}
        for value in values:
            side, sep, command = value.partition("=")
            if not sep or side not in ("client", "server") or not command.strip():
                raise ImplementationError(
                    f"--vpn-impl {value!r}: expected client=CMD or server=CMD"
                )
            sides[side] = tuple(shlex.split(command))
        return cls(
            label=" ".join(f"{k}={shlex.join(v)}" for k, v in sides.items()),
            client_argv=sides.get("client"),
            server_argv=sides.get("server"),
        )


REFERENCE = TunnelImpl(label="reference")


def reference_argv(side: str, spec: TunnelSpec) -> tuple[str, ...]:
    base = [sys.executable, "-m", "vpnsim.tunnel", side, "--port", str(spec.port)]
    if spec.mode != "tun":
        base += ["--mode", spec.mode]
    if side == "server":
        addresses, routes = (spec.server_tun, spec.server_tun6), spec.server_routes
        peer = (spec.client_tun, spec.client_tun6)
    else:
        base += ["--server", spec.server_address]
        addresses, routes = (spec.client_tun, spec.client_tun6), spec.client_routes
        peer = (spec.server_tun, spec.server_tun6)
    base += [arg for cidr in addresses if cidr for arg in ("--tun-address", cidr)]
    base += [arg for dst in routes for arg in ("--route", dst)]
    if spec.mode == "tap" and routes:
        # A TAP's kernel ARPs for the next hop: via the peer's TAP address, else it asks for V.
        base += [arg for cidr in peer if cidr for arg in ("--gateway", cidr.split("/")[0])]
    return tuple(base)
