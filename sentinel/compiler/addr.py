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


def unmap_network(net: IPNetwork) -> IPNetwork:
    """A network inside ::ffff:0:0/96 becomes the IPv4 network it maps."""
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96 and net.subnet_of(_MAPPED):
        low = int(net.network_address) & 0xFFFFFFFF
        return ipaddress.IPv4Network((low, net.prefixlen - 96))
    return net


def network_key(net: IPNetwork) -> tuple[int, int, int]:
    """Sort key: family, then address, then prefix length."""
    return (net.version, int(net.network_address), net.prefixlen)
