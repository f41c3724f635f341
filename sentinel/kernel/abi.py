"""ctypes mirror of bpf/sentinel.h: same names, same order, same sizes.

tests/abi/test_layout.py checks every struct here against the BTF of the
compiled object, so a field added on one side only fails on the host.
"""

from __future__ import annotations

import ctypes
from enum import IntEnum

MAX_POLICIES = 64
CANARY_POLICY = 63
NO_RULE = 0xFFFF
SLOTS = 4
COMM_LEN = 16
PATH_LEN = 4096
MAX_FILES = 262144
MAX_RULE_REFS = 524288
RINGBUF_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
SUBTREE_DEVS = 8
MAX_UID_BOUNDS = 4096
MAX_CG_DEPTH = 16
MAX_SELECTORS = 65536
MAX_NETS = 524288
PORTS = 65536
EXE_LEN = 3968
EXEC_OPENS = 1024


class SnSlot(IntEnum):
    EXEC = 0
    READ = 1
    WRITE = 2
    CONNECT = 3


class SnOp(IntEnum):
    EXEC = 0
    OPEN = 1
    CONNECT = 2


class SnAction(IntEnum):
    NONE = 0
    ALLOW = 1
    AUDIT = 2
    DENY = 3


class SnPathKind(IntEnum):
    EXACT = 0
    SUBTREE = 1
    GUARD = 2


class SnVia(IntEnum):
    OPEN = 0
    TRUNCATE = 1
    RENAME = 2
    LINK = 3
    UNLINK = 4
    RMDIR = 5
    MMAP = 6


class SnAccess(IntEnum):
    READ = 1
    WRITE = 2


class SnEventKind(IntEnum):
    ALERT = 0
    CANARY = 1


class SnCounter(IntEnum):
    RINGBUF_FULL = 0
    DECIDED = 1
    DENIED = 2
    DEPTH_CUT = 3
    TAMPER = 4
    SUPPRESSED = 5
    MAX = 8


u8, u16, u32, u64 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64


class sn_file_key(ctypes.Structure):
    _fields_ = [("ino", u64), ("dev", u32), ("kind", u8), ("gen", u8), ("_pad", u16)]


class sn_file_val(ctypes.Structure):
    _fields_ = [("match", u64 * SLOTS), ("deny", u64 * SLOTS), ("audit", u64 * SLOTS)]


class sn_rule_ref_key(ctypes.Structure):
    _fields_ = [
        ("file", sn_file_key),
        ("slot", u8),
        ("policy", u8),
        ("_pad", u16),
        ("_pad2", u32),
    ]


class sn_rule_ref(ctypes.Structure):
    _fields_ = [("rule", u32), ("_pad", u32)]


class sn_net4_key(ctypes.Structure):
    _fields_ = [("prefixlen", u32), ("gen", u8), ("protocol", u8), ("port_class", u8 * 2), ("addr", u8 * 4)]


class sn_net6_key(ctypes.Structure):
    _fields_ = [("prefixlen", u32), ("gen", u8), ("protocol", u8), ("port_class", u8 * 2), ("addr", u8 * 16)]


class sn_net_val(ctypes.Structure):
    _fields_ = [("match", u64), ("deny", u64), ("audit", u64), ("rule", u16 * MAX_POLICIES)]


class sn_bin_val(ctypes.Structure):
    _fields_ = [("in_", u64), ("notin", u64)]


class sn_uid_bound(ctypes.Structure):
    _fields_ = [("first", u32), ("_pad", u32), ("mask", u64)]


class sn_cgroup_key(ctypes.Structure):
    _fields_ = [("id", u64), ("gen", u32), ("_pad", u32)]


class sn_config(ctypes.Structure):
    _fields_ = [
        ("active", u64),
        ("audit_mode", u64),
        ("default_deny", u64 * SLOTS),
        ("default_audit", u64 * SLOTS),
        ("subtree_any", u64 * SLOTS),
        ("subtree_deny", u64 * SLOTS),
        ("sel_bin", u64),
        ("sel_uid", u64),
        ("sel_cgroup", u64),
        ("sel_notbin_any", u64),
        ("canary_start_ticks", u64),
        ("uid_count", u32),
        ("canary_tgid", u32),
        ("alert_rate", u32),
        ("subtree_dev_count", u32),
        ("subtree_devs", u32 * SUBTREE_DEVS),
        ("fileless_match", u64),
        ("fileless_deny", u64),
        ("fileless_audit", u64),
        ("fileless_rule", u16 * MAX_POLICIES),
    ]


class sn_state(ctypes.Structure):
    _fields_ = [("gen", u32), ("probe_tgid", u32), ("probe_ticks", u64)]


RATE_WINDOW_NS = 1_000_000_000
RATE_ENTRIES = 16384


class sn_rate_key(ctypes.Structure):
    _fields_ = [("tgid", u32), ("policy", u16), ("rule", u16), ("op", u32)]


class sn_rate_val(ctypes.Structure):
    _fields_ = [("window_start_ns", u64), ("sent", u32), ("suppressed", u32)]


GUARD_DIRS = 3


class sn_guard(ctypes.Structure):
    _fields_ = [
        ("expires_ns", u64),
        ("owner_ticks", u64),
        ("owner_tgid", u32),
        ("pin_dev", u32),
        ("pin_dirs", u64 * GUARD_DIRS),
    ]


PROBE_IDS = 4


class sn_probe(ctypes.Structure):
    _fields_ = [("ino", u64 * PROBE_IDS), ("dev", u32 * PROBE_IDS), ("count", u32), ("_pad", u32)]


class sn_exe_path(ctypes.Structure):
    _fields_ = [("path", ctypes.c_char * EXE_LEN)]


class sn_event(ctypes.Structure):
    _fields_ = [
        ("ts_boot_ns", u64),
        ("ino", u64),
        ("cgroup_id", u64),
        ("kind", u32),
        ("op", u32),
        ("pid", u32),
        ("tid", u32),
        ("ppid", u32),
        ("uid", u32),
        ("gid", u32),
        ("dev", u32),
        ("access", u32),
        ("gen", u32),
        ("policy", u16),
        ("rule", u16),
        ("action", u8),
        ("blocked", u8),
        ("dport", u16),
        ("family", u8),
        ("protocol", u8),
        ("via", u8),
        ("_pad", u8),
        ("daddr", u8 * 16),
        ("comm", ctypes.c_char * COMM_LEN),
        ("path", ctypes.c_char * PATH_LEN),
        ("exe", ctypes.c_char * PATH_LEN),
        ("suppressed", u32),
    ]


# Every struct user space shares with the kernel, by its C name.
STRUCTS: dict[str, type[ctypes.Structure]] = {
    cls.__name__: cls
    for cls in (
        sn_file_key,
        sn_file_val,
        sn_rule_ref_key,
        sn_rule_ref,
        sn_net4_key,
        sn_net6_key,
        sn_net_val,
        sn_bin_val,
        sn_uid_bound,
        sn_cgroup_key,
        sn_config,
        sn_state,
        sn_probe,
        sn_guard,
        sn_rate_key,
        sn_rate_val,
        sn_exe_path,
        sn_event,
    )
}


def kernel_dev(st_dev: int) -> int:
    """The kernel's s_dev for a stat() st_dev: major << 20 | minor (not st_dev)."""
    import os

    return (os.major(st_dev) << 20) | os.minor(st_dev)
