"""The reference VPN tunnel: a sans-IO protocol (`protocol`), a thin select-loop driver
(`driver`), the TUN device (`tun`) and its configuration (`netconf`).

Run an endpoint with `python -m vpnsim.tunnel client|server`. Kept import-light: the
endpoint's start-up is on the critical path of every lab.
"""
