"""vpnsim: the SEED VPN labs in Linux network namespaces.

Kept import-light on purpose: `python -m vpnsim.tunnel` imports this package first,
and tunnel start-up time counts towards the lab's time to first packet.
"""

__version__ = "0.1.0"
