"""Offloads of a link, through pyroute2's ethtool: off where a userspace wire sits.

A wire must see each frame as it crosses a real cable: one packet of at most the MTU with its
checksums filled in. With a veth's default offloads the kernel hands over 64 kB TCP
super-packets and packets whose checksum is left for "the hardware" to fill.
"""

from __future__ import annotations

from vpnsim.net import namespace

OFFLOAD_PREFIXES = ("tx-checksum", "tx-scatter-gather", "tx-gso", "rx-gro", "rx-lro")


def _is_offload(name: str) -> bool:
    return name.startswith(OFFLOAD_PREFIXES) or name.endswith("-segmentation")


def set_offloads(ns: str, ifname: str, enable: bool, names: list[str] | None = None) -> list[str]:
    """Switch the offloads of `ifname` (all of them, or `names`); returns those changed."""
    from pyroute2.ethtool import Ethtool

    with namespace.entered(ns):  # its sockets belong to the namespace they are made in
        ethtool = Ethtool()
    try:
        found = ethtool.get_features(ifname)
        changed = []
        for name, feature in found.features.items():
            wanted = _is_offload(name) if names is None else name in names
            if wanted and feature.available and feature.enable != enable:
                feature.enable = enable
                changed.append(name)
        if changed:
            ethtool.set_features(ifname, found)
        return changed
    finally:
        ethtool.close()
