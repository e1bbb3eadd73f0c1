"""What VPN implementation to run: the reference tunnel (plain, or one of its variants), a SEED
submission folder, or commands.

Pure data, no kernel access: the CLI and the pytest plugin parse `--vpn-impl` with this before
anything heavy is imported (`vpnsim.vpn` runs an implementation in a lab, and writes the PSK
file an AEAD variant names).
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
# In a variant's flags: the path of the running tunnel's PSK file (`vpn.write_psk` makes one).
PSK_FILE = "{psk}"
AEAD_FLAGS = ("--wire", "aead", "--psk-file", PSK_FILE)
# The reference tunnel's variants by name -> the flags both ends get (see
# `python -m vpnsim.tunnel --help`). `vpnsim bench tunnels` runs the same table as contenders.
REFERENCE_VARIANTS: dict[str, tuple[str, ...]] = {
    "reference": (),
    "reference-aead": AEAD_FLAGS,
    "reference-offload": ("--offload",),
    "reference-aead-offload": (*AEAD_FLAGS, "--offload"),
    "reference-gso": ("--gso",),
    "reference-aead-gso": (*AEAD_FLAGS, "--gso"),
}
ACCEPTED = (
    f"{', '.join(REFERENCE_VARIANTS)}, a folder with {SEED_CLIENT} and {SEED_SERVER}, "
    "or client=CMD / server=CMD"
)


class ImplementationError(UsageError):
    """A --vpn-impl value that cannot be understood: says which forms are accepted."""


@dataclass(frozen=True)
class TunnelImpl:
    """How to start each end: argv per side (None: the reference, built from the lab's spec,
    with `reference_flags` added: a variant's)."""

    label: str
    client_argv: tuple[str, ...] | None = None
    server_argv: tuple[str, ...] | None = None
    cwd: Path | None = None
    reference_flags: tuple[str, ...] = ()

    @property
    def is_reference(self) -> bool:
        return self.client_argv is None and self.server_argv is None

    @property
    def needs_psk(self) -> bool:
        """A reference end runs in AEAD mode: the tunnel needs a PSK file of its own."""
        return PSK_FILE in self.reference_flags and (
            self.client_argv is None or self.server_argv is None
        )

    @property
    def client_speaks_first(self) -> bool:
        """The reference client sends at once (an AEAD handshake), not only when traffic
        comes: it must start once the lab is whole and the server listens."""
        return self.client_argv is None and "aead" in self.reference_flags

    def check_tunnel(self, spec: TunnelSpec | None, scenario: str | None = None) -> None:
        """ImplementationError if this cannot run `spec` (of `scenario`, named to the user):
        front ends call it before they build a lab, `argv` again as an end starts."""
        if spec is not None and self.reference_flags and spec.mode != "tun":
            which = f"scenario {scenario}'s tunnel" if scenario else "this scenario's tunnel"
            raise ImplementationError(
                f"--vpn-impl {self.label}: the reference's AEAD, offload and GSO modes are TUN "
                f"only, and {which} is mode {spec.mode!r}"
            )

    def argv(self, side: str, spec: TunnelSpec, psk_file: Path | None = None) -> tuple[str, ...]:
        """The command of `side`; `psk_file` is the tunnel's PSK (required by `needs_psk`)."""
        given = self.client_argv if side == "client" else self.server_argv
        if given is not None:
            return given
        self.check_tunnel(spec)
        if PSK_FILE in self.reference_flags and psk_file is None:
            raise ValueError(f"{self.label}: the tunnel's PSK file is needed to start it")
        flags = tuple(str(psk_file) if f == PSK_FILE else f for f in self.reference_flags)
        return (*reference_argv(side, spec), *flags)

    @classmethod
    def parse(cls, values: list[str]) -> TunnelImpl:
        """Accepts `reference` or one of its variants (REFERENCE_VARIANTS); a folder with the
        SEED lab's tun_client.py and tun_server.py; or `client=CMD` and/or `server=CMD` (the
        other side stays the plain reference)."""
        if not values:
            return REFERENCE
        if len(values) == 1 and values[0] in VARIANTS:
            return VARIANTS[values[0]]
        if len(values) == 1 and "=" not in values[0]:
            folder = Path(values[0]).resolve()
            missing = [n for n in (SEED_CLIENT, SEED_SERVER) if not (folder / n).is_file()]
            if not folder.is_dir() or missing:
                raise ImplementationError(f"--vpn-impl {values[0]}: expected {ACCEPTED}")
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
                    f"--vpn-impl {value!r}: with several values, each is client=CMD or "
                    f"server=CMD; one value alone is {ACCEPTED}"
                )
            sides[side] = tuple(shlex.split(command))
        return cls(
            label=" ".join(f"{k}={shlex.join(v)}" for k, v in sides.items()),
            client_argv=sides.get("client"),
            server_argv=sides.get("server"),
        )


VARIANTS = {
    name: TunnelImpl(label=name, reference_flags=flags)
    for name, flags in REFERENCE_VARIANTS.items()
}
REFERENCE = VARIANTS["reference"]


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
