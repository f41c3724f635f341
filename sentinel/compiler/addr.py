"""Address helpers shared by the compiler and the evaluator: IPv4-mapped IPv6
(::ffff:a.b.c.d) is IPv4 on the wire, so both sides fold it to IPv4."""

from __future__ import annotations

import ipaddress
from typing import Union

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def unmap_address(addr: IPAddress) -> IPAddress:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


_LOOPBACK4 = ipaddress.IPv4Address("127.0.0.1")
_LOOPBACK6 = ipaddress.IPv6Address("::1")


def reached_address(addr: IPAddress) -> IPAddress:
    """The address a connect to ADDR from an unbound socket reaches, unmapped.

    0.0.0.0 (also written ::ffff:0.0.0.0) and :: name this host: the kernel
    routes them to the socket's bound address, else to loopback, and the BPF
    programs judge that address. An unbound socket is what `explain` and
    `sentinel test` model, so 0.0.0.0 is 127.0.0.1 and :: is ::1 here.
    """
    addr = unmap_address(addr)
    if not addr.is_unspecified:
        return addr
    return _LOOPBACK4 if addr.version == 4 else _LOOPBACK6


def unmap_network(net: IPNetwork) -> IPNetwork:
    """A network inside ::ffff:0:0/96 becomes the IPv4 network it maps."""
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96 and net.subnet_of(_MAPPED):
        low = int(net.network_address) & 0xFFFFFFFF
        return ipaddress.IPv4Network((low, net.prefixlen - 96))
    return net


def network_key(net: IPNetwork) -> tuple[int, int, int]:
    """Sort key: family, then address, then prefix length."""
    return (net.version, int(net.network_address), net.prefixlen)
