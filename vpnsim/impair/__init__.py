"""Deterministic, seeded impairment of a lab's links: a userspace wire, no netem needed."""

from vpnsim.impair.spec import Event, Fate, GilbertElliott, Impairment, ImpairmentError

__all__ = ["Event", "Fate", "GilbertElliott", "Impairment", "ImpairmentError"]
