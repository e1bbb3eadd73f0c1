"""Kernel objects through pyroute2 (netlink) and namespace syscalls: no `ip` subprocess."""
