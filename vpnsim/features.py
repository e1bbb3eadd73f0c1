"""What this machine's kernel and privileges allow, for report headers and fallbacks."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path


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
