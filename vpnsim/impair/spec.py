"""What an impairment is: pure, validated data that prints as Python and as a command line.

An `Impairment` applies to the packets crossing one link, in one direction or both ("out" is
what the host sends, "in" what it receives). Its random parts draw from a generator seeded by
`seed` and the direction, so the same seed and the same traffic give the same fates; its
`events` name single packets ("drop packet 3", "duplicate 5"), counted from 1 among the
impairable packets of a direction (IP packets; ARP, IGMP and neighbour discovery pass untouched).
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass, fields
from typing import Any, Literal

from vpnsim.errors import UsageError

Direction = Literal["out", "in"]
DIRECTIONS: tuple[Direction, ...] = ("out", "in")
Applies = Literal["both", "out", "in"]
Action = Literal["drop", "dup", "corrupt", "reorder", "delay"]
ACTIONS: tuple[Action, ...] = ("drop", "dup", "corrupt", "reorder", "delay")

RATE_UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9}
MAX_DELAY_MS = 10_000.0


class ShortRepr:
    """Printed by its own short `__repr__`, also by Hypothesis' pretty printer (which would
    otherwise list every dataclass field, defaults included, in a falsifying example)."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


class ImpairmentError(UsageError):
    """An impairment that cannot be applied; the message names the field."""


@dataclass(frozen=True)
class GilbertElliott(ShortRepr):
    """Bursty loss: a good and a bad state; `p` is the chance per packet of going bad,
    `r` of going good again (mean burst length 1/r); each state has its own loss chance."""

    p: float
    r: float
    loss_bad: float = 1.0
    loss_good: float = 0.0

    def __repr__(self) -> str:
        extra = "" if (self.loss_bad, self.loss_good) == (1.0, 0.0) else (
            f", loss_bad={self.loss_bad}, loss_good={self.loss_good}"
        )  # fmt: skip
        return f"GilbertElliott(p={self.p}, r={self.r}{extra})"

    def mean_loss(self) -> float:
        """The long-run loss rate: time in the bad state is p / (p + r)."""
        if self.p + self.r == 0:
            return self.loss_good
        bad = self.p / (self.p + self.r)
        return bad * self.loss_bad + (1 - bad) * self.loss_good


@dataclass(frozen=True)
class Event(ShortRepr):
    """One packet's fate, named: the `packet`-th impairable packet of a direction."""

    packet: int
    action: Action
    value: int = 0  # corrupt: byte offset in the IP packet; delay: milliseconds
    direction: Applies = "both"

    def __repr__(self) -> str:
        extra = f", value={self.value}" if self.value else ""
        where = f", direction={self.direction!r}" if self.direction != "both" else ""
        return f"Event({self.packet}, {self.action!r}{extra}{where})"

    def text(self) -> str:
        """The command-line form: `3:drop`, `5:corrupt=40`, `2:delay=30@out`."""
        value = f"={self.value}" if self.value else ""
        where = f"@{self.direction}" if self.direction != "both" else ""
        return f"{self.packet}:{self.action}{value}{where}"


_EVENT_RE = re.compile(r"^(\d+):([a-z]+)(?:=(\d+))?(?:@(out|in|both))?$")


def parse_events(text: str) -> tuple[Event, ...]:
    """`3:drop,7:drop,5:dup` (see `Event.text`) -> events; a bad item is a clear error."""
    events = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        match = _EVENT_RE.match(item)
        if match is None or match.group(2) not in ACTIONS:
            raise ImpairmentError(
                f"schedule item {item!r}: expected PACKET:ACTION[=VALUE][@out|in], "
                f"ACTION one of {', '.join(ACTIONS)} (e.g. 3:drop,5:dup,7:corrupt=40)"
            )
        packet, action, value, direction = match.groups()
        events.append(Event(int(packet), action, int(value or 0), direction or "both"))  # type: ignore[arg-type]
    return tuple(events)


def parse_rate(text: str) -> int:
    """`10mbit`, `512kbit`, `1000000` (bit/s) -> bits per second."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if match is None or (unit and unit not in RATE_UNITS):
        raise ImpairmentError(
            f"rate {text!r}: expected a number with an optional unit "
            f"({', '.join(RATE_UNITS)}), e.g. 10mbit"
        )
    return round(float(match.group(1)) * RATE_UNITS[unit or "bit"])


def format_rate(bps: int) -> str:
    for unit in ("gbit", "mbit", "kbit"):
        if bps % RATE_UNITS[unit] == 0:
            return f"{bps // RATE_UNITS[unit]}{unit}"
    return f"{bps}bit"


@dataclass(frozen=True)
class Impairment(ShortRepr):
    """The impairment of one link. The default value impairs nothing (a clean wire)."""

    seed: int = 0
    loss: float = 0.0
    burst: GilbertElliott | None = None  # bursty loss, instead of `loss`
    dup: float = 0.0
    reorder: float = 0.0  # chance a packet is held back to go after the next one
    corrupt: float = 0.0  # chance one byte of the IP packet is flipped
    corrupt_bytes: tuple[int, int] | None = None  # [start, end) offsets allowed; None: any
    fix_checksums: bool = False  # recompute IP, UDP, TCP and ICMP checksums after corrupting
    delay_ms: float = 0.0
    jitter_ms: float = 0.0  # uniform in [-jitter, +jitter] around delay_ms (reorders)
    rate: int | None = None  # bits per second
    mtu: int | None = None  # IP packets longer than this are dropped
    events: tuple[Event, ...] = ()
    direction: Applies = "both"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def probability(name: str, value: float) -> None:
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not (number and 0.0 <= value <= 1.0):
                raise ImpairmentError(f"{name}: expected a probability from 0 to 1, got {value!r}")

        for name in ("loss", "dup", "reorder", "corrupt"):
            probability(name, getattr(self, name))
        if self.burst is not None:
            if not isinstance(self.burst, GilbertElliott):
                raise ImpairmentError(f"burst: expected a GilbertElliott, got {self.burst!r}")
            if self.loss:
                raise ImpairmentError("loss and burst: give one loss model, not both")
            for name in ("p", "r", "loss_bad", "loss_good"):
                probability(f"burst.{name}", getattr(self.burst, name))
        if not (isinstance(self.seed, int) and 0 <= self.seed < 2**64):
            raise ImpairmentError(f"seed: expected an integer from 0 to 2**64-1, got {self.seed!r}")
        for name in ("delay_ms", "jitter_ms"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 <= value <= MAX_DELAY_MS):
                raise ImpairmentError(
                    f"{name}: expected milliseconds from 0 to {MAX_DELAY_MS:g}, got {value!r}"
                )
        if self.rate is not None and not (isinstance(self.rate, int) and self.rate >= 8_000):
            raise ImpairmentError(f"rate: expected at least 8000 bit/s, got {self.rate!r}")
        if self.mtu is not None and not (isinstance(self.mtu, int) and 68 <= self.mtu <= 65535):
            raise ImpairmentError(f"mtu: expected 68 to 65535 bytes, got {self.mtu!r}")
        if self.corrupt_bytes is not None:
            bounds = self.corrupt_bytes
            pair = isinstance(bounds, tuple) and len(bounds) == 2
            pair = pair and all(type(b) is int for b in bounds)
            if not (pair and 0 <= bounds[0] < bounds[1] <= 65535):
                raise ImpairmentError(
                    f"corrupt_bytes: expected [start, end) with 0 <= start < end, "
                    f"got {self.corrupt_bytes!r}"
                )
        if self.direction not in ("both", "out", "in"):
            raise ImpairmentError(f"direction: expected both, out or in, got {self.direction!r}")
        for event in self.events:
            if event.packet < 1 or event.action not in ACTIONS or event.value < 0:
                raise ImpairmentError(
                    f"events: {event!r}: packets count from 1; actions: {', '.join(ACTIONS)}"
                )
            if event.action == "delay" and event.value > MAX_DELAY_MS:
                raise ImpairmentError(f"events: {event!r}: at most {MAX_DELAY_MS:g} ms")
            if self.direction != "both" and event.direction not in ("both", self.direction):
                raise ImpairmentError(
                    f"events: {event.text()} is for {event.direction}, but the impairment "
                    f"applies to {self.direction} only"
                )

    def applies_to(self, direction: Direction) -> bool:
        return self.direction in ("both", direction)

    @property
    def clean(self) -> bool:
        """Impairs nothing: the wire only forwards."""
        return self.without_seed() == Impairment()

    def without_seed(self) -> Impairment:
        return Impairment(**{**self._fields(), "seed": 0})

    def _fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __repr__(self) -> str:
        """Only what differs from a clean wire, so a failing example prints in one line."""
        changed = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != f.default
        ]
        return f"Impairment({', '.join(changed)})"

    def to_dict(self) -> dict[str, Any]:
        """JSON- and TOML-ready: defaults left out, events as `Event.text()` strings."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value == f.default:
                continue
            if f.name == "burst":
                value = {k.name: getattr(value, k.name) for k in fields(GilbertElliott)}
            elif f.name == "events":
                value = [event.text() for event in value]
            elif f.name == "corrupt_bytes":
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Impairment:
        """The inverse of `to_dict`; unknown keys and bad values are ImpairmentErrors."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ImpairmentError(
                f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        values = dict(data)
        if isinstance(values.get("burst"), dict):
            try:
                values["burst"] = GilbertElliott(**values["burst"])
            except TypeError as exc:
                raise ImpairmentError(f"burst: {exc}") from None
        if "events" in values:
            items = values["events"]
            if isinstance(items, str):
                items = [items]
            values["events"] = parse_events(",".join(str(item) for item in items))
        if isinstance(values.get("rate"), str):
            values["rate"] = parse_rate(values["rate"])
        if isinstance(values.get("corrupt_bytes"), list | tuple):
            values["corrupt_bytes"] = tuple(values["corrupt_bytes"])
        return cls(**values)

    @classmethod
    def from_cli(cls, args: argparse.Namespace) -> Impairment | None:
        """What the `add_cli_flags` flags ask for, the inverse of `cli_args`; None when no
        impairment flag is given (`--seed` alone sets nothing)."""
        burst = None
        if args.burst:
            try:
                burst = GilbertElliott(*(float(x) for x in args.burst.split(",")))
            except (TypeError, ValueError):
                raise ImpairmentError(
                    f"--burst {args.burst!r}: expected P,R[,LOSS_BAD[,LOSS_GOOD]]"
                ) from None
        corrupt_bytes = None
        if args.corrupt_bytes:
            start, _, end = args.corrupt_bytes.partition("-")
            if not (start.isdigit() and end.isdigit()):
                raise ImpairmentError(f"--corrupt-bytes {args.corrupt_bytes!r}: expected A-B")
            corrupt_bytes = (int(start), int(end) + 1)  # the flag's A-B is inclusive
        impairment = cls(
            seed=args.seed,
            loss=args.loss,
            burst=burst,
            dup=args.dup,
            reorder=args.reorder,
            corrupt=args.corrupt,
            corrupt_bytes=corrupt_bytes,
            fix_checksums=args.fix_checksums,
            delay_ms=args.delay,
            jitter_ms=args.jitter,
            rate=parse_rate(args.rate) if args.rate else None,
            mtu=args.mtu,
            events=parse_events(args.schedule) if args.schedule else (),
            direction=args.direction,
        )
        return None if impairment == cls(seed=args.seed) else impairment

    def cli_args(self) -> list[str]:
        """The `vpnsim lab impair NAME LINK ...` flags that set exactly this impairment."""
        args = ["--seed", str(self.seed)]

        def number(value: float) -> str:
            short = f"{value:g}"  # exact when it parses back, else the shortest exact form
            return short if math.isnan(value) or float(short) == value else repr(float(value))

        for name, flag in (
            ("loss", "--loss"),
            ("dup", "--dup"),
            ("reorder", "--reorder"),
            ("corrupt", "--corrupt"),
            ("delay_ms", "--delay"),
            ("jitter_ms", "--jitter"),
        ):
            if getattr(self, name):
                args += [flag, number(getattr(self, name))]
        if self.burst is not None:
            b = self.burst
            args += ["--burst", ",".join(number(v) for v in (b.p, b.r, b.loss_bad, b.loss_good))]
        if self.corrupt_bytes is not None:  # the flag's A-B is inclusive, the field's end is not
            args += ["--corrupt-bytes", f"{self.corrupt_bytes[0]}-{self.corrupt_bytes[1] - 1}"]
        if self.fix_checksums:
            args.append("--fix-checksums")
        if self.rate is not None:
            args += ["--rate", format_rate(self.rate)]
        if self.mtu is not None:
            args += ["--mtu", str(self.mtu)]
        if self.events:
            args += ["--schedule", ",".join(event.text() for event in self.events)]
        if self.direction != "both":
            args += ["--direction", self.direction]
        return args

    def describe(self) -> str:
        """One line for people: `loss 30%, delay 10±2 ms (seed 7, both directions)`."""
        where = "both directions" if self.direction == "both" else f"{self.direction} only"
        return f"{self.summary()} (seed {self.seed}, {where})"

    def summary(self) -> str:
        """What is impaired, without seed and direction: `loss 30%, delay 10±2 ms`."""
        parts = []
        if self.loss:
            parts.append(f"loss {self.loss * 100:.3g}%")
        if self.burst is not None:
            parts.append(f"burst loss {self.burst!r} (mean {self.burst.mean_loss() * 100:.3g}%)")
        for name, label in (("dup", "dup"), ("reorder", "reorder"), ("corrupt", "corrupt")):
            value = getattr(self, name)
            if value:
                parts.append(f"{label} {value * 100:.3g}%")
        if self.corrupt_bytes is not None:
            parts.append(f"corrupting bytes {self.corrupt_bytes[0]}-{self.corrupt_bytes[1] - 1}")
        if self.fix_checksums:
            parts.append("checksums fixed after corruption")
        if self.delay_ms or self.jitter_ms:
            jitter = f"±{self.jitter_ms:g}" if self.jitter_ms else ""
            parts.append(f"delay {self.delay_ms:g}{jitter} ms")
        if self.rate is not None:
            parts.append(f"rate {format_rate(self.rate)}")
        if self.mtu is not None:
            parts.append(f"mtu {self.mtu}")
        if self.events:
            parts.append("schedule " + ",".join(event.text() for event in self.events))
        return ", ".join(parts) or "clean (forwarding only)"


@dataclass(frozen=True)
class Fate:
    """What happens to one packet on the wire."""

    drop: str | None = None  # why it is dropped: loss, burst, event, oversize
    copies: int = 1
    delay_ms: float = 0.0
    reorder: bool = False  # held back until the next packet of its direction has gone
    corrupt_at: int | None = None  # byte offset in the IP packet
    xor: int = 0

    @property
    def delivered(self) -> bool:
        return self.drop is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "drop": self.drop,
            "copies": self.copies,
            "delay_ms": self.delay_ms,
            "reorder": self.reorder,
            "corrupt_at": self.corrupt_at,
            "xor": self.xor,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fate:
        return cls(
            drop=data["drop"],
            copies=data["copies"],
            delay_ms=data["delay_ms"],
            reorder=data["reorder"],
            corrupt_at=data["corrupt_at"],
            xor=data["xor"],
        )


def add_cli_flags(parser: argparse.ArgumentParser) -> None:
    """The flags `Impairment.from_cli` reads and `Impairment.cli_args` writes."""
    parser.add_argument("--seed", type=int, default=0, help="seed of the packet fates")
    parser.add_argument("--loss", type=float, default=0.0, metavar="P", help="loss chance")
    parser.add_argument(
        "--burst", metavar="P,R[,LB[,LG]]", help="Gilbert-Elliott loss instead of --loss"
    )
    parser.add_argument("--delay", type=float, default=0.0, metavar="MS", help="added delay")
    parser.add_argument(
        "--jitter", type=float, default=0.0, metavar="MS", help="delay +- MS, uniform (reorders)"
    )
    parser.add_argument("--dup", type=float, default=0.0, metavar="P", help="duplicate chance")
    parser.add_argument(
        "--reorder", type=float, default=0.0, metavar="P",
        help="chance a packet is held back to go after the next one",
    )  # fmt: skip
    parser.add_argument("--corrupt", type=float, default=0.0, metavar="P", help="corrupt chance")
    parser.add_argument(
        "--corrupt-bytes", metavar="A-B", help="corrupt only bytes A..B of the IP packet"
    )
    parser.add_argument(
        "--fix-checksums", action="store_true", help="recompute checksums after corrupting"
    )
    parser.add_argument("--rate", help="e.g. 10mbit, 512kbit")
    parser.add_argument("--mtu", type=int, help="drop IP packets longer than this")
    parser.add_argument(
        "--schedule", metavar="EVENTS", help="named packets, e.g. 3:drop,7:drop,5:dup"
    )
    parser.add_argument(
        "--direction", choices=("both", "out", "in"), default="both",
        help="out: packets the host sends on the link; in: packets it receives (default both)",
    )  # fmt: skip
