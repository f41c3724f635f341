"""mount_fs_types: which file system each device is, from mountinfo (host-side)."""

from __future__ import annotations

import os
from pathlib import Path

from sentinel.kernel.resolve import STAT_EXACT_FS, mount_fs_types

SAMPLE = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:26 / /run rw,nosuid shared:5 - tmpfs tmpfs rw,size=1632k
41 22 0:35 / /var/lib/docker/overlay2/x/merged rw - overlay overlay rw,lowerdir=/a,upperdir=/b
52 22 0:40 / /mnt/with\\040space rw shared:9 master:2 - btrfs /dev/sdb rw
bad line
"""


def test_device_numbers_map_to_their_file_system(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(SAMPLE)
    types = mount_fs_types(str(info))
    assert types == {
        os.makedev(8, 1): "ext4",
        os.makedev(0, 26): "tmpfs",
        os.makedev(0, 35): "overlay",
        os.makedev(0, 40): "btrfs",  # optional fields (master:2) before the separator
    }
    # Only file systems where stat() is the inode the hooks see skip the probe.
    assert {"ext4", "tmpfs"} <= STAT_EXACT_FS
    assert not {"overlay", "btrfs", "9p", "nfs", "fuse"} & STAT_EXACT_FS


def test_unreadable_mountinfo_means_probe_everything(tmp_path: Path) -> None:
    assert mount_fs_types(str(tmp_path / "absent")) == {}
