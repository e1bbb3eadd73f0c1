"""Where labs live on the machine: their namespaces' prefix and their state folders.

A leaf module (standard library only), so the modules that place files beside a lab (names,
pki) need not import the topology that builds it.
"""

from __future__ import annotations

import os
from pathlib import Path

NS_PREFIX = "vpnsim."
FABRIC = "_fabric"
STATE_ROOT = Path(os.environ.get("VPNSIM_STATE_DIR", "/run/vpnsim/labs"))
