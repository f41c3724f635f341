"""MemoryDenyWriteExecute=yes with ctypes callbacks.

The daemon's ring-buffer and libbpf print callbacks are ctypes callbacks,
i.e. libffi closures. systemd's MemoryDenyWriteExecute refuses mmap with
PROT_WRITE|PROT_EXEC and mprotect adding PROT_EXEC (EPERM). A preloaded shim
refuses the same calls at the libc level, and the packaged payload must
still create and call a libbpf SAMPLE_FN callback: Debian's libffi then
falls back to a memfd mapped twice (writable, and read+execute).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.packaging.conftest import SYSTEM_PYTHON

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/mman.h>
void *mmap(void *a, size_t l, int p, int f, int fd, off_t o) {
  static void *(*real)(void *, size_t, int, int, int, off_t);
  if (!real) real = dlsym(RTLD_NEXT, "mmap");
  if ((p & PROT_WRITE) && (p & PROT_EXEC)) { errno = EPERM; return MAP_FAILED; }
  return real(a, l, p, f, fd, o);
}
int mprotect(void *a, size_t l, int p) {
  static int (*real)(void *, size_t, int);
  if (!real) real = dlsym(RTLD_NEXT, "mprotect");
  if (p & PROT_EXEC) { errno = EPERM; return -1; }
  return real(a, l, p);
}
"""

PROBE = r"""
import ctypes, sys
sys.path.insert(0, sys.argv[1])
from sentinel.kernel import libbpf

seen = []
def on_sample(ctx, data, size):
    seen.append(size)
    return 0

cb = libbpf.SAMPLE_FN(on_sample)
addr = ctypes.cast(cb, ctypes.c_void_p).value
# Call the closure through its native address, as libbpf would.
assert libbpf.SAMPLE_FN(addr)(None, None, 42) == 0 and seen == [42], seen
where, wx = "?", []
for line in open("/proc/self/maps"):
    fields = line.split()
    lo, hi = (int(x, 16) for x in fields[0].split("-"))
    if lo <= addr < hi:
        where = line.strip()
    if "w" in fields[1] and "x" in fields[1]:
        wx.append(line.strip())
print("callback:", where)
print("wx:", wx)
"""


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler for the MDWE shim")
    d = tmp_path_factory.mktemp("mdwe")
    (d / "mdwe.c").write_text(SHIM)
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(d / "mdwe.so"), str(d / "mdwe.c"), "-ldl"], check=True)
    return d / "mdwe.so"


def _probe(installed_root: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [str(SYSTEM_PYTHON), "-I", "-c", PROBE, str(installed_root / "usr/lib/sentinel/python")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_ctypes_callback_works_without_write_execute_memory(installed_root: Path, shim: Path) -> None:
    out = _probe(installed_root, {**os.environ, "LD_PRELOAD": str(shim)})
    assert "wx: []" in out, out
    # The closure runs from libffi's double-mapped memfd, not anonymous W+X memory.
    assert "r-xs" in out and "memfd:libffi" in out, out


def test_shim_changes_what_libffi_does(installed_root: Path) -> None:
    """Without the shim libffi takes an anonymous W+X page: so the test above
    passes because the fallback works, not because nothing needed W+X."""
    out = _probe(installed_root, dict(os.environ))
    assert "memfd:libffi" not in out.split("callback:")[1].splitlines()[0], out
