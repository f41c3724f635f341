"""kernel/libbpf.py's _check(), the one place a libbpf errno is read, on the
host: no libbpf call is made."""

from __future__ import annotations

import ctypes
import errno

import pytest

from sentinel.errors import KernelError
from sentinel.kernel import libbpf


def test_int_results_pass_through_and_minus_errno_raises() -> None:
    assert libbpf._check("op", 0) == 0
    assert libbpf._check("op", 7) == 7
    with pytest.raises(KernelError) as exc:
        libbpf._check("load x", -errno.EPERM, log=["verifier ", "says no\n"])
    assert exc.value.errno == errno.EPERM and exc.value.op == "load x" and "says no" in exc.value.log


def test_accepted_errnos_come_back_negated() -> None:
    assert libbpf._check("lookup", -errno.ENOENT, accept=frozenset({errno.ENOENT})) == -errno.ENOENT
    with pytest.raises(KernelError) as exc:
        libbpf._check("lookup", -errno.E2BIG, accept=frozenset({errno.ENOENT}))
    assert exc.value.errno == errno.E2BIG


def test_null_pointer_reads_errno() -> None:
    assert libbpf._check("open", 0x1000, pointer=True) == 0x1000
    ctypes.set_errno(errno.ENOENT)
    with pytest.raises(KernelError) as exc:
        libbpf._check("open", None, pointer=True)
    assert exc.value.errno == errno.ENOENT
    ctypes.set_errno(errno.EINTR)
    assert libbpf._check("open", 0, pointer=True, accept=frozenset({errno.EINTR})) == -errno.EINTR
