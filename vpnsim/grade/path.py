"""The packet's path: where a task's probe was seen, hop by hop, out to V and back.

A pure data model, built from a traced ping (`checks.Trace.hops`) and kept in the JSON
report as each task's `path`, so that every writer draws the same thing: the HTML page as
a picture (`path_svg`), the terminal summary and the JUnit message as one line (`line`):

    U:tun0 ✓ → U:eth0 ✓ → server:eth0 ✓ → server:tun0 ✗

A hop is *seen* when the captures at that place held the probe as the tunnel carries it
(inside UDP to 10.9.0.11:9090 between U and the server, from the client's TUN address
between the server and V); *not seen* when they did not; *not looked at* when nothing
captured there (a TUN that never came up, or could not be watched). The first `required`
hops are what the task's check needs (task3 needs the request at the server's eth0; a round
trip needs all twelve); the rest are drawn too, as what happened beyond it. When the check
failed, `stop` is the hop where the packet stopped: the first needed hop not seen (or, when
every needed hop was seen but something there was wrong, such as an altered reply, the first
hop not seen after them, else the last needed one), and `reason` says why: the check's
diagnosis of the ping (`checks.judge`), which the grader replaces with the task's reason.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vpnsim.errors import UsageError

SEEN, NOT_SEEN, NOT_LOOKED_AT = "seen", "not seen", "not looked at"
STATES = (SEEN, NOT_SEEN, NOT_LOOKED_AT)
MARK = {SEEN: "✓", NOT_SEEN: "✗", NOT_LOOKED_AT: "?"}
LEGS = ("out", "back")
UNKNOWN_TUN = "TUN"  # a TUN whose name is not known: it never came up


class PathError(UsageError):
    """A `path` in a report that is not one: names what is wrong."""


@dataclass(frozen=True)
class Hop:
    point: str  # the capture point: "U-tun", "U-eth0", "server-eth0", ... (checks.POINTS)
    device: str  # its name in the lab: "eth0", or the program's own TUN name ("tun0")
    leg: str  # "out" (the request) or "back" (the reply)
    state: str  # SEEN, NOT_SEEN or NOT_LOOKED_AT

    @property
    def host(self) -> str:
        return self.point.split("-", 1)[0]

    @property
    def label(self) -> str:
        return f"{self.host}:{self.device}"

    @property
    def mark(self) -> str:
        return MARK[self.state]

    def to_dict(self) -> dict[str, str]:
        return {"host": self.host, "point": self.point, "device": self.device,
                "leg": self.leg, "state": self.state}  # fmt: skip


@dataclass(frozen=True)
class PacketPath:
    probe: str  # "64-byte ping from U to 192.168.60.5"
    hops: tuple[Hop, ...]  # out, then back
    required: int  # how many of the first hops the task's check needs
    stop: int | None = None  # index in `hops` where the packet stopped (None: it made it)
    reason: str = ""  # why it stopped there ("" when it did not)

    @property
    def stopped(self) -> Hop | None:
        return None if self.stop is None else self.hops[self.stop]

    def line(self) -> str:
        """The path as one line: the needed hops up to where it stopped, the turn at V as
        ↩; hops seen beyond a stop are named after it (the packet went another way)."""
        end = self.required if self.stop is None else self.stop + 1
        parts = []
        for i, hop in enumerate(self.hops[:end]):
            if i:
                parts.append(" ↩ " if hop.leg != self.hops[i - 1].leg else " → ")
            parts.append(f"{hop.label} {hop.mark}")
        text = "".join(parts)
        if self.stop is not None:
            later = [h for h in self.hops[self.stop + 1 :] if h.state == SEEN]
            if later:
                text += " (seen after it: " + ", ".join(_leg_label(h) for h in later) + ")"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "probe": self.probe,
            "hops": [hop.to_dict() for hop in self.hops],
            "required": self.required,
            "stop": self.stop,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Any) -> PacketPath:
        """A path read back from a report; PathError names what is wrong with it."""
        try:
            hops = tuple(
                Hop(str(h["point"]), str(h["device"]), str(h["leg"]), str(h["state"]))
                for h in data["hops"]
            )
            path = cls(
                probe=str(data["probe"]),
                hops=hops,
                required=int(data["required"]),
                stop=None if data.get("stop") is None else int(data["stop"]),
                reason=str(data.get("reason", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PathError(f"path: {exc!r}") from None
        for hop in hops:
            if hop.state not in STATES or hop.leg not in LEGS:
                raise PathError(f"path: hop {hop.label}: state {hop.state!r}, leg {hop.leg!r}")
        if not 0 <= path.required <= len(hops):
            raise PathError(f"path: required {path.required} of {len(hops)} hops")
        if path.stop is not None and not 0 <= path.stop < len(hops):
            raise PathError(f"path: stop {path.stop} of {len(hops)} hops")
        return path


def _leg_label(hop: Hop) -> str:
    return f"{hop.label} (reply)" if hop.leg == "back" else hop.label


def build_path(
    probe: str,
    hops: Sequence[tuple[str, str, bool]],
    required: int,
    problem: str | None,
    tun_names: Mapping[str, str | None],
    watched: Collection[str],
) -> PacketPath:
    """The path of one probe: `hops` as `checks.Trace.hops` gives them, the check's `problem`
    (None: it passed), each host's TUN name (None: unknown), and the TUN points that were
    captured (`"U-tun"`, `"server-tun"`); Ethernet points are always captured."""
    made = []
    for point, leg, seen in hops:
        host, _, device = point.partition("-")
        if device == "tun":
            device = tun_names.get(host) or UNKNOWN_TUN
            if point not in watched:
                made.append(Hop(point, device, leg, NOT_LOOKED_AT))
                continue
        made.append(Hop(point, device, leg, SEEN if seen else NOT_SEEN))
    stop = None if problem is None else _stop(made, required)
    return PacketPath(probe, tuple(made), required, stop, problem or "")


def _stop(hops: list[Hop], required: int) -> int:
    missing = [i for i, hop in enumerate(hops) if hop.state == NOT_SEEN]
    needed = [i for i in missing if i < required]
    if needed:
        return needed[0]
    return missing[0] if missing else max(required - 1, 0)
