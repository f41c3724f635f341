"""A thin, typed layer over libbpf (Debian's libbpf1) through ctypes.

Verbs: open and load an object, find maps and programs, look up / update /
delete / iterate map entries, attach programs, pin and unpin, consume a ring
buffer with a callback. Every failure becomes a KernelError carrying the errno
and libbpf's own messages (verifier output included), raised from one place:
`_check()`. Nothing above `sentinel.kernel` sees an errno.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sentinel.errors import KernelError, NotSupported

_c_void_p = ctypes.c_void_p
_c_int = ctypes.c_int
_c_char_p = ctypes.c_char_p
_c_size_t = ctypes.c_size_t

PRINT_FN = ctypes.CFUNCTYPE(_c_int, _c_int, _c_char_p, _c_void_p)
SAMPLE_FN = ctypes.CFUNCTYPE(_c_int, _c_void_p, _c_void_p, _c_size_t)

BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2


def _load_library() -> ctypes.CDLL:
    for name in ("libbpf.so.1", ctypes.util.find_library("bpf")):
        if not name:
            continue
        try:
            return ctypes.CDLL(name, use_errno=True)
        except OSError:
            continue
    raise NotSupported("load libbpf.so.1 (install Debian's libbpf1)")


_lib: ctypes.CDLL | None = None
_libc = ctypes.CDLL(None, use_errno=True)
_libc.vsnprintf.argtypes = [ctypes.c_char_p, _c_size_t, _c_char_p, _c_void_p]
_libc.vsnprintf.restype = _c_int

# libbpf prints through one global callback; messages are collected per thread
# while a call runs so that its error carries them.
_log_local = threading.local()


def _on_print(level: int, fmt: bytes | None, args: int | None) -> int:
    # libbpf prints a whole verifier log in one call; va_list cannot be
    # replayed from ctypes to size the buffer, so it is generous.
    buf = ctypes.create_string_buffer(1 << 20)
    _libc.vsnprintf(buf, len(buf), fmt, args)
    lines: list[str] | None = getattr(_log_local, "lines", None)
    if lines is not None:
        lines.append(buf.value.decode("utf-8", "replace"))
    return 0


_print_cb = PRINT_FN(_on_print)  # kept referenced: libbpf holds the pointer


def _proto(name: str, restype: Any, *argtypes: Any) -> None:
    assert _lib is not None
    fn = getattr(_lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)


def lib() -> ctypes.CDLL:
    """The loaded libbpf with prototypes declared (loaded on first use)."""
    global _lib
    if _lib is not None:
        return _lib
    _lib = _load_library()
    p = _proto
    p("libbpf_set_print", _c_void_p, PRINT_FN)
    p("libbpf_num_possible_cpus", _c_int)
    p("bpf_object__open_file", _c_void_p, _c_char_p, _c_void_p)
    p("bpf_object__load", _c_int, _c_void_p)
    p("bpf_object__close", None, _c_void_p)
    p("bpf_object__find_map_by_name", _c_void_p, _c_void_p, _c_char_p)
    p("bpf_object__find_program_by_name", _c_void_p, _c_void_p, _c_char_p)
    p("bpf_object__next_program", _c_void_p, _c_void_p, _c_void_p)
    p("bpf_object__next_map", _c_void_p, _c_void_p, _c_void_p)
    p("bpf_program__name", _c_char_p, _c_void_p)
    p("bpf_program__section_name", _c_char_p, _c_void_p)
    p("bpf_program__set_autoload", _c_int, _c_void_p, ctypes.c_bool)
    p("bpf_program__autoload", ctypes.c_bool, _c_void_p)
    p("bpf_program__fd", _c_int, _c_void_p)
    p("bpf_program__attach", _c_void_p, _c_void_p)
    p("bpf_map__name", _c_char_p, _c_void_p)
    p("bpf_map__fd", _c_int, _c_void_p)
    p("bpf_map__key_size", ctypes.c_uint32, _c_void_p)
    p("bpf_map__value_size", ctypes.c_uint32, _c_void_p)
    p("bpf_map__max_entries", ctypes.c_uint32, _c_void_p)
    p("bpf_map__type", _c_int, _c_void_p)
    p("bpf_map__set_max_entries", _c_int, _c_void_p, ctypes.c_uint32)
    p("bpf_map__set_pin_path", _c_int, _c_void_p, _c_char_p)
    p("bpf_map__reuse_fd", _c_int, _c_void_p, _c_int)
    p("bpf_link__pin", _c_int, _c_void_p, _c_char_p)
    p("bpf_link__fd", _c_int, _c_void_p)
    p("bpf_link__destroy", _c_int, _c_void_p)
    p("bpf_link__open", _c_void_p, _c_char_p)
    p("bpf_link__detach", _c_int, _c_void_p)
    p("bpf_map_update_elem", _c_int, _c_int, _c_void_p, _c_void_p, ctypes.c_uint64)
    p("bpf_map_lookup_elem", _c_int, _c_int, _c_void_p, _c_void_p)
    p("bpf_map_delete_elem", _c_int, _c_int, _c_void_p)
    p("bpf_map_get_next_key", _c_int, _c_int, _c_void_p, _c_void_p)
    p("bpf_map_update_batch", _c_int, _c_int, _c_void_p, _c_void_p, ctypes.POINTER(ctypes.c_uint32), _c_void_p)
    p("bpf_map_delete_batch", _c_int, _c_int, _c_void_p, ctypes.POINTER(ctypes.c_uint32), _c_void_p)
    p("bpf_map_lookup_batch", _c_int, _c_int, _c_void_p, _c_void_p, _c_void_p, _c_void_p,
      ctypes.POINTER(ctypes.c_uint32), _c_void_p)
    p("bpf_obj_pin", _c_int, _c_int, _c_char_p)
    p("bpf_obj_get", _c_int, _c_char_p)
    p("bpf_obj_get_opts", _c_int, _c_char_p, _c_void_p)
    p("ring_buffer__new", _c_void_p, _c_int, SAMPLE_FN, _c_void_p, _c_void_p)
    p("ring_buffer__poll", _c_int, _c_void_p, _c_int)
    p("ring_buffer__consume", _c_int, _c_void_p)
    p("ring_buffer__free", None, _c_void_p)
    p("libbpf_probe_bpf_prog_type", _c_int, _c_int, _c_void_p)
    _lib.libbpf_set_print(_print_cb)
    return _lib


@contextmanager
def _captured_log() -> Iterator[list[str]]:
    previous = getattr(_log_local, "lines", None)
    lines: list[str] = []
    _log_local.lines = lines
    try:
        yield lines
    finally:
        _log_local.lines = previous


_NO_ERRNOS: frozenset[int] = frozenset()
_ENOENT = frozenset({errno.ENOENT})
_EINTR = frozenset({errno.EINTR})


def _check(
    op: str,
    result: int | None,
    *,
    pointer: bool = False,
    log: list[str] | None = None,
    accept: frozenset[int] = _NO_ERRNOS,
) -> int:
    """Turn a libbpf return into a value or a KernelError: the one place an
    errno is read.

    libbpf 1.x returns NULL and sets errno for pointers, and -errno for ints
    (its bpf_* system call wrappers included). An errno in ACCEPT is an
    answer, not a failure (ENOENT: no such entry): it is returned negated,
    for the caller to act on. LOG: libbpf's messages during the call.
    """
    if pointer:
        if result:
            return result
        err = ctypes.get_errno()
    else:
        assert result is not None
        if result >= 0:
            return result
        err = -result
    if err in accept:
        return -err
    raise KernelError(op, err, "".join(log or []))


def possible_cpus() -> int:
    return int(_check("count possible CPUs", lib().libbpf_num_possible_cpus()))


# BPF_MAP_TYPE_PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH, PERCPU_CGROUP_STORAGE
PERCPU_MAP_TYPES = frozenset({5, 6, 10, 21})


def percpu_value_size(value_size: int) -> int:
    """Bytes of a per-CPU map value as user space sees it."""
    return ((value_size + 7) // 8) * 8 * possible_cpus()


# The kernel's own ENOTSUPP (include/linux/errno.h), which reaches user space
# from some map operations; the errno module has no name for it.
ENOTSUPP = 524

# Entries per batch system call, and the errnos with which a map type refuses
# batches.
BATCH_CHUNK = 4096
_BATCH_UNSUPPORTED = frozenset({errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP})


class Map:
    """A BPF map of an opened or loaded object, or a pinned one by fd.

    Keys and values are ctypes structures or raw bytes of the map's sizes.
    """

    def __init__(self, name: str, key_size: int, value_size: int, ptr: int | None = None, fd: int = -1) -> None:
        self.name = name
        self.key_size = key_size
        self.value_size = value_size
        self._ptr = ptr
        self._fd = fd
        self._batch_ok = True  # cleared when the kernel refuses batches for this map type

    @classmethod
    def from_object(cls, ptr: int) -> Map:
        L = lib()
        name = (L.bpf_map__name(ptr) or b"").decode()
        value_size = L.bpf_map__value_size(ptr)
        if L.bpf_map__type(ptr) in PERCPU_MAP_TYPES:
            # User space reads and writes one 8-byte-aligned value per possible CPU.
            value_size = percpu_value_size(value_size)
        return cls(name, L.bpf_map__key_size(ptr), value_size, ptr=ptr)

    @property
    def fd(self) -> int:
        # A loaded map's fd never changes: asked of libbpf once (a rule-set
        # load makes tens of thousands of map calls).
        if self._fd < 0 and self._ptr is not None:
            self._fd = int(_check(f"map {self.name}: fd (is the object loaded?)", lib().bpf_map__fd(self._ptr)))
        return self._fd

    def set_max_entries(self, n: int) -> None:
        """Before load only."""
        assert self._ptr is not None
        _check(f"map {self.name}: set max_entries {n}", lib().bpf_map__set_max_entries(self._ptr, n))

    def set_pin_path(self, path: str) -> None:
        """Before load: reuse the map pinned at PATH if compatible, else create and pin it there."""
        assert self._ptr is not None
        _check(f"map {self.name}: set pin path {path}", lib().bpf_map__set_pin_path(self._ptr, path.encode()))

    def _buf(self, data: bytes | ctypes.Structure | None, size: int) -> ctypes.Array[ctypes.c_char]:
        raw = bytes(data) if data is not None else b""
        if data is not None and len(raw) != size:
            raise KernelError(f"map {self.name}: {len(raw)}-byte buffer where {size} are expected")
        return ctypes.create_string_buffer(raw, size)

    def lookup(self, key: bytes | ctypes.Structure) -> bytes | None:
        """The value for KEY, or None when absent. Raises KernelError otherwise."""
        k = self._buf(key, self.key_size)
        v = ctypes.create_string_buffer(self.value_size)
        rc = _check(f"map {self.name}: lookup", lib().bpf_map_lookup_elem(self.fd, k, v), accept=_ENOENT)
        return None if rc < 0 else v.raw

    def update(self, key: bytes | ctypes.Structure, value: bytes | ctypes.Structure, flags: int = BPF_ANY) -> None:
        """Insert or replace. Raises KernelError (E2BIG when the map is full)."""
        k = self._buf(key, self.key_size)
        v = self._buf(value, self.value_size)
        _check(f"map {self.name}: update", lib().bpf_map_update_elem(self.fd, k, v, flags))

    def update_batch(self, keys: bytes, values: bytes) -> None:
        """Insert or replace many entries in one system call (array and hash maps).
        KEYS and VALUES are the entries' bytes laid end to end. Raises KernelError."""
        self._update_batch(keys, values)

    def _update_batch(self, keys: bytes, values: bytes, accept: frozenset[int] = _NO_ERRNOS) -> int:
        """update_batch; an errno in ACCEPT comes back negated instead of raised."""
        count = len(keys) // self.key_size
        if len(keys) != count * self.key_size or len(values) != count * self.value_size:
            raise KernelError(f"map {self.name}: batch of {len(keys)} key bytes / {len(values)} value bytes")
        n = ctypes.c_uint32(count)
        kbuf = ctypes.create_string_buffer(keys, len(keys))
        vbuf = ctypes.create_string_buffer(values, len(values))
        rc = lib().bpf_map_update_batch(self.fd, kbuf, vbuf, ctypes.byref(n), None)
        return _check(f"map {self.name}: batch update", rc, accept=accept)

    def update_many(self, entries: dict[bytes, bytes], chunk: int = BATCH_CHUNK) -> None:
        """Insert or replace ENTRIES, in batches of CHUNK where the map type
        takes batches (hash, array), else one call per entry (LPM tries)."""
        items = list(entries.items())
        start = 0
        if self._batch_ok:
            while start < len(items):
                part = items[start : start + chunk]
                keys, values = b"".join(k for k, _ in part), b"".join(v for _, v in part)
                if self._update_batch(keys, values, accept=_BATCH_UNSUPPORTED) < 0:
                    self._batch_ok = False
                    break
                start += len(part)
        for key, value in items[start:]:
            self.update(key, value)

    def delete_many(self, keys: list[bytes], chunk: int = BATCH_CHUNK) -> None:
        """Remove KEYS (all present), batched where the map type allows."""
        start = 0
        L = lib()
        if self._batch_ok:
            while start < len(keys):
                part = keys[start : start + chunk]
                n = ctypes.c_uint32(len(part))
                buf = ctypes.create_string_buffer(b"".join(part), len(part) * self.key_size)
                rc = _check(f"map {self.name}: batch delete", L.bpf_map_delete_batch(self.fd, buf, ctypes.byref(n), None),
                            accept=_BATCH_UNSUPPORTED)
                if rc < 0:
                    self._batch_ok = False
                    start += n.value  # what was deleted before the refusal
                    break
                start += len(part)
        for key in keys[start:]:
            self.delete(key)

    def all_keys(self, chunk: int = BATCH_CHUNK) -> list[bytes]:
        """Every key, read in batches where the map type allows (else key by key)."""
        if not self._batch_ok or self.value_size * chunk > 64 << 20:
            return list(self.keys())
        L = lib()
        out: list[bytes] = []
        token_in = ctypes.create_string_buffer(max(self.key_size, 8))
        token_out = ctypes.create_string_buffer(max(self.key_size, 8))
        kbuf = ctypes.create_string_buffer(chunk * self.key_size)
        vbuf = ctypes.create_string_buffer(chunk * self.value_size)
        first = True
        while True:
            n = ctypes.c_uint32(chunk)
            rc = L.bpf_map_lookup_batch(self.fd, None if first else token_in, token_out, kbuf, vbuf, ctypes.byref(n), None)
            # ENOENT ends the walk; only the first batch may find batches refused.
            rc = _check(f"map {self.name}: batch lookup", rc,
                        accept=(_ENOENT | _BATCH_UNSUPPORTED) if first else _ENOENT)
            if rc < 0 and -rc != errno.ENOENT:
                self._batch_ok = False
                return list(self.keys())
            raw = kbuf.raw
            out += [raw[i * self.key_size : (i + 1) * self.key_size] for i in range(n.value)]
            if rc < 0:  # ENOENT: the walk is over (the last entries came with it)
                return out
            ctypes.memmove(token_in, token_out, len(token_out))
            first = False

    def delete(self, key: bytes | ctypes.Structure) -> bool:
        """Remove KEY; False when it was absent."""
        k = self._buf(key, self.key_size)
        return _check(f"map {self.name}: delete", lib().bpf_map_delete_elem(self.fd, k), accept=_ENOENT) >= 0

    def keys(self) -> Iterator[bytes]:
        """Every key. Entries changed during the walk may be seen or missed."""
        L = lib()
        cur: ctypes.Array[ctypes.c_char] | None = None
        nxt = ctypes.create_string_buffer(self.key_size)
        while True:
            if _check(f"map {self.name}: next key", L.bpf_map_get_next_key(self.fd, cur, nxt), accept=_ENOENT) < 0:
                return  # past the last key
            yield nxt.raw
            cur = ctypes.create_string_buffer(nxt.raw, self.key_size)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for key in self.keys():
            value = self.lookup(key)
            if value is not None:
                yield key, value

    def pin(self, path: str) -> None:
        _check(f"pin map {self.name} at {path}", lib().bpf_obj_pin(self.fd, path.encode()))

    def close(self) -> None:
        """Close an fd this Map owns (pinned maps opened by path)."""
        if self._ptr is None and self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


BPF_F_RDONLY = 1 << 3


class _obj_get_opts(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("file_flags", ctypes.c_uint32), ("_pad", ctypes.c_uint32)]


def open_pinned_map(path: str, name: str, key_size: int, value_size: int, read_only: bool = False) -> Map:
    """A map pinned at PATH. Raises KernelError (ENOENT when nothing is pinned).

    READ_ONLY asks for a read-only fd, which sentinel's guard grants to anyone
    (writable fds on its maps are the daemon's alone while it runs)."""
    if read_only:
        opts = _obj_get_opts(sz=ctypes.sizeof(_obj_get_opts), file_flags=BPF_F_RDONLY)
        rc = lib().bpf_obj_get_opts(path.encode(), ctypes.byref(opts))
    else:
        rc = lib().bpf_obj_get(path.encode())
    fd = _check(f"open pinned map {path}", rc)
    return Map(name, key_size, value_size, fd=fd)


class Link:
    """An attached program. Destroying the Link object detaches it unless pinned."""

    def __init__(self, ptr: int, name: str) -> None:
        self._ptr: int | None = ptr
        self.name = name

    @classmethod
    def open_pinned(cls, path: str) -> Link:
        with _captured_log() as log:
            ptr = _check(f"open pinned link {path}", lib().bpf_link__open(path.encode()), pointer=True, log=log)
        return cls(ptr, os.path.basename(path))

    def pin(self, path: str) -> None:
        assert self._ptr is not None
        with _captured_log() as log:
            _check(f"pin link {self.name} at {path}", lib().bpf_link__pin(self._ptr, path.encode()), log=log)

    def detach(self) -> None:
        """Detach from the hook now, even though pins or other fds still hold it."""
        assert self._ptr is not None
        _check(f"detach link {self.name}", lib().bpf_link__detach(self._ptr))

    def close(self) -> None:
        """Release our handle; the attachment lives on while it is pinned.

        For fd-based links libbpf's destroy only closes the fd, which is what
        we want. (bpf_link__disconnect would skip that close and leak the fd,
        keeping the program attached for as long as this process lives.)
        """
        if self._ptr is not None:
            lib().bpf_link__destroy(self._ptr)
            self._ptr = None


class Program:
    def __init__(self, ptr: int) -> None:
        self._ptr = ptr
        self.name = (lib().bpf_program__name(ptr) or b"").decode()
        self.section = (lib().bpf_program__section_name(ptr) or b"").decode()

    def set_autoload(self, enabled: bool) -> None:
        _check(f"program {self.name}: set autoload", lib().bpf_program__set_autoload(self._ptr, enabled))

    @property
    def autoload(self) -> bool:
        return bool(lib().bpf_program__autoload(self._ptr))

    def attach(self) -> Link:
        """Attach by section type. Raises KernelError with libbpf's reason."""
        with _captured_log() as log:
            ptr = _check(f"attach {self.name}", lib().bpf_program__attach(self._ptr), pointer=True, log=log)
        return Link(ptr, self.name)


class BpfObject:
    """An opened object file: set autoload and map options, then load()."""

    def __init__(self, path: str) -> None:
        self.path = path
        with _captured_log() as log:
            self._ptr: int | None = _check(
                f"open {path}", lib().bpf_object__open_file(path.encode(), None), pointer=True, log=log
            )
        self.programs = {p.name: p for p in self._iter(lib().bpf_object__next_program, Program)}
        self.maps = {m.name: m for m in self._iter(lib().bpf_object__next_map, Map.from_object)}

    def _iter(self, step: Callable[[int | None, int | None], int | None], make: Callable[[int], Any]) -> Iterator[Any]:
        cur: int | None = None
        while True:
            cur = step(self._ptr, cur)
            if not cur:
                return
            yield make(cur)

    def load(self) -> None:
        """Load every autoloaded program and create or reuse the maps.

        Raises KernelError whose log holds the verifier's output.
        """
        with _captured_log() as log:
            _check(f"load {os.path.basename(self.path)}", lib().bpf_object__load(self._ptr), log=log)

    def close(self) -> None:
        """Free the object. Attached programs stay only where links are pinned."""
        if self._ptr is not None:
            lib().bpf_object__close(self._ptr)
            self._ptr = None


_BUDGET_SPENT = -11  # what the sample callback returns to end a poll early


class RingBuffer:
    """Consume a BPF ring buffer, calling CALLBACK(bytes) per record.

    libbpf keeps consuming for as long as producers keep producing, so under
    a flood one poll would never return and the caller could never reload or
    stop. Each poll or consume handles at most BUDGET records: the callback
    ends it early (the record it was given is consumed and handled first).
    It also ends as soon as CUT_SHORT() is true, checked after every record,
    so that (in the daemon) a pending reload waits for one record, not for a
    whole budget.
    """

    def __init__(
        self,
        ring: Map,
        callback: Callable[[bytes], None],
        budget: int = 1024,
        cut_short: Callable[[], bool] = lambda: False,
    ) -> None:
        self._callback = callback
        self._error: BaseException | None = None
        self.budget = budget
        self._handled = 0
        self._ended_early = False

        def sample(_ctx: int | None, data: int | None, size: int) -> int:
            try:
                callback(ctypes.string_at(data or 0, size))
            except BaseException as exc:  # never unwind through C
                self._error = exc
                return -1
            self._handled += 1
            if self._handled >= self.budget or cut_short():
                self._ended_early = True
                return _BUDGET_SPENT
            return 0

        self._sample = SAMPLE_FN(sample)
        with _captured_log() as log:
            self._ptr: int | None = _check(
                f"ring buffer on {ring.name}",
                lib().ring_buffer__new(ring.fd, self._sample, None, None),
                pointer=True,
                log=log,
            )

    def poll(self, timeout_ms: int) -> int:
        """Wait up to TIMEOUT_MS for records and consume up to the budget; returns how many."""
        self._handled, self._ended_early = 0, False
        n = int(lib().ring_buffer__poll(self._ptr, timeout_ms))
        self._raise_callback_error()
        if n == _BUDGET_SPENT and self._ended_early:
            return self._handled
        # EINTR: a signal arrived, the caller will look.
        return max(_check("poll ring buffer", n, accept=_EINTR), 0)

    def consume(self) -> int:
        """Consume what is there now, up to the budget; returns how many."""
        self._handled, self._ended_early = 0, False
        n = int(lib().ring_buffer__consume(self._ptr))
        self._raise_callback_error()
        if n == _BUDGET_SPENT and self._ended_early:
            return self._handled
        return int(_check("consume ring buffer", n))

    def _raise_callback_error(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def close(self) -> None:
        if self._ptr is not None:
            lib().ring_buffer__free(self._ptr)
            self._ptr = None
