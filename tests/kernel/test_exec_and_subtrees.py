"""exec rules and subtree (prefix) rules in the kernel, against aliases.

One daemon serves every scenario here (starting one costs ~15 s under
emulation); each test uses its own files under the shared tmpfs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kernel.conftest import Daemon, sentinel, start_daemon, unload_in_process

pytestmark = pytest.mark.kernel

ROOT = Path("/run/sentinel-x")

POLICY = f"""\
apiVersion: sentinel/v1
kind: Policy
metadata:
  name: hardening
spec:
  rules:
    - id: no-forbidden-bin
      operation: exec
      action: deny
      severity: critical
      match:
        paths: [{ROOT}/bin/forbidden]
    - id: no-exec-untrusted
      operation: exec
      action: deny
      match:
        prefixes: [{ROOT}/untrusted/]
    - id: no-secrets
      operation: open
      action: deny
      match:
        prefixes: [{ROOT}/secrets/]
    - id: public-exception
      operation: open
      action: allow
      match:
        paths: [{ROOT}/secrets/public.txt]
    - id: audit-logs
      operation: open
      action: audit
      severity: low
      match:
        prefixes: [{ROOT}/logs/]
        access: [write]
"""


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    unload_in_process()
    ROOT.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(ROOT)], check=True)
    for d in ("bin", "untrusted/deep", "secrets/sub", "logs", "other"):
        (ROOT / d).mkdir(parents=True)
    shutil.copy("/bin/true", ROOT / "bin/forbidden")
    shutil.copy("/bin/true", ROOT / "bin/allowed")
    shutil.copy("/bin/sh", ROOT / "bin/forbidden-sh")
    (ROOT / "secrets/key").write_text("k\n")
    (ROOT / "secrets/public.txt").write_text("p\n")
    (ROOT / "other/file").write_text("o\n")
    policy = ROOT / "policy.yaml"
    policy.write_text(POLICY)
    d = start_daemon(policy, ROOT / "events.jsonl")
    yield d
    d.stop()
    unload_in_process()
    subprocess.run(["umount", "-l", str(ROOT)], check=False)


@pytest.fixture(autouse=True)
def clean_kernel() -> Iterator[None]:
    yield  # the module's daemon stays loaded across these tests


def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True)


def exec_errno(code: str) -> str:
    """Run CODE in a child python that reports the errno of its exec attempt."""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return (r.stdout + r.stderr).strip().splitlines()[-1] if (r.stdout + r.stderr).strip() else f"rc={r.returncode}"


def test_exec_by_path_symlink_and_fd(daemon: Daemon, tmp_path: Path) -> None:
    assert run(ROOT / "bin/allowed").returncode == 0  # negative control
    with pytest.raises(PermissionError):
        subprocess.run([str(ROOT / "bin/forbidden")], check=True)
    link = ROOT / "other/alias"
    link.symlink_to(ROOT / "bin/forbidden")
    with pytest.raises(PermissionError):
        subprocess.run([str(link)])
    # fexecve / execveat(AT_EMPTY_PATH) on an fd of the forbidden file
    code = (
        "import os\n"
        f"fd = os.open({str(ROOT / 'bin/forbidden')!r}, os.O_RDONLY)\n"
        "try:\n    os.execve(fd, ['x'], {})\nexcept OSError as e:\n    print('errno', e.errno)\n"
    )
    assert exec_errno(code) == "errno 1"
    code_ok = code.replace("bin/forbidden", "bin/allowed")
    assert exec_errno(code_ok) == "rc=0"


def test_script_interpreter_is_judged(daemon: Daemon) -> None:
    script = ROOT / "other/script.sh"
    script.write_text(f"#!{ROOT / 'bin/forbidden-sh'}\necho ran\n")
    script.chmod(0o755)
    ok = ROOT / "other/ok.sh"
    ok.write_text("#!/bin/sh\necho ran\n")
    ok.chmod(0o755)
    assert run(ok).stdout == "ran\n"
    # forbidden-sh is not itself denied: only exec of untrusted/ and bin/forbidden is.
    assert run(script).stdout == "ran\n"
    bad = ROOT / "other/bad.sh"
    bad.write_text(f"#!{ROOT / 'bin/forbidden'}\n")
    bad.chmod(0o755)
    with pytest.raises(PermissionError):
        subprocess.run([str(bad)])


def test_exec_subtree_holds_for_files_created_after_load(daemon: Daemon) -> None:
    fresh = ROOT / "untrusted/deep/fresh"
    shutil.copy("/bin/true", fresh)
    with pytest.raises(PermissionError):
        subprocess.run([str(fresh)])
    moved = ROOT / "untrusted/moved"
    shutil.copy("/bin/true", ROOT / "other/tomove")
    os.rename(ROOT / "other/tomove", moved)
    with pytest.raises(PermissionError):
        subprocess.run([str(moved)])
    assert run(ROOT / "bin/allowed").returncode == 0


def test_open_subtree_exception_and_aliases(daemon: Daemon) -> None:
    assert run("cat", ROOT / "secrets/key").returncode == 1
    assert run("cat", ROOT / "secrets/public.txt").stdout == "p\n"  # exact allow beats the prefix
    assert run("cat", ROOT / "other/file").stdout == "o\n"
    new = ROOT / "secrets/sub/new"
    with pytest.raises(PermissionError):
        new.write_bytes(b"data")  # a file created after load: its write open is denied
    assert run("cat", new).returncode == 1
    os.chdir(ROOT / "secrets/sub")
    try:
        assert run("cat", "../key").returncode == 1
    finally:
        os.chdir("/")


def test_hard_link_out_of_subtree(daemon: Daemon) -> None:
    """A hard link made outside the protected directory would be a name the
    prefix rule does not cover: making it is denied (path_link), and so is
    renaming the file out."""
    hard = ROOT / "other/hard"
    with pytest.raises(PermissionError):
        os.link(ROOT / "secrets/key", hard)
    with pytest.raises(PermissionError):
        os.rename(ROOT / "secrets/key", hard)
    assert not hard.exists()
    assert run("cat", ROOT / "secrets/key").returncode == 1
    os.link(ROOT / "other/file", ROOT / "other/file-link")  # negative control
    assert run("cat", ROOT / "other/file-link").stdout == "o\n"


def test_bind_mount_of_protected_subtree(daemon: Daemon) -> None:
    bind = Path("/run/sentinel-bind")
    bind.mkdir(exist_ok=True)
    subprocess.run(["mount", "--bind", str(ROOT / "secrets"), str(bind)], check=True)
    try:
        assert run("cat", bind / "key").returncode == 1
        assert run("cat", bind / "public.txt").stdout == "p\n"
    finally:
        subprocess.run(["umount", str(bind)], check=False)


def test_depth_beyond_bound_fails_closed(daemon: Daemon) -> None:
    deep = ROOT / "other"
    for i in range(70):
        deep = deep / "d"
    deep.mkdir(parents=True)
    staged = ROOT / "other/staged"
    staged.write_text("x")
    target = deep / "file"
    os.rename(staged, target)  # an open with O_CREAT down there would itself be cut and denied
    r = run("cat", target)
    assert r.returncode == 1 and "Operation not permitted" in r.stderr
    shallow = ROOT / "other/file"
    assert run("cat", shallow).returncode == 0
    status = sentinel("status", "--json")
    assert '"depth_cut": 0' not in status.stdout


def test_audit_prefix_on_write_alerts_without_blocking(daemon: Daemon) -> None:
    log = ROOT / "logs/app.log"
    with open(log, "a") as f:
        f.write("line\n")
    assert log.read_text() == "line\n"
    audits = daemon.wait_for(lambda a: a["rule"]["id"] == "audit-logs")
    assert audits and audits[-1]["event"]["action"] == "audit"
    assert audits[-1]["event"]["outcome"] == "allowed"
    assert audits[-1]["file"]["path"] == str(log)
    execs = daemon.wait_for(lambda a: a["rule"]["id"] == "no-forbidden-bin")
    assert execs and all(a["event"]["operation"] == "exec" for a in execs)
    assert execs[0]["rule"]["severity"] == "critical"
    assert execs[0]["file"]["path"] == str(ROOT / "bin/forbidden")
    subtree = daemon.wait_for(lambda a: a["rule"]["id"] == "no-exec-untrusted")
    assert subtree and subtree[0]["event"]["outcome"] == "blocked"
