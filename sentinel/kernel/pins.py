"""Where sentinel's kernel state is pinned (bpffs) and its runtime state lives.

/sys/fs/bpf/sentinel/maps/<map>     every map, reused by the next load
/sys/fs/bpf/sentinel/links/<prog>   every attached program: enforcement
                                    outlives the daemon while these exist
/run/sentinel/                      pid file, status, self-check canary
"""

from __future__ import annotations

import os
from pathlib import Path

BPFFS = Path(os.environ.get("SENTINEL_BPFFS", "/sys/fs/bpf"))
PIN_ROOT = BPFFS / "sentinel"
MAP_DIR = PIN_ROOT / "maps"
LINK_DIR = PIN_ROOT / "links"
RUN_DIR = Path(os.environ.get("SENTINEL_RUN_DIR", "/run/sentinel"))
PID_FILE = RUN_DIR / "sentinel.pid"
STATUS_FILE = RUN_DIR / "status.json"
CANARY_FILE = RUN_DIR / "canary"

BPF_FS_MAGIC = 0xCAFE4A11


def is_bpffs(path: Path) -> bool:
    """True when PATH is on a mounted bpffs (statfs f_type)."""
    import ctypes

    class _statfs(ctypes.Structure):
        _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_byte * 112)]

    libc = ctypes.CDLL(None, use_errno=True)
    buf = _statfs()
    if libc.statfs(str(path).encode(), ctypes.byref(buf)) != 0:
        return False
    return bool((buf.f_type & 0xFFFFFFFF) == BPF_FS_MAGIC)


def ensure_bpffs() -> None:
    """Mount bpffs at /sys/fs/bpf when it is missing (minimal systems, VMs)."""
    if is_bpffs(BPFFS):
        return
    import subprocess

    BPFFS.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "bpf", "bpf", str(BPFFS)], check=True)


TRACEFS = Path("/sys/kernel/tracing")
DEBUGFS_TRACING = Path("/sys/kernel/debug/tracing")


def ensure_tracefs() -> None:
    """Mount tracefs at /sys/kernel/tracing when neither it nor debugfs's
    tracing directory is there (minimal systems, VMs): libbpf finds a
    tracepoint's id under one of them to attach a tracepoint program."""
    if (TRACEFS / "events").is_dir() or (DEBUGFS_TRACING / "events").is_dir():
        return
    import subprocess

    from sentinel.errors import KernelError

    r = subprocess.run(["mount", "-t", "tracefs", "nodev", str(TRACEFS)], capture_output=True, text=True)
    if r.returncode != 0 or not (TRACEFS / "events").is_dir():
        raise KernelError(f"tracefs is not mounted at {TRACEFS} and mounting it failed: {r.stderr.strip()}")


def pinned_links() -> list[Path]:
    return sorted(LINK_DIR.glob("*")) if LINK_DIR.is_dir() else []


def anything_pinned() -> bool:
    return PIN_ROOT.exists() and any(PIN_ROOT.rglob("*"))
