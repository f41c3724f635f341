"""The bounds every policy file and rule test file is read within.

A policy file is untrusted input to a privileged daemon, and the daemon
reparses it on every reload while its ring buffer keeps filling: reading one
must cost bounded time and memory whatever the file holds. Each limit is
checked before the work it bounds (the size before reading, the line length
before parsing, aliases, depth and node count while composing, one event at a
time), so a hostile file is rejected in well under a second with a
`FILE:LINE:COL` diagnostic naming the limit. docs/policy-limits.md explains
each value; the largest generated benchmark policy (100,000 CIDRs in one
file: 2.2 MB, 111,013 nodes, lines of 2,700 characters, depth 6) loads with
room to spare.
"""

from __future__ import annotations

from sentinel.compiler.ir import MAX_POLICIES

MAX_FILE_BYTES = 4 * 1024 * 1024
"""Bytes per file: twice the largest benchmark policy; read with a bounded read."""

MAX_LINE_CHARS = 16 * 1024
"""Characters per line: four PATH_MAX paths in a flow list still fit."""

MAX_DEPTH = 32
"""Nested mappings and sequences: a policy needs 6, a rule test file 8."""

MAX_NODES = 150_000
"""YAML nodes (scalars, mappings, sequences) per file, every document together."""

MAX_DOCUMENTS = MAX_POLICIES
"""YAML documents per file: one policy each, and no more can be loaded at once."""

DOCS = "see docs/policy-limits.md"
