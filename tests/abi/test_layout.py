"""bpf/sentinel.h and sentinel/kernel/abi.py describe the same bytes.

Reads the compiled object's BTF with bpftool (like cilium/tetragon's
alignchecker): each shared struct must have the same size and member offsets
on both sides and no holes; every enum the same values; every #define the
same number. Runs on the host: only clang (for the build) and bpftool.
"""

from __future__ import annotations

import ctypes
import json
import re
import shutil
import subprocess
from enum import IntEnum
from pathlib import Path
from typing import Any

import pytest

from sentinel.bpf import OBJECT_PATH
from sentinel.kernel import abi

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool is not installed")


@pytest.fixture(scope="module")
def btf() -> dict[str, dict[str, Any]]:
    assert OBJECT_PATH.exists(), "build the object first: make -C bpf"
    raw = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(OBJECT_PATH), "format", "raw", "-j"],
        capture_output=True, text=True, check=True,
    ).stdout
    types = json.loads(raw)["types"]
    return {f"{t['kind']}:{t.get('name')}": t for t in types if t.get("name")}


@pytest.mark.parametrize("name", sorted(abi.STRUCTS))
def test_struct_layout_matches(btf: dict[str, dict[str, Any]], name: str) -> None:
    cls = abi.STRUCTS[name]
    c = btf.get(f"STRUCT:{name}")
    assert c is not None, f"struct {name} is not in the object's BTF"
    assert c["size"] == ctypes.sizeof(cls), f"{name}: C size {c['size']}, ctypes {ctypes.sizeof(cls)}"
    c_members = [(m["name"], m["bits_offset"] // 8) for m in c["members"]]
    # "in" is a Python keyword: the mirror spells it in_
    py_members = [(f[0].rstrip("_") if f[0] == "in_" else f[0], getattr(cls, f[0]).offset) for f in cls._fields_]
    assert c_members == py_members


@pytest.mark.parametrize("name", sorted(abi.STRUCTS))
def test_struct_has_no_holes(name: str) -> None:
    cls = abi.STRUCTS[name]
    end = 0
    for field_name, *_ in cls._fields_:
        desc = getattr(cls, field_name)
        assert desc.offset == end, f"{name}: hole before {field_name} ({end} -> {desc.offset})"
        end = desc.offset + desc.size
    assert end == ctypes.sizeof(cls), f"{name}: {ctypes.sizeof(cls) - end} bytes of tail padding"


ENUMS: dict[str, type[IntEnum]] = {
    "sn_slot": abi.SnSlot,
    "sn_op": abi.SnOp,
    "sn_action": abi.SnAction,
    "sn_path_kind": abi.SnPathKind,
    "sn_access": abi.SnAccess,
    "sn_event_kind": abi.SnEventKind,
    "sn_via": abi.SnVia,
    "sn_counter": abi.SnCounter,
}


def _header_enum(text: str, name: str) -> dict[str, int]:
    body = re.search(rf"enum {name} \{{(.*?)\}};", text, re.S)
    assert body, f"enum {name} not in sentinel.h"
    out = {}
    for m in re.finditer(r"(SN_\w+)\s*=\s*(\d+)", body.group(1)):
        out[m.group(1)] = int(m.group(2))
    return out


@pytest.mark.parametrize("name", sorted(ENUMS))
def test_enum_values_match(name: str) -> None:
    header = (REPO / "bpf" / "sentinel.h").read_text()
    c_values = _header_enum(header, name)
    prefix = "SN_" + {"sn_path_kind": "KIND", "sn_event_kind": "EV", "sn_counter": "CNT",
                      "sn_access": "ACC", "sn_action": "ACT"}.get(name, name[3:].upper()) + "_"
    py_values = {prefix + member.name: member.value for member in ENUMS[name]}
    assert c_values == py_values


def test_defines_match() -> None:
    header = (REPO / "bpf" / "sentinel.h").read_text()
    defines = {}
    for m in re.finditer(r"#define (SN_\w+)\s+(0x[0-9A-Fa-f]+|\(?[\d\s\*]+\)?)", header):
        defines[m.group(1)] = int(eval(m.group(2), {}))  # integer literals and products only
    expected = {
        "SN_MAX_POLICIES": abi.MAX_POLICIES,
        "SN_CANARY_POLICY": abi.CANARY_POLICY,
        "SN_NO_RULE": abi.NO_RULE,
        "SN_SLOTS": abi.SLOTS,
        "SN_COMM_LEN": abi.COMM_LEN,
        "SN_PATH_LEN": abi.PATH_LEN,
        "SN_MAX_FILES": abi.MAX_FILES,
        "SN_MAX_RULE_REFS": abi.MAX_RULE_REFS,
        "SN_RINGBUF_BYTES": abi.RINGBUF_BYTES,
        "SN_MAX_DEPTH": abi.MAX_DEPTH,
        "SN_SUBTREE_DEVS": abi.SUBTREE_DEVS,
        "SN_MAX_NETS": abi.MAX_NETS,
        "SN_PORTS": abi.PORTS,
        "SN_MAX_UID_BOUNDS": abi.MAX_UID_BOUNDS,
        "SN_MAX_CG_DEPTH": abi.MAX_CG_DEPTH,
        "SN_MAX_SELECTORS": abi.MAX_SELECTORS,
        "SN_PROBE_IDS": abi.PROBE_IDS,
        "SN_GUARD_DIRS": abi.GUARD_DIRS,
        "SN_RATE_ENTRIES": abi.RATE_ENTRIES,
        "SN_EXE_LEN": abi.EXE_LEN,
        "SN_EXEC_OPENS": abi.EXEC_OPENS,
    }
    assert {k: defines.get(k) for k in expected} == expected


def test_compiler_limits_fit_the_kernel() -> None:
    from sentinel.compiler import ir

    assert ir.MAX_POLICIES == abi.CANARY_POLICY  # the top bit is the self-check's
    assert ir.NO_RULE == abi.NO_RULE


def test_object_has_both_mechanisms_per_hook() -> None:
    out = subprocess.run(["bpftool", "gen", "skeleton", str(OBJECT_PATH), "name", "sentinel"],
                         capture_output=True, text=True, check=True).stdout
    from sentinel.kernel.objects import PROGRAMS

    for progs in PROGRAMS.values():
        for prog in progs:
            assert f"struct bpf_program *{prog};" in out
