"""The reference tunnel's protocol cost per packet with no IO at all (the floor under any
driver): client TUN packet -> datagram -> server TUN packet, in process."""

from __future__ import annotations

import secrets
import time

from vpnsim.tunnel.bench.measure import V


def sans_io_us_per_packet(mode: str, packets: int = 20_000) -> float:
    """Microseconds of protocol work per 1400-byte packet, client TUN -> server TUN, no IO:
    what each mode costs before any system call (best of 3)."""
    from vpnsim.testing import ipv4_packet
    from vpnsim.tunnel.protocol import ClientProtocol, Endpoint, Send, ServerProtocol
    from vpnsim.tunnel.secure import SecureClient, SecureServer

    server_addr, client_addr = ("10.9.0.11", 9090), ("10.9.0.5", 40000)
    packet = ipv4_packet("192.168.53.99", V, bytes(1400))
    best = float("inf")
    for _ in range(3):
        client: Endpoint
        server: Endpoint
        if mode == "aead":
            psk = secrets.token_bytes(32)
            secure_client, secure_server = SecureClient(server_addr, psk), SecureServer(psk)
            # The handshake, by hand: initiation, response, confirming keepalive.
            messages: list[Send] = secure_client.expire(0.0)
            while messages:
                message = messages.pop()
                if message.addr == server_addr:
                    answers = secure_server.datagram_received(message.datagram, client_addr, 0.0)
                else:
                    answers = secure_client.datagram_received(message.datagram, server_addr, 0.0)
                messages += [a for a in answers if isinstance(a, Send)]
            assert secure_server.stats.handshakes == 1
            client, server = secure_client, secure_server
        else:
            client, server = ClientProtocol(server_addr), ServerProtocol()
        started = time.perf_counter()
        for _ in range(packets):
            for send in client.packet_from_tun(packet, 1.0):
                server.datagram_received(send.datagram, client_addr, 1.0)
        best = min(best, (time.perf_counter() - started) / packets * 1e6)
    return best
