"""Tunnels side by side: `vpnsim bench tunnels` (and `python -m vpnsim.tunnel.bench`).

- `contenders`: how each implementation starts in a SEED lab (the reference tunnel plain and
  AEAD, OpenVPN AES-256-GCM, wireguard-go, a kernel VXLAN tunnel) and what to measure of it;
- `measure`: iperf3 TCP and UDP, ping, the tunnel processes' CPU time;
- `report`: rows, medians and spread, JSON, a text table and a PNG chart;
- `sansio`: the reference tunnel's per-packet cost with no IO at all;
- `cli`: the command (`add_parser(sub)` for `vpnsim`, `main` for `python -m`).
"""
