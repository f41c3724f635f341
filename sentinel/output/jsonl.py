"""Append JSON lines to a file, rotating by size.

Guarantees:
- A line is never split: every batch is written with whole lines only, and
  rotation happens *between* writes, before a batch that would push the file
  past `max_bytes`. (A single line larger than `max_bytes` still goes out
  whole, alone in its file.) `os.write` is retried on a short write so a line
  is never truncated either.
- Rotation is `PATH -> PATH.1 -> ... -> PATH.keep`; the oldest is dropped.
  Each step is a rename, so a reader following PATH (`sentinel events
  --follow`) sees the old inode end and a new file appear, never a gap.
- If something else renames or deletes PATH (logrotate without
  copytruncate), the writer notices within `reopen_check` seconds and
  reopens PATH instead of writing into a file nobody reads.

fsync policy: the file is opened O_APPEND with no user-space buffer, so a
written line survives a daemon crash as soon as `write` returns. What fsync
adds is survival of a *host* crash: `fsync_interval` seconds (default 1.0)
bounds how much of that can be lost; the file is also fsynced before every
rotation and on close. `fsync_interval=0` fsyncs every batch (slow: one disk
flush per batch), `None` never fsyncs.

In the daemon one QueuedSink thread owns a writer; a lock still guards it so
that direct use from several threads is safe as well.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence

from sentinel.output.record import Record

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_KEEP = 5


class JsonlWriter:
    """Writes records as lines to PATH with size-based rotation."""

    def __init__(
        self,
        path: str,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        keep: int = DEFAULT_KEEP,
        fsync_interval: float | None = 1.0,
        reopen_check: float = 1.0,
    ) -> None:
        if max_bytes <= 0 or keep < 0:
            raise ValueError("max_bytes must be positive and keep non-negative")
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.fsync_interval = fsync_interval
        self.reopen_check = reopen_check
        self.rotations = 0
        self.discarded = 0  # JSONL accepts any record; kept for the Writer interface
        self._lock = threading.Lock()
        self._fd = -1
        self._size = 0
        self._ino = 0
        self._dirty = False
        self._last_fsync = time.monotonic()
        self._last_check = time.monotonic()

    # -- Writer interface ------------------------------------------------

    def write(self, records: Sequence[Record]) -> None:
        """Append the records, one line each.

        Raises:
            OSError: the file cannot be opened or written (ENOSPC, EACCES...).
                Nothing is half-written on a retry: the caller retries the
                whole batch and at worst a prefix of it appears twice.
        """
        with self._lock:
            self._ensure_open()
            chunk: list[bytes] = []
            size = 0
            for record in records:
                line = record.data + b"\n"
                if chunk and self._size + size + len(line) > self.max_bytes:
                    self._write_all(b"".join(chunk))
                    chunk, size = [], 0
                if self._size > 0 and self._size + size + len(line) > self.max_bytes:
                    self._rotate()
                chunk.append(line)
                size += len(line)
            if chunk:
                self._write_all(b"".join(chunk))
            if self.fsync_interval is not None and (
                time.monotonic() - self._last_fsync >= self.fsync_interval
            ):
                self._fsync()

    def flush(self) -> None:
        """Called when the queue is idle: honour the fsync interval."""
        with self._lock:
            if self._dirty and self.fsync_interval is not None and (
                time.monotonic() - self._last_fsync >= self.fsync_interval
            ):
                self._fsync()

    def reset(self) -> None:
        """Drop the file descriptor after an error so the next write reopens."""
        with self._lock:
            self._close_fd()

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0 and self.fsync_interval is not None:
                self._fsync()
            self._close_fd()

    # -- internals -------------------------------------------------------

    def _ensure_open(self) -> None:
        now = time.monotonic()
        if self._fd >= 0 and now - self._last_check >= self.reopen_check:
            self._last_check = now
            try:
                moved = os.stat(self.path).st_ino != self._ino
            except FileNotFoundError:
                moved = True
            if moved:
                self._close_fd()
        if self._fd >= 0:
            return
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, mode=0o750, exist_ok=True)
        # 0o640: alerts name users, commands and files; not world-readable.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        st = os.fstat(fd)
        self._fd, self._size, self._ino = fd, st.st_size, st.st_ino

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
            self._size += written
        self._dirty = True

    def _rotate(self) -> None:
        if self.fsync_interval is not None:
            self._fsync()
        self._close_fd()
        if not os.path.exists(self.path):
            pass  # renamed away by someone else (logrotate): just start afresh
        elif self.keep == 0:
            os.unlink(self.path)
        else:
            # Shift only the contiguous run PATH.1..PATH.k: cost is the number
            # of files kept, not `keep`, and a gap absorbs the shift.
            last = 0
            while last < self.keep - 1 and os.path.exists(f"{self.path}.{last + 1}"):
                last += 1
            for n in range(last, 0, -1):
                os.replace(f"{self.path}.{n}", f"{self.path}.{n + 1}")
            os.replace(self.path, f"{self.path}.1")
        self.rotations += 1
        self._ensure_open()

    def _fsync(self) -> None:
        if self._fd >= 0 and self._dirty:
            os.fsync(self._fd)
            self._dirty = False
        self._last_fsync = time.monotonic()

    def _close_fd(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)
