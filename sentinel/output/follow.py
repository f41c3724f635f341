"""Read a JSON-lines file as it grows, across rotation (for `sentinel events`).

A follower holds the file open by descriptor, so when JsonlWriter renames
PATH to PATH.1 it keeps reading the old inode to its end before it switches
to the new PATH, and no line written just before the rotation is missed.
When several rotations happened between two reads, the files rotated past
unseen are read too (as long as they are still kept).
Only complete lines are returned; a line still being written (no newline
yet) waits for the next read.
"""

from __future__ import annotations

import os
from typing import BinaryIO

_CHUNK = 1 << 16


class LineFollower:
    """`read_available()` returns the complete lines added since the last call."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: BinaryIO | None = None
        self._partial = b""

    def read_available(self) -> list[bytes]:
        lines: list[bytes] = []
        if self._file is None and not self._open():
            return lines
        assert self._file is not None
        lines.extend(self._drain())
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return lines  # between rename and re-create: keep the old file
        if st.st_ino != os.fstat(self._file.fileno()).st_ino:
            # Rotated: finish the old inode, then start the new file at 0.
            lines.extend(self._drain())
            if self._partial:
                lines.append(self._partial)  # writers end files on a newline
                self._partial = b""
            old_ino = os.fstat(self._file.fileno()).st_ino
            self._file.close()
            self._file = None
            lines.extend(self._skipped_rotations(old_ino))
            if self._open():
                lines.extend(self._drain())
        elif st.st_size < self._file.tell():
            # Truncated in place (copytruncate): start again from the top.
            self._file.seek(0)
            self._partial = b""
            lines.extend(self._drain())
        return lines

    def _skipped_rotations(self, old_ino: int) -> list[bytes]:
        """Whole files rotated past us since the last read.

        If the writer rotated more than once between two reads, our old inode
        is now PATH.k; PATH.(k-1) .. PATH.1 were written and rotated away
        without us ever opening them. Read them, oldest first.
        """
        k = 1
        while True:
            try:
                if os.stat(f"{self.path}.{k}").st_ino == old_ino:
                    break
            except FileNotFoundError:
                return []  # not found (keep=0, or deleted): nothing to recover
            k += 1
        lines: list[bytes] = []
        for n in range(k - 1, 0, -1):
            try:
                with open(f"{self.path}.{n}", "rb") as f:
                    lines.extend(line for line in f.read().split(b"\n") if line)
            except FileNotFoundError:
                continue
        return lines

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> bool:
        try:
            self._file = open(self.path, "rb")
        except FileNotFoundError:
            return False
        return True

    def _drain(self) -> list[bytes]:
        assert self._file is not None
        lines: list[bytes] = []
        while True:
            chunk = self._file.read(_CHUNK)
            if not chunk:
                return lines
            data = self._partial + chunk
            *complete, self._partial = data.split(b"\n")
            lines.extend(line for line in complete if line)
