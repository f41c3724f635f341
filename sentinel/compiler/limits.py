"""Capacities of the kernel maps, checked when compiling so that a policy set
that does not fit is rejected whole, never loaded in part."""

from __future__ import annotations

from sentinel.compiler.ir import MAX_POLICIES, NO_RULE

MAX_FILE_ENTRIES = 262_144  # sn_inodes + sn_prefixes entries together
MAX_NET_ENTRIES = 262_144  # per address family: sn_net4, sn_net6
MAX_PORT_CLASSES = 65_536  # one per port at most; the bound is structural
MAX_RULES_PER_POLICY = NO_RULE  # rule indices are __u16 and NO_RULE is reserved

__all__ = [
    "MAX_FILE_ENTRIES",
    "MAX_NET_ENTRIES",
    "MAX_PORT_CLASSES",
    "MAX_POLICIES",
    "MAX_RULES_PER_POLICY",
]
