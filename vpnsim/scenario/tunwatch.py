"""Which TUN/TAP devices appear in a namespace while something runs: link notifications
from the kernel, so a device that comes up and goes again at once is seen too."""

from __future__ import annotations

import select
from types import TracebackType

from vpnsim.net import namespace


class TunWatch:
    """`with TunWatch(ns) as watch: ...; watch.appeared()` -> names of TUN/TAP devices the
    kernel announced in `ns` since the block began."""

    def __init__(self, ns: str) -> None:
        from pyroute2 import IPRoute
        from pyroute2.netlink.rtnl import RTMGRP_LINK

        with namespace.entered(ns):  # the socket stays in the namespace it was made in
            self._ipr = IPRoute()
        self._ipr.bind(groups=RTMGRP_LINK)
        self._seen: list[str] = []

    def __enter__(self) -> TunWatch:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._ipr.close()

    def appeared(self) -> list[str]:
        """TUN/TAP devices announced so far (new ones, or old ones changing), in order."""
        fd = self._ipr.fileno()
        while select.select([fd], [], [], 0)[0]:
            for message in self._ipr.get():
                if message["event"] != "RTM_NEWLINK":
                    continue
                info = message.get_attr("IFLA_LINKINFO")
                name = message.get_attr("IFLA_IFNAME")
                is_tun = info is not None and info.get_attr("IFLA_INFO_KIND") == "tun"
                if is_tun and name not in self._seen:
                    self._seen.append(name)
        return list(self._seen)
