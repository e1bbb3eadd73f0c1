"""A man in the middle's redirect: nftables in one host, through pyroute2's nfnetlink.

`redirected(ns, address, port)` adds, for as long as the block runs, the equivalent of

    table ip vpnsim_mitm { chain prerouting { type nat hook prerouting priority -100;
        meta l4proto tcp ip daddr ADDRESS tcp dport PORT redirect } }

so new TCP connections to ADDRESS:PORT that reach the host are handed to its own server on
PORT (established ones are not: NAT decides per connection). The table is removed after,
whatever happened. `NftablesMissing` says when the kernel has no nf_tables (or no NAT).
"""

from __future__ import annotations

import contextlib
import ipaddress
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from vpnsim.errors import HarnessError
from vpnsim.net import namespace

TABLE = "vpnsim_mitm"
CHAIN = "prerouting"
NFPROTO_IPV4 = 2
NFT_META_L4PROTO = 16
NFT_PAYLOAD_NETWORK_HEADER = 1
NFT_PAYLOAD_TRANSPORT_HEADER = 2
NF_IP_PRI_NAT_DST = -100
IPPROTO_TCP = 6


class NftablesMissing(HarnessError):
    """The kernel refused the nftables NAT table: it lacks nf_tables or nft_redir."""


def _expr(name: str, **data: Any) -> dict[str, Any]:
    attrs = [(f"NFTA_{name.upper()}_{key.upper()}", value) for key, value in data.items()]
    return {"attrs": [("NFTA_EXPR_NAME", name), ("NFTA_EXPR_DATA", {"attrs": attrs})]}


def _equals(value: bytes) -> dict[str, Any]:
    return _expr("cmp", sreg=1, op=0, data={"attrs": [("NFTA_DATA_VALUE", value)]})


def redirect_rule(address: str, port: int) -> list[dict[str, Any]]:
    """The rule's expressions: TCP, to `address`, to `port` -> this host's own `port`."""
    return [
        _expr("meta", key=NFT_META_L4PROTO, dreg=1),
        _equals(bytes([IPPROTO_TCP])),
        _expr("payload", dreg=1, base=NFT_PAYLOAD_NETWORK_HEADER, offset=16, len=4),
        _equals(ipaddress.IPv4Address(address).packed),
        _expr("payload", dreg=1, base=NFT_PAYLOAD_TRANSPORT_HEADER, offset=2, len=2),
        _equals(struct.pack("!H", port)),
        _expr("redir"),
    ]


@contextmanager
def redirected(ns: str, address: str, port: int) -> Iterator[None]:
    """Within the block, TCP connections to `address`:`port` arriving in `ns` go to `ns`'s
    own server on `port`."""
    from pyroute2.netlink.exceptions import NetlinkError
    from pyroute2.nftables.main import NFTables

    with namespace.entered(ns):  # the socket stays in the namespace it was made in
        nft = NFTables(nfgen_family=NFPROTO_IPV4)
    try:
        try:
            nft.table("add", name=TABLE)
            nft.chain(
                "add",
                table=TABLE,
                name=CHAIN,
                hook="prerouting",
                type="nat",
                priority=NF_IP_PRI_NAT_DST,
            )
            nft.rule("add", table=TABLE, chain=CHAIN, expressions=[redirect_rule(address, port)])
        except NetlinkError as exc:
            raise NftablesMissing(
                f"nftables in {ns}: the kernel refused a NAT redirect ({exc}); "
                "it needs nf_tables, nft_chain_nat and nft_redir"
            ) from None
        yield
    finally:
        with contextlib.suppress(NetlinkError):  # not made, if the kernel refused it
            nft.table("del", name=TABLE)
        nft.close()
