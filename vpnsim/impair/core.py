"""The wire's logic, sans-IO: frames in with a time, frames out with a time, counters and a log.

`WireCore.receive(direction, frame, now)` returns the frames to send at once; the rest wait in
a queue that `due(now)` empties and `next_deadline()` times. Fates come from one `Schedule`
per direction. Queueing follows netem's order: the rate limit serialises a packet, then the
delay (and jitter) is added; a reordered packet waits for the next packet of its direction and
goes right after it, or, if none comes within `HOLD_LIMIT` seconds, is released then as if it
had been received at that moment: the rate limit as of its release, then its own delay (and
jitter), and the queue limit, as for any other packet.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from vpnsim.impair import packet
from vpnsim.impair.schedule import Schedule
from vpnsim.impair.spec import DIRECTIONS, Direction, Fate, Impairment

HOLD_LIMIT = 0.05  # seconds a reordered packet waits for a successor
QUEUE_LIMIT = 1000  # frames waiting per direction, as netem's default limit
LOG_LIMIT = 100_000  # fate records kept (the newest)


@dataclass
class Counters:
    """One direction's counts since the impairment was set."""

    seen: int = 0  # impairable packets that reached the wire
    delivered: int = 0  # frames sent on, copies included
    dropped: int = 0  # lost: random loss, a burst, or a scheduled drop
    oversize: int = 0  # longer than the MTU clamp
    overflow: int = 0  # the queue was full
    duplicated: int = 0  # extra copies made
    corrupted: int = 0
    reordered: int = 0
    delayed: int = 0  # sent later than received: delay, jitter or the rate limit
    passed: int = 0  # not impairable (ARP, neighbour discovery): forwarded untouched
    send_errors: int = 0


@dataclass(frozen=True)
class LogEntry:
    direction: Direction
    position: int  # 1-based among the direction's impairable packets
    length: int  # of the IP packet
    fate: Fate

    def to_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "position": self.position,
            "length": self.length,
            **self.fate.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogEntry:
        return cls(data["direction"], data["position"], data["length"], Fate.from_dict(data))


Outgoing = tuple[Direction, bytes]


class WireCore:
    def __init__(self, impairment: Impairment | None = None) -> None:
        self._tie = itertools.count()
        self._queue: list[tuple[float, int, Direction, bytes]] = []
        self._waiting = dict.fromkeys(DIRECTIONS, 0)  # frames of each direction in _queue
        # Packets held for reordering: when they are released if no successor comes, their
        # fate's delay (ms) and copies, and the frame; kept by set().
        self._held: dict[Direction, list[tuple[float, float, int, bytes]]] = {
            d: [] for d in DIRECTIONS
        }
        self.set(impairment or Impairment())

    def set(self, impairment: Impairment) -> None:
        """Start a new impairment: fresh schedules, counters and log. Queued frames stay."""
        self.impairment = impairment
        self.schedules = {d: Schedule(impairment, d) for d in DIRECTIONS}
        self.counters = {d: Counters() for d in DIRECTIONS}
        # Plain tuples, made into LogEntry objects only when asked for: cheaper per frame.
        self._log: deque[tuple[Direction, int, int, Fate]] = deque(maxlen=LOG_LIMIT)
        self._free_at = dict.fromkeys(DIRECTIONS, 0.0)  # when the rate-limited link is idle

    @property
    def log(self) -> list[LogEntry]:
        """Each impairable packet's fate since `set`, oldest first (the newest LOG_LIMIT)."""
        return [LogEntry(*entry) for entry in self._log]

    def queued(self) -> int:
        held = sum(copies for queue in self._held.values() for _, _, copies, _ in queue)
        return len(self._queue) + held

    def receive(self, direction: Direction, frame: bytes, now: float) -> list[Outgoing]:
        counters = self.counters[direction]
        span = packet.ip_span(frame)
        if span is None:
            counters.passed += 1
            return [(direction, frame)]
        offset, length = span
        counters.seen += 1
        schedule = self.schedules[direction]
        fate = schedule.next(length)
        self._log.append((direction, schedule.position, length, fate))
        if fate.drop is not None:
            if fate.drop == "oversize":
                counters.oversize += 1
            else:
                counters.dropped += 1
            return []
        if fate.corrupt_at is not None:
            frame = packet.corrupt(
                frame, offset, fate.corrupt_at, fate.xor, self.impairment.fix_checksums
            )
            counters.corrupted += 1
        counters.duplicated += fate.copies - 1
        if fate.reorder:
            counters.reordered += 1
            self._held[direction].append((now + HOLD_LIMIT, fate.delay_ms, fate.copies, frame))
            return []
        departure = self._departure(direction, len(frame) * fate.copies, now, fate.delay_ms)
        frames = [frame] * fate.copies
        # Packets held for reordering go right after this one.
        for _, _, copies, held in self._held[direction]:
            frames += [held] * copies
        self._held[direction].clear()
        return self._dispatch(direction, frames, departure, now)

    def _dispatch(
        self, direction: Direction, frames: list[bytes], departure: float, now: float
    ) -> list[Outgoing]:
        """`frames`, received (or released) at `now`, to send at once or queue for `departure`."""
        counters = self.counters[direction]
        if departure <= now and not self._waiting[direction]:
            counters.delivered += len(frames)
            return [(direction, f) for f in frames]
        for f in frames:
            if self._waiting[direction] >= QUEUE_LIMIT:
                counters.overflow += 1
                continue
            counters.delayed += 1
            self._waiting[direction] += 1
            heapq.heappush(self._queue, (departure, next(self._tie), direction, f))
        return []

    def _departure(self, direction: Direction, size: int, now: float, delay_ms: float) -> float:
        done = now
        rate = self.impairment.rate
        if rate is not None:
            done = max(now, self._free_at[direction]) + size * 8 / rate
            self._free_at[direction] = done
        return done + delay_ms / 1000

    def due(self, now: float) -> list[Outgoing]:
        """Frames whose time has come.

        Reordered packets whose hold limit has passed are released first, each at its hold
        limit: sent at once if neither the rate limit nor a delay holds them back and nothing
        of their direction waits, else queued like any other packet."""
        out: list[Outgoing] = []
        for direction, held in self._held.items():
            while held and held[0][0] <= now:
                release, delay_ms, copies, frame = held.pop(0)
                departure = self._departure(direction, len(frame) * copies, release, delay_ms)
                out += self._dispatch(direction, [frame] * copies, departure, release)
        while self._queue and self._queue[0][0] <= now:
            _, _, direction, frame = heapq.heappop(self._queue)
            self._waiting[direction] -= 1
            self.counters[direction].delivered += 1
            out.append((direction, frame))
        return out

    def next_deadline(self) -> float | None:
        times = [self._queue[0][0]] if self._queue else []
        times += [held[0][0] for held in self._held.values() if held]
        return min(times) if times else None

    def stats(self) -> dict[str, Any]:
        return {
            "impairment": self.impairment.to_dict(),
            "queued": self.queued(),
            **{d: asdict(self.counters[d]) for d in DIRECTIONS},
        }
