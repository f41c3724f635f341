"""Executable mappings are exec, and `fileless: true` exec rules, in the kernel.

A denied program run through the dynamic loader (`ld.so PROG` maps PROG, it
never execve's it), a denied library loaded with dlopen, and mprotect(PROT_EXEC)
of a read-only mapping of a denied file all fail with EPERM and raise an exec
alert with `file.via: mmap`; everything no rule names keeps loading. One
daemon serves every scenario (a start costs ~30 s under emulation).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kernel.conftest import Daemon, start_daemon, unload_in_process

pytestmark = pytest.mark.kernel

ROOT = Path("/run/sentinel-mmap")
LDSO = "/lib64/ld-linux-x86-64.so.2"
LIBZ = "/lib/x86_64-linux-gnu/libz.so.1"
EPERM = "1"

POLICY = f"""\
apiVersion: sentinel/v1
kind: Policy
metadata:
  name: mappings
spec:
  rules:
    - id: no-denied-prog
      operation: exec
      action: deny
      severity: high
      match:
        paths: [{ROOT}/bin/denied-prog, {ROOT}/lib/libdenied.so]
    - id: no-untrusted
      operation: exec
      action: deny
      match:
        prefixes: [{ROOT}/untrusted/]
    - id: audit-watched
      operation: exec
      action: audit
      match:
        paths: [{ROOT}/bin/watched-prog]
"""

FILELESS_POLICY = """\
apiVersion: sentinel/v1
kind: Policy
metadata:
  name: no-fileless
spec:
  rules:
    - id: no-fileless-exec
      operation: exec
      action: deny
      severity: critical
      match:
        fileless: true
"""


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    unload_in_process()
    ROOT.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", str(ROOT)], check=True)
    for d in ("bin", "lib", "untrusted", "policies", "scratch"):
        (ROOT / d).mkdir()
    for name in ("denied-prog", "allowed-prog", "watched-prog"):
        shutil.copy("/bin/true", ROOT / "bin" / name)
    shutil.copy("/bin/true", ROOT / "untrusted/prog")
    shutil.copy(LIBZ, ROOT / "lib/libdenied.so")
    shutil.copy(LIBZ, ROOT / "lib/liballowed.so")
    shutil.copy("/bin/true", ROOT / "scratch/to-delete")
    helper = ROOT / "bin/sn-mmap"
    subprocess.run(["gcc", "-O2", "-o", str(helper), str(Path(__file__).with_name("sn_mmap.c"))], check=True)
    (ROOT / "policies/mappings.yaml").write_text(POLICY)
    (ROOT / "policies/fileless.yaml").write_text(FILELESS_POLICY)
    d = start_daemon(ROOT / "policies", ROOT / "events.jsonl")
    yield d
    d.stop()
    unload_in_process()
    subprocess.run(["umount", "-l", str(ROOT)], check=False)


@pytest.fixture(autouse=True)
def clean_kernel() -> Iterator[None]:
    yield  # the module's daemon stays loaded across these tests


def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60)


def helper(*args: str | Path) -> str:
    r = run(ROOT / "bin/sn-mmap", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def mmap_alerts(daemon: Daemon, path: Path) -> list[dict[str, object]]:
    return daemon.wait_for(lambda a: a["event"]["operation"] == "exec"
                           and a["file"].get("via") == "mmap" and a["file"]["path"] == str(path))


def test_loader_cannot_run_a_denied_program(daemon: Daemon) -> None:
    denied = ROOT / "bin/denied-prog"
    assert run(LDSO, ROOT / "bin/allowed-prog").returncode == 0  # negative control
    assert run(LDSO, "/bin/true").returncode == 0
    r = run(LDSO, denied)
    # ld.so reports the failed mmap (EPERM, see the helper test below) as:
    assert r.returncode == 127 and "failed to map segment" in r.stderr, r.stderr
    alerts = mmap_alerts(daemon, denied)
    assert alerts, daemon.events()
    a = alerts[0]
    assert a["event"]["action"] == "deny" and a["event"]["outcome"] == "blocked"
    assert a["rule"] == {"id": "no-denied-prog", "severity": "high"}
    assert a["process"]["pid"] > 0


def test_loader_and_prefix_rule(daemon: Daemon) -> None:
    r = run(LDSO, ROOT / "untrusted/prog")
    assert r.returncode == 127 and "failed to map segment" in r.stderr, r.stderr
    alerts = mmap_alerts(daemon, ROOT / "untrusted/prog")
    assert alerts and alerts[0]["rule"]["id"] == "no-untrusted"


def test_direct_exec_is_still_denied_by_bprm_check(daemon: Daemon) -> None:
    with pytest.raises(PermissionError):
        subprocess.run([str(ROOT / "bin/denied-prog")])
    # The exec failed with EPERM in the caller; nothing was killed by a signal.
    code = f"import os\ntry:\n    os.execv({str(ROOT / 'bin/denied-prog')!r}, ['x'])\nexcept OSError as e:\n    print(e.errno)\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == EPERM
    execs = daemon.wait_for(lambda a: a["event"]["operation"] == "exec" and "via" not in a["file"]
                            and a["file"]["path"] == str(ROOT / "bin/denied-prog"))
    assert execs


def test_denied_library_does_not_load(daemon: Daemon) -> None:
    code = "import ctypes, sys\ntry:\n    ctypes.CDLL(sys.argv[1])\n    print('loaded')\nexcept OSError as e:\n    print('failed', e)\n"
    ok = subprocess.run([sys.executable, "-c", code, str(ROOT / "lib/liballowed.so")], capture_output=True, text=True)
    assert ok.stdout.startswith("loaded"), ok.stdout + ok.stderr
    bad = subprocess.run([sys.executable, "-c", code, str(ROOT / "lib/libdenied.so")], capture_output=True, text=True)
    assert bad.stdout.startswith("failed"), bad.stdout + bad.stderr
    assert "failed to map segment" in bad.stdout
    alerts = mmap_alerts(daemon, ROOT / "lib/libdenied.so")
    assert alerts and alerts[0]["rule"]["id"] == "no-denied-prog"


def test_mmap_and_mprotect_exec_of_a_denied_file(daemon: Daemon) -> None:
    assert helper("mmap", ROOT / "bin/allowed-prog") == "0"
    assert helper("mprotect", ROOT / "bin/allowed-prog") == "0"
    assert helper("mmap", ROOT / "bin/denied-prog") == EPERM
    # A read-only mapping is no exec: it is made; making it executable is denied.
    assert helper("mprotect", ROOT / "bin/denied-prog") == EPERM
    assert (ROOT / "bin/denied-prog").read_bytes()[:4] == b"\x7fELF"  # reading stays allowed
    # This helper's two alerts (mmap, then mprotect, whose path is built by a
    # dentry walk: no bpf_d_path in file_mprotect) arrive after ld.so's.
    deadline = time.monotonic() + 30
    mine: list[dict[str, object]] = []
    while time.monotonic() < deadline and len(mine) < 2:
        mine = [a for a in mmap_alerts(daemon, ROOT / "bin/denied-prog")
                if a["process"]["comm"] == "sn-mmap"]  # type: ignore[index]
        time.sleep(0.2)
    assert len(mine) >= 2, mine


def test_audit_rule_alerts_on_mapping_without_blocking(daemon: Daemon) -> None:
    assert run(LDSO, ROOT / "bin/watched-prog").returncode == 0
    alerts = mmap_alerts(daemon, ROOT / "bin/watched-prog")
    assert alerts and alerts[0]["event"]["action"] == "audit"
    assert alerts[0]["event"]["outcome"] == "allowed"


def test_ordinary_programs_keep_running(daemon: Daemon) -> None:
    """Every dynamically linked program maps ld.so, libc and its libraries
    executable: none of them is named by a rule, so nothing changes."""
    assert run("/bin/sh", "-c", "ls / >/dev/null && python3 -c 'import ssl' 2>/dev/null; true").returncode == 0
    assert run(sys.executable, "-c", "import ctypes, ctypes.util; ctypes.CDLL(ctypes.util.find_library('z'))").returncode == 0
    names = {a["file"]["path"] for a in daemon.events() if a.get("file", {}).get("via") == "mmap"}
    named = {str(ROOT / p) for p in ("bin/denied-prog", "lib/libdenied.so", "untrusted/prog", "bin/watched-prog")}
    assert {n for n in names if "memfd:" not in n} <= named


# ---- fileless: true -------------------------------------------------------


def fileless_alerts(daemon: Daemon, via: str | None = None) -> list[dict[str, object]]:
    return daemon.wait_for(lambda a: a["rule"]["id"] == "no-fileless-exec" and a.get("file", {}).get("via") == via)


def test_memfd_exec_is_denied(daemon: Daemon) -> None:
    assert run(ROOT / "bin/allowed-prog").returncode == 0  # a normal exec is unaffected
    assert helper("memfd-exec", "/bin/true") == EPERM  # execveat(fd, "", AT_EMPTY_PATH)
    assert helper("memfd-proc-exec", "/bin/true") == EPERM  # /proc/self/fd/N
    alerts = fileless_alerts(daemon)
    assert alerts and alerts[0]["event"]["action"] == "deny"
    assert alerts[0]["event"]["operation"] == "exec" and alerts[0]["rule"]["severity"] == "critical"


def test_deleted_and_tmpfile_exec_are_denied(daemon: Daemon) -> None:
    assert helper("deleted-exec", ROOT / "scratch/to-delete") == EPERM
    assert helper("tmpfile-exec", ROOT / "scratch", "/bin/true") == EPERM
    # BPF-LSM names the deleted file ("PATH (deleted)"); fmod_ret, which has no
    # bpf_d_path there, reports the name asked for (/proc/self/fd/N).
    paths = [a["file"]["path"] for a in fileless_alerts(daemon)]
    assert any("to-delete" in p or "/proc/self/fd/" in p for p in paths), paths


def test_memfd_executable_mapping_is_denied(daemon: Daemon) -> None:
    assert helper("memfd-mmap", "/bin/true") == EPERM
    assert fileless_alerts(daemon, via="mmap")
    # An executable mapping of a named file stays allowed.
    assert helper("mmap", ROOT / "bin/allowed-prog") == "0"
