"""What this machine's kernel and privileges allow, for report headers and fallbacks."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from vpnsim.errors import HarnessError


@dataclass(frozen=True)
class Features:
    root: bool
    tun: bool
    netem: bool
    kernel: str

    def summary(self) -> str:
        def yes(flag: bool) -> str:
            return "yes" if flag else "no"

        netem = "yes" if self.netem else "no (impairment needs the userspace wire)"
        return (
            f"kernel {self.kernel}, root {yes(self.root)}, /dev/net/tun {yes(self.tun)}, "
            f"netem {netem}"
        )


def _module_available(name: str) -> bool:
    """Loaded, built in, or loadable from /lib/modules (no modprobe side effects)."""
    if Path(f"/sys/module/{name}").exists():
        return True
    release = os.uname().release
    for listing in ("modules.builtin", "modules.dep"):
        try:
            text = Path(f"/lib/modules/{release}/{listing}").read_text()
        except OSError:
            continue
        if f"/{name}.ko" in text:
            return True
    return False


@functools.cache
def probe() -> Features:
    return Features(
        root=os.geteuid() == 0,
        tun=os.path.exists("/dev/net/tun"),
        netem=_module_available("sch_netem"),
        kernel=os.uname().release,
    )


def preflight() -> None:
    """Fail early, with what to do, where a lab cannot be built at all."""
    if os.geteuid() != 0:
        raise HarnessError(
            "vpnsim needs root to create network namespaces: run it with sudo "
            "(e.g. `sudo vpnsim lab up` or `sudo nox`)"
        )
    if not os.path.exists("/dev/net/tun"):
        raise HarnessError(
            "/dev/net/tun is missing: load the tun module (`modprobe tun`) or, in a "
            "container, pass the device through (--device /dev/net/tun)"
        )
