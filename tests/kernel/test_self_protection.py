"""Self-protection while the daemon runs: another root process cannot get a
writable fd on sentinel's maps, remove or rename its pins, unmount its bpffs
or ptrace the daemon; it can still read the maps, and it can do all of these
things to objects that are not sentinel's. After a clean stop the guard is
released so that `unload` works."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import struct
import subprocess
from pathlib import Path

import pytest

from sentinel.errors import KernelError
from sentinel.kernel import abi, pins
from sentinel.kernel.libbpf import open_pinned_map
from tests.kernel.conftest import sentinel, start_daemon

pytestmark = pytest.mark.kernel

POLICY = """\
apiVersion: sentinel/v1
kind: Policy
metadata: {{name: guarded}}
spec:
  rules:
    - id: deny-secret
      operation: open
      action: deny
      match: {{paths: [{secret}]}}
"""

PTRACE_ATTACH, PTRACE_DETACH = 16, 17
_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
_libc.ptrace.restype = ctypes.c_long


def ptrace_attach_errno(pid: int) -> int:
    """0 when PTRACE_ATTACH worked (and the tracee was let go again), else errno."""
    if _libc.ptrace(PTRACE_ATTACH, pid, None, None) == 0:
        os.waitpid(pid, 0)
        _libc.ptrace(PTRACE_DETACH, pid, None, None)
        return 0
    return ctypes.get_errno()


SYS_BPF, BPF_MAP_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD, BPF_F_RDONLY = 321, 14, 15, 1 << 3  # x86_64
_libc.syscall.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_long]
_libc.syscall.restype = ctypes.c_long


def _bpf(cmd: int, attr: bytes) -> int:
    """The bpf(2) system call itself: its result, or -errno."""
    buf = ctypes.create_string_buffer(attr, len(attr))
    rc = _libc.syscall(SYS_BPF, cmd, buf, len(attr))
    return int(rc) if rc >= 0 else -ctypes.get_errno()


def map_id(path: Path) -> int:
    """The kernel id of the map pinned at PATH (through a read-only fd)."""
    m = open_pinned_map(str(path), path.name, 4, 8, read_only=True)
    try:
        info = (ctypes.c_uint32 * 2)()  # struct bpf_map_info starts with type, id
        rc = _bpf(BPF_OBJ_GET_INFO_BY_FD, struct.pack("=IIQ", m.fd, ctypes.sizeof(info), ctypes.addressof(info)))
        assert rc == 0, os.strerror(-rc)
        return int(info[1])
    finally:
        m.close()


def fd_by_id_errno(map_id: int, flags: int) -> int:
    """0 when BPF_MAP_GET_FD_BY_ID gave an fd (closed again), else its errno."""
    fd = _bpf(BPF_MAP_GET_FD_BY_ID, struct.pack("=III", map_id, 0, flags))
    if fd < 0:
        return -fd
    os.close(fd)
    return 0


def tamper_counter() -> int:
    """The kernel's count of denied tampering, from `sentinel status --json`;
    a missing key or a failed status fails the test."""
    status = sentinel("status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    count = json.loads(status.stdout)["counters"]["tamper"]
    assert isinstance(count, int), count
    return count


def map_errno(path: Path, read_only: bool) -> int:
    try:
        open_pinned_map(str(path), path.name, 4, 8, read_only=read_only).close()
    except KernelError as exc:
        return exc.errno or -1
    return 0


def os_errno(fn: object, *args: object) -> int:
    try:
        fn(*args)  # type: ignore[operator]
    except OSError as exc:
        return exc.errno or -1
    return 0


def test_other_processes_cannot_tamper(tmpfs: Path) -> None:
    secret = tmpfs / "secret"
    secret.write_text("s\n")
    policy = tmpfs / "policy.yaml"
    policy.write_text(POLICY.format(secret=secret))
    daemon = start_daemon(policy, tmpfs / "events.jsonl")
    bystander = subprocess.Popen(["sleep", "300"])
    own_pin = pins.BPFFS / "not-sentinel"
    try:
        status = sentinel("status", "--json")
        assert status.returncode == 0, status.stderr  # status reads through read-only fds
        assert '"self_protection": "active, held by pid' in status.stdout
        tamper_before = tamper_counter()
        denied = 0  # attempts below that the guard must have refused (and counted)

        # Maps: no writable fd, by pin or by id; a read-only fd is fine.
        for name in ("sn_files", "sn_state", "sn_config", "sn_guard"):
            assert map_errno(pins.MAP_DIR / name, read_only=False) == errno.EPERM, name
            assert map_errno(pins.MAP_DIR / name, read_only=True) == 0, name
            # By id, through bpf(2) itself: the same refusal, and only for write.
            assert fd_by_id_errno(map_id(pins.MAP_DIR / name), 0) == errno.EPERM, name
            assert fd_by_id_errno(map_id(pins.MAP_DIR / name), BPF_F_RDONLY) == 0, name
            denied += 2
        # The same through bpftool: refused with EPERM, not failing for any other reason.
        upd = subprocess.run(["bpftool", "map", "update", "pinned", str(pins.MAP_DIR / "sn_state"),
                              "key", "0", "0", "0", "0", "value", *["0"] * ctypes.sizeof(abi.sn_state)],
                             capture_output=True, text=True)
        assert upd.returncode != 0 and "Operation not permitted" in upd.stderr, upd.stdout + upd.stderr
        ids = subprocess.run(["bpftool", "map", "show", "name", "sn_config"], capture_output=True, text=True)
        # bpftool asks for a writable fd by id: refused
        assert ids.returncode != 0 and "Operation not permitted" in ids.stderr, ids.stdout + ids.stderr
        denied += 2
        # Pins: no unlink, rmdir, rename; no unmount of their bpffs.
        link_pin = pins.pinned_links()[0]
        assert os_errno(os.unlink, link_pin) == errno.EPERM
        assert os_errno(os.unlink, pins.MAP_DIR / "sn_files") == errno.EPERM
        assert os_errno(os.rename, link_pin, pins.BPFFS / "moved") in (errno.EPERM, errno.EXDEV)
        assert os_errno(os.rmdir, pins.LINK_DIR) == errno.EPERM
        assert _libc.umount2(str(pins.BPFFS).encode(), 0) != 0 and ctypes.get_errno() == errno.EPERM
        denied += 4  # two unlinks, rmdir, umount (the rename may fail with EXDEV first)
        assert link_pin.exists() and (pins.MAP_DIR / "sn_files").exists()
        # The daemon cannot be traced, nor its memory opened for writing.
        assert ptrace_attach_errno(daemon.proc.pid) == errno.EPERM
        # mm_access() reports a refused ptrace check as EACCES.
        assert os_errno(open, f"/proc/{daemon.proc.pid}/mem", "r+b") == errno.EACCES
        denied += 2
        # Enforcement is untouched.
        assert os_errno(open, secret, "rb") == errno.EPERM

        # Negative controls: the same things on objects that are not sentinel's.
        assert ptrace_attach_errno(bystander.pid) == 0
        assert os_errno(open, f"/proc/{bystander.pid}/mem", "r+b") == 0
        subprocess.run(["bpftool", "map", "create", str(own_pin), "type", "array", "key", "4", "value", "8",
                        "entries", "1", "name", "other_map"], check=True)
        assert map_errno(own_pin, read_only=False) == 0
        assert fd_by_id_errno(map_id(own_pin), 0) == 0  # a writable fd by id on a map not sentinel's
        subprocess.run(["bpftool", "map", "update", "pinned", str(own_pin), "key", "0", "0", "0", "0",
                        "value", *["1"] * 8], check=True)
        assert os_errno(os.unlink, own_pin) == 0

        tamper = daemon.wait_for_status("tamper_denied")
        assert tamper, daemon.events(None)[-5:]
        # Every refusal above was counted in the kernel (none by the negative controls).
        counted = tamper_counter() - tamper_before
        assert counted >= denied, (counted, denied)
    finally:
        bystander.kill()
        err = daemon.stop()
        if own_pin.exists():
            own_pin.unlink()
    # A clean stop releases the guard: a writable fd, then unload, work at once.
    assert map_errno(pins.MAP_DIR / "sn_state", read_only=False) == 0, err
    assert sentinel("unload").returncode == 0
    assert not pins.PIN_ROOT.exists()
