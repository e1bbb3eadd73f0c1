"""The kernel's netem qdisc, where the kernel has it: random (unseeded) rates, no wire process.

netem's random numbers cannot be seeded, so its fates neither replay nor shrink; it acts on
the egress of the host's interface only ("out"). Use it for long soak runs at rates; use the
wire (the default) for anything a test must reproduce. On a kernel without sch_netem (this
project's CI machine among them) asking for it is a clear error, never a silent fallback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vpnsim import features
from vpnsim.errors import HarnessError
from vpnsim.impair.spec import Impairment

if TYPE_CHECKING:
    from vpnsim.topology import Lab

NETEM_MISSING = (
    "this kernel has no netem (module sch_netem): use the seeded wire, vpnsim's default "
    '(leave out --netem / backend = "netem"), which does the same per packet and replays'
)


def netem_options(impairment: Impairment) -> dict[str, Any]:
    """pyroute2's netem keywords for `impairment`; what netem cannot do is an error."""
    cannot = [
        name
        for name, value in (
            ("burst", impairment.burst),
            ("corrupt_bytes", impairment.corrupt_bytes),
            ("fix_checksums", impairment.fix_checksums),
            ("mtu", impairment.mtu),
            ("events", impairment.events),
        )
        if value
    ]
    if impairment.direction == "in":
        cannot.append("direction=in")
    if cannot:
        raise HarnessError(
            f"netem cannot do {', '.join(cannot)}: use the seeded wire (the default)"
        )
    options: dict[str, Any] = {
        "delay": round(impairment.delay_ms * 1000),  # microseconds
        "jitter": round(impairment.jitter_ms * 1000),
        "loss": impairment.loss * 100,  # percent
        "duplicate": impairment.dup * 100,
    }
    if impairment.reorder:
        options["prob_reorder"] = impairment.reorder * 100
    if impairment.corrupt:
        options["prob_corrupt"] = impairment.corrupt * 100
    if impairment.rate is not None:
        options["rate"] = f"{impairment.rate}bit"
    return options


def apply_netem(lab: Lab, link: str, impairment: Impairment) -> None:
    """Replace the root qdisc of the host's side of `link` with netem set to `impairment`."""
    from vpnsim.impair.link import parse_link

    host, ifname = parse_link(lab, link)
    if not features.probe().netem:
        raise HarnessError(NETEM_MISSING)
    options = netem_options(impairment)
    rtnl = lab.rtnl(host)
    index = rtnl.index_of(ifname)
    ipr = rtnl.raw  # pyroute2 IPRoute in the host's namespace
    try:
        ipr.tc("replace", "netem", index, handle="1:", **options)
    except Exception as exc:  # pyroute2 raises NetlinkError; the kernel may refuse the module
        raise HarnessError(f"{link}: netem: {exc}") from exc


def clear_netem(lab: Lab, link: str) -> None:
    from vpnsim.impair.link import parse_link

    host, ifname = parse_link(lab, link)
    rtnl = lab.rtnl(host)
    try:
        rtnl.raw.tc("del", index=rtnl.index_of(ifname), handle="1:", root=True)
    except Exception as exc:
        raise HarnessError(f"{link}: no netem to clear ({exc})") from exc
