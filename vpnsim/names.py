"""Host names inside a lab: a hosts file per host, mounted over /etc/hosts for its programs.

The TLS lab's client connects to the server by name (`vpnserver.lab`) and checks that name
against the certificate, so U must resolve it, and only U: the root namespace and the
other hosts are untouched. As `ip netns exec` does with /etc/netns/NAME/hosts, every program
vpnsim starts in a host (`proc.start`) runs in its own mount namespace, with the host's
file, if it has one, bind-mounted over /etc/hosts. The files live in the lab's state
folder, so tearing the lab down removes them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path

from vpnsim.errors import UsageError
from vpnsim.labstate import NS_PREFIX, STATE_ROOT

LOCALHOST = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9-]{1,63})*$")


class HostNameError(UsageError, ValueError):
    """A name or address that cannot go into a hosts file."""


def hosts_file(ns: str) -> Path:
    """Where the hosts file of namespace `ns` (`vpnsim.<lab>.<host>`) is kept."""

    lab, _, host = ns.removeprefix(NS_PREFIX).partition(".")
    return STATE_ROOT / lab / "hosts" / host


def write_hosts(ns: str, names: Mapping[str, str]) -> Path:
    """Give namespace `ns` a hosts file: localhost and `names` (name -> address). Programs
    started in it from now on resolve them; returns the file."""
    lines = [LOCALHOST]
    for name, address in names.items():
        if not HOST_NAME.match(name):
            raise HostNameError(f"host name {name!r}: letters, digits, '-' and '.' only")
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise HostNameError(f"address of {name!r}: {address!r} is not an IP address") from None
        lines.append(f"{ip}\t{name}\n")
    path = hosts_file(ns)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(lines))
    tmp.chmod(0o644)
    tmp.replace(path)
    return path


def hosts_mount(ns: str) -> bytes | None:
    """The file to mount over /etc/hosts for a program in `ns`, None if it has none."""
    path = hosts_file(ns)
    return bytes(path) if path.is_file() else None
