"""Per-packet fates from an Impairment: sans-IO, seeded, replayable.

A `Schedule` decides the fate of each impairable packet of one direction, in order. It draws
the same number of random values for every packet whatever is switched on, so turning on
duplication never changes which packets are lost, and the n-th packet's fate depends only on
the seed, the direction and the sizes of packets 1..n: the same seed and traffic give the same
fates, on the wire and in a test predicting them.
"""

from __future__ import annotations

import dataclasses
import random

from vpnsim.impair.spec import Direction, Event, Fate, Impairment

DRAWS_PER_PACKET = 8
CLEAN = Fate()


class Schedule:
    def __init__(self, impairment: Impairment, direction: Direction) -> None:
        self.impairment = impairment
        self.direction = direction
        self.active = impairment.applies_to(direction)
        # Nothing random and nothing named: every fate is CLEAN, with no draws to make.
        clean = dataclasses.replace(impairment, seed=0, direction="both") == Impairment()
        self._trivial = clean or not self.active
        # A string seed is hashed (SHA-512) by random.Random: stable across runs and versions.
        self._rng = random.Random(f"vpnsim:{impairment.seed}:{direction}")
        self._bad = False  # Gilbert-Elliott state
        self.position = 0
        self._events: dict[int, list[Event]] = {}
        for event in impairment.events:
            if event.direction in ("both", direction):
                self._events.setdefault(event.packet, []).append(event)

    def next(self, ip_length: int) -> Fate:
        """The fate of the next impairable packet, `ip_length` bytes of IP packet long."""
        self.position += 1
        if self._trivial:
            return CLEAN
        imp = self.impairment
        u = [self._rng.random() for _ in range(DRAWS_PER_PACKET)]
        drop = None
        if imp.burst is not None:
            ge = imp.burst
            if u[0] < (ge.loss_bad if self._bad else ge.loss_good):
                drop = "burst"
            self._bad = u[1] >= ge.r if self._bad else u[1] < ge.p
        elif u[0] < imp.loss:
            drop = "loss"
        copies = 2 if u[2] < imp.dup else 1
        reorder = u[3] < imp.reorder
        corrupt_at, xor = None, 0
        if u[4] < imp.corrupt:
            start, end = imp.corrupt_bytes or (0, ip_length)
            end = min(end, ip_length)
            if start < end:  # else the packet is too short to have the chosen bytes
                corrupt_at = start + int(u[5] * (end - start))
                xor = 1 + int(u[6] * 255)
        delay = imp.delay_ms
        if imp.jitter_ms:
            delay = max(0.0, delay + (2 * u[7] - 1) * imp.jitter_ms)
        for event in self._events.get(self.position, ()):
            if event.action == "drop":
                drop = "event"
            elif event.action == "dup":
                copies += 1
            elif event.action == "reorder":
                reorder = True
            elif event.action == "delay":
                delay += event.value
            elif event.action == "corrupt" and event.value < ip_length:
                corrupt_at, xor = event.value, 0xFF
        if imp.mtu is not None and ip_length > imp.mtu:
            drop = "oversize"
        if drop is not None:
            return Fate(drop=drop)
        return Fate(copies=copies, delay_ms=delay, reorder=reorder, corrupt_at=corrupt_at, xor=xor)


def predict(impairment: Impairment, direction: Direction, ip_lengths: list[int]) -> list[Fate]:
    """The fates a wire set to `impairment` gives a direction's packets of these lengths."""
    schedule = Schedule(impairment, direction)
    return [schedule.next(length) for length in ip_lengths]
