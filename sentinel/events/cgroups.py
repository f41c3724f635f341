"""Cgroup paths from the cgroup id the kernel captured with the event.

/proc/PID/cgroup is gone once a short-lived process exits, and names the
cgroup the process is in *now*. The id the hook recorded names the cgroup at
the moment of the event; on cgroup v2 it is the inode number of that cgroup's
directory in cgroupfs, so a directory walk maps ids to paths for as long as
the cgroup exists.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

CGROUP_ROOT = "/sys/fs/cgroup"
RESCAN_EVERY_S = 1.0  # an unknown id costs at most one walk per second


def walk_cgroups(root: str = CGROUP_ROOT) -> dict[int, str]:
    """Every cgroup directory under ROOT, by inode number, as the path
    /proc/PID/cgroup would show it ("/" for the root)."""
    found: dict[int, str] = {}
    try:
        found[os.stat(root).st_ino] = "/"
    except OSError:
        return found
    stack = [(root, "")]
    while stack:
        directory, rel = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue  # removed while we walked
        for entry in entries:
            try:
                if not entry.is_dir(follow_symlinks=False):
                    continue
                path = f"{rel}/{entry.name}"
                found[entry.inode()] = path
            except OSError:
                continue
            stack.append((entry.path, path))
    return found


class CgroupPaths:
    """id -> path, rebuilt by a walk when an id is not known yet."""

    def __init__(self, walk: Callable[[], dict[int, str]] = walk_cgroups,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._walk = walk
        self._clock = clock
        self._paths: dict[int, str] = {}
        self._walked_at: float | None = None

    def path(self, cgroup_id: int) -> str | None:
        if not cgroup_id:
            return None
        found = self._paths.get(cgroup_id)
        if found is not None:
            return found
        now = self._clock()
        if self._walked_at is None or now - self._walked_at >= RESCAN_EVERY_S:
            self._walked_at = now
            self._paths = self._walk()  # replaced, not merged: removed cgroups drop out
            return self._paths.get(cgroup_id)
        return None
