"""The reference VPN tunnel: a sans-IO protocol (`protocol`), a thin select-loop driver
(`driver`), the TUN device (`tun`) and its configuration (`netconf`); the encrypted mode's
sans-IO endpoints (`secure`, `secure_wire`) and its cryptography (`crypto`), loaded only
with `--wire aead`.

Run an endpoint with `python -m vpnsim.tunnel client|server`. Kept import-light: the
endpoint's start-up is on the critical path of every lab.
"""
