"""Rule paths -> the identities the kernel hooks see, asked of the kernel.

stat() is not always the hooks' view: overlayfs, btrfs and 9p report another
device than the inode the hooks get (overlayfs even shows the hook two
inodes). So a path is resolved by opening it while the open hook records this
process's opens (sn_probe).

That costs five map operations and an open per path, which dominated the load
of large rule sets (~100 s of a 10,000-rule load under emulation). Two things
keep the cost down without giving up the kernel's word:
- one probing session per rule set: the daemon is marked as the prober once,
  not once per path;
- a device whose file system is one where stat() is the inode itself
  (STAT_EXACT_FS: the kernel's s_dev and i_ino, by generic_fillattr) and
  whose first probe agreed with stat() is then read by stat() alone, for
  the rest of that rule set.
Every other device is probed path by path.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sentinel.kernel import abi
from sentinel.kernel.encode import FileIdentity, process_start_ticks
from sentinel.kernel.libbpf import Map

# File systems whose getattr reports the inode's own i_ino and the super
# block's s_dev (generic_fillattr), for every object.
STAT_EXACT_FS = frozenset({"tmpfs", "ramfs", "devtmpfs", "ext2", "ext3", "ext4", "xfs", "vfat", "msdos", "exfat"})

_OPEN_FLAGS = os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC


def mount_fs_types(mountinfo: str = "/proc/self/mountinfo") -> dict[int, str]:
    """st_dev -> file system type, for every mount this process sees."""
    out: dict[int, str] = {}
    try:
        text = Path(mountinfo).read_text()
    except OSError:
        return out
    for line in text.splitlines():
        fields = line.split()
        try:
            major, minor = (int(x) for x in fields[2].split(":"))
            fstype = fields[fields.index("-") + 1]
        except (IndexError, ValueError):
            continue
        out[os.makedev(major, minor)] = fstype
    return out


class KernelResolver:
    """Resolve paths through the open hook, within one probing session.

    Use `with resolver.session():` around a rule set's encoding; calls made
    outside a session open one for that call only.
    """

    def __init__(self, probe: Map, state: Map, current_gen: Callable[[], int]) -> None:
        self._probe = probe
        self._state = state
        self._current_gen = current_gen
        self._gen = 0
        self._active = False
        self._stat_exact: set[int] = set()  # st_dev values proven, this session, to be read right by stat()
        self._fs_types: dict[int, str] = {}
        self._seen: dict[str, list[FileIdentity] | OSError] = {}

    @contextmanager
    def session(self) -> Iterator[KernelResolver]:
        if self._active:
            yield self
            return
        zero = (0).to_bytes(4, "little")
        pid = os.getpid()
        # Per session: a device number freed by an unmount can name another
        # file system at the next load.
        self._fs_types = mount_fs_types()
        self._stat_exact = set()
        self._seen = {}
        # sn_state holds the generation in force too: rewritten as it is now.
        self._gen = self._current_gen()
        self._state.update(zero, bytes(abi.sn_state(gen=self._gen, probe_tgid=pid, probe_ticks=process_start_ticks(pid))))
        self._active = True
        try:
            yield self
        finally:
            self._active = False
            self._state.update(zero, bytes(abi.sn_state(gen=self._gen)))

    def __call__(self, path: str) -> list[FileIdentity]:
        """The identities the hooks see for the object at PATH.
        Raises OSError when nothing is at PATH."""
        if not self._active:
            with self.session():
                return self(path)
        known = self._seen.get(path)
        if isinstance(known, OSError):
            raise known
        if known is None:
            try:
                known = self._resolve(path)
            except OSError as exc:
                self._seen[path] = exc
                raise
            self._seen[path] = known
        return list(known)

    def _resolve(self, path: str) -> list[FileIdentity]:
        st = os.stat(path)
        by_stat = FileIdentity(abi.kernel_dev(st.st_dev), st.st_ino)
        if st.st_dev in self._stat_exact or not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            return [by_stat]  # only regular files and directories are opened to probe
        seen = self._probe_open(path, stat.S_ISDIR(st.st_mode))
        if not seen:
            return [by_stat]  # the hook recorded nothing: stat() is all there is
        if seen == [by_stat] and self._fs_types.get(st.st_dev) in STAT_EXACT_FS:
            self._stat_exact.add(st.st_dev)
        return seen

    def _probe_open(self, path: str, is_dir: bool) -> list[FileIdentity]:
        zero = (0).to_bytes(4, "little")
        self._probe.update(zero, bytes(abi.sn_probe()))
        fd = os.open(path, _OPEN_FLAGS | (os.O_DIRECTORY if is_dir else 0))
        os.close(fd)
        raw = self._probe.lookup(zero)
        seen = abi.sn_probe.from_buffer_copy(raw) if raw else abi.sn_probe()
        found: list[FileIdentity] = []
        for i in range(min(seen.count, abi.PROBE_IDS)):
            ident = FileIdentity(seen.dev[i], seen.ino[i])
            if ident not in found:
                found.append(ident)
        return found
