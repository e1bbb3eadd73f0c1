"""Traffic probes: ICMP echo (`icmp`), UDP/TCP exchanges with an echo service (`exchange`,
`echo`), link capture to pcap (`capture`), tunnel evidence (`evidence`), and `Probes`, which
binds them to a lab's hosts by name."""
