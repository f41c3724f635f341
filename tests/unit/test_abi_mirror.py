"""compiler/ir.py's enums and their kernel mirrors in kernel/abi.py agree.

kernel/encode.py writes ir values straight into map keys and values (a Slot
as an sn_files slot index, a PathKind as sn_file_key.kind, an Action as what
an alert's sn_event.action decodes to), so a member renumbered or added on one
side only would silently mean something else in the kernel. abi.py is checked
against bpf/sentinel.h by tests/abi/test_layout.py; this closes the loop from
the compiler's side, on the host, without clang or bpftool.
"""

from __future__ import annotations

import inspect
import socket
from enum import IntEnum

import pytest

from sentinel.compiler import ir
from sentinel.kernel import abi

# ir enum -> (its mirror in abi.py, the members only the kernel has).
MIRRORS: dict[type[IntEnum], tuple[type[IntEnum], frozenset[str]]] = {
    ir.Action: (abi.SnAction, frozenset({"NONE"})),        # no policy decided
    ir.Slot: (abi.SnSlot, frozenset({"CONNECT"})),          # connect is the kernel's 4th slot
    ir.Operation: (abi.SnOp, frozenset()),
    ir.PathKind: (abi.SnPathKind, frozenset({"GUARD"})),    # encode adds guard entries itself
}

# ir enums with no sentinel.h mirror, and what carries them to the kernel.
NOT_MIRRORED = {
    ir.Mode: "a bit of sn_config.audit_mode",
    ir.Severity: "user space only (the alert's rule.severity)",
    ir.Protocol: "the IPPROTO_* numbers themselves",
}

# abi enums that mirror nothing in ir: the kernel's own vocabulary.
KERNEL_ONLY = {abi.SnVia, abi.SnAccess, abi.SnEventKind, abi.SnCounter}


def _enums(module: object) -> set[type[IntEnum]]:
    return {obj for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, IntEnum) and obj is not IntEnum and obj.__module__ == module.__name__}  # type: ignore[attr-defined]


def test_every_ir_enum_is_mirrored_or_says_why_not() -> None:
    assert _enums(ir) == set(MIRRORS) | set(NOT_MIRRORED)


def test_every_abi_enum_mirrors_ir_or_is_the_kernels_own() -> None:
    assert _enums(abi) == {mirror for mirror, _ in MIRRORS.values()} | KERNEL_ONLY


@pytest.mark.parametrize("enum", sorted(MIRRORS, key=lambda e: e.__name__), ids=lambda e: e.__name__)
def test_mirror_has_the_same_members_and_values(enum: type[IntEnum]) -> None:
    mirror, kernel_only = MIRRORS[enum]
    ours = {m.name: m.value for m in enum}
    theirs = {m.name: m.value for m in mirror if m.name not in kernel_only}
    assert ours == theirs, f"ir.{enum.__name__} and abi.{mirror.__name__} differ"
    # The kernel-only members exist and take no value an ir member has.
    assert kernel_only <= set(mirror.__members__)
    assert not {mirror[name].value for name in kernel_only} & set(ours.values())


def test_protocol_numbers_are_the_kernels() -> None:
    assert {p.name: p.value for p in ir.Protocol} == {"TCP": socket.IPPROTO_TCP, "UDP": socket.IPPROTO_UDP}
