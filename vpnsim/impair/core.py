"""The wire's logic, sans-IO: frames in with a time, frames out with a time, counters and a log.

`WireCore.receive(direction, frame, now)` returns the frames to send at once; the rest wait in
a queue that `due(now)` empties and `next_deadline()` times. Fates come from one `Schedule`
per direction. Queueing follows netem's order: the rate limit serialises a packet, then the
delay (and jitter) is added; a reordered packet waits for the next packet of its direction,
or `HOLD_LIMIT` seconds if none comes.
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
        # Frames held for reordering, with when they go if no successor comes; kept by set().
        self._held: dict[Direction, list[tuple[float, bytes]]] = {d: [] for d in DIRECTIONS}
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
        return len(self._queue) + sum(len(held) for held in self._held.values())

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
            self._held[direction].extend((now + HOLD_LIMIT, frame) for _ in range(fate.copies))
            return []
        departure = self._departure(direction, len(frame) * fate.copies, now, fate.delay_ms)
        frames = [frame] * fate.copies
        # Packets held for reordering go right after this one.
        frames += [held for _, held in self._held[direction]]
        self._held[direction].clear()
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
        """Frames whose time has come (and reordered ones that waited long enough)."""
        out: list[Outgoing] = []
        while self._queue and self._queue[0][0] <= now:
            _, _, direction, frame = heapq.heappop(self._queue)
            self._waiting[direction] -= 1
            self.counters[direction].delivered += 1
            out.append((direction, frame))
        for direction, held in self._held.items():
            while held and held[0][0] <= now:
                self.counters[direction].delivered += 1
                out.append((direction, held.pop(0)[1]))
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
