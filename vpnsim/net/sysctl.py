"""Per-namespace sysctls, read and written through /proc/sys from inside the namespace.

/proc/sys/net resolves against the calling thread's network namespace, so entering the
namespace (per thread) is enough; no `ip netns exec sysctl` child is needed.
"""

from __future__ import annotations

from pathlib import Path

from vpnsim.errors import HarnessError
from vpnsim.net.namespace import entered


class SysctlError(HarnessError):
    """A sysctl key does not exist or cannot be written in a namespace."""


def _path(key: str) -> Path:
    if not key.startswith("net.") or ".." in key:
        raise SysctlError(f"sysctl {key!r}: only net.* keys are per namespace")
    return Path("/proc/sys") / key.replace(".", "/")


def set_sysctls(ns: str, values: dict[str, str]) -> None:
    """Write each `key = value` in namespace `ns`, in order (disable_ipv6 must precede links)."""
    with entered(ns):
        for key, value in values.items():
            try:
                _path(key).write_text(f"{value}\n")
            except OSError as exc:
                raise SysctlError(f"cannot set {key}={value} in {ns}: {exc.strerror}") from exc


def get_sysctl(ns: str, key: str) -> str:
    with entered(ns):
        try:
            return _path(key).read_text().strip()
        except OSError as exc:
            raise SysctlError(f"cannot read {key} in {ns}: {exc.strerror}") from exc
