"""Protected names stay protected, and truncate is a write (issue 4, items 3
and 2): a rule's object cannot be renamed or hard-linked elsewhere, its
directories cannot be renamed away, nothing can be moved over it nor can it
be unlinked and recreated, and truncate(2) / ftruncate(2) on it are denied.

One daemon serves every scenario (starting one costs ~15 s under emulation);
each test has a negative control: an unrelated file or directory on the same
tmpfs is renamed, linked, unlinked or truncated freely.
"""

from __future__ import annotations

import ctypes
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kernel.conftest import Daemon, start_daemon, unload_in_process

pytestmark = pytest.mark.kernel

ROOT = Path("/run/sentinel-names")

POLICY = f"""\
apiVersion: sentinel/v1
kind: Policy
metadata:
  name: names
spec:
  rules:
    - id: shadow
      operation: open
      action: deny
      severity: high
      match:
        paths: [{ROOT}/etc/shadow]
    - id: token-read
      operation: open
      action: deny
      match:
        paths: [{ROOT}/etc/token]
        access: [read]
    - id: vault
      operation: open
      action: deny
      match:
        prefixes: [{ROOT}/vault/]
    - id: readonly-read
      operation: open
      action: deny
      match:
        prefixes: [{ROOT}/readonly/]
        access: [read]
"""

PRE_LOAD: dict[str, subprocess.Popen[str]] = {}


def sn_op(*args: str | Path) -> int:
    out = subprocess.run([str(ROOT / "bin/sn-op"), *map(str, args)], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    unload_in_process()
    ROOT.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(ROOT)], check=True)
    for sub in ("bin", "etc", "vault/sub", "vault/empty", "readonly", "other/dir"):
        (ROOT / sub).mkdir(parents=True)
    subprocess.run(["gcc", "-O2", "-o", str(ROOT / "bin/sn-op"), str(Path(__file__).with_name("sn_op.c"))], check=True)
    for name in ("etc/shadow", "etc/token", "vault/key", "vault/sub/deep", "readonly/f", "other/free"):
        (ROOT / name).write_text(name + "\n")
    # An fd opened for writing before the policy is loaded, truncated after.
    proc = subprocess.Popen([str(ROOT / "bin/sn-op"), "ftruncate-later", str(ROOT / "etc/shadow")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    PRE_LOAD["shadow"] = proc
    policy = ROOT / "policy.yaml"
    policy.write_text(POLICY)
    d = start_daemon(policy, ROOT / "events.jsonl")
    yield d
    d.stop()
    unload_in_process()
    proc.kill()
    subprocess.run(["umount", "-l", str(ROOT)], check=False)


@pytest.fixture(autouse=True)
def clean_kernel() -> Iterator[None]:
    yield  # the module's daemon stays loaded across these tests


def eperm(fn: object, *args: object) -> bool:
    """True when FN(*ARGS) fails with EPERM; False when it succeeds."""
    try:
        fn(*args)  # type: ignore[operator]
    except PermissionError as exc:
        assert exc.errno == errno.EPERM, exc
        return True
    return False


def cat_denied(path: Path) -> bool:
    return subprocess.run(["cat", str(path)], capture_output=True).returncode != 0


def test_protected_file_cannot_be_renamed_or_linked_away(daemon: Daemon) -> None:
    for src in ("etc/shadow", "etc/token", "vault/key", "vault/sub/deep"):
        assert eperm(os.rename, ROOT / src, ROOT / "other/moved"), src
        assert eperm(os.link, ROOT / src, ROOT / "other/linked"), src
    assert eperm(os.rename, ROOT / "readonly/f", ROOT / "other/moved")  # a read rule: a new name would escape it
    assert not (ROOT / "other/moved").exists() and not (ROOT / "other/linked").exists()
    # A directory inside a protected subtree cannot leave it either.
    assert eperm(os.rename, ROOT / "vault/sub", ROOT / "other/sub")
    # Negative control: an unrelated file is renamed and linked freely.
    os.rename(ROOT / "other/free", ROOT / "other/free2")
    os.link(ROOT / "other/free2", ROOT / "other/free-link")
    os.rename(ROOT / "other/free2", ROOT / "other/free")
    os.unlink(ROOT / "other/free-link")
    assert cat_denied(ROOT / "etc/shadow") and cat_denied(ROOT / "vault/key")


def test_hard_link_inside_the_subtree_is_still_denied(daemon: Daemon) -> None:
    # Within the protected subtree a new name would not escape, but a link is
    # a new name all the same: judged as reading and writing the object.
    assert eperm(os.link, ROOT / "vault/key", ROOT / "vault/key2")


def test_parent_directories_cannot_be_renamed_away(daemon: Daemon) -> None:
    for d in ("etc", "vault", "readonly"):
        assert eperm(os.rename, ROOT / d, ROOT / f"{d}-moved"), d
        assert (ROOT / d).is_dir()
    assert not cat_denied(ROOT / "other/free")
    # Negative control: a directory that leads to no rule is renamed freely.
    os.rename(ROOT / "other/dir", ROOT / "other/dir2")
    os.rename(ROOT / "other/dir2", ROOT / "other/dir")


def test_nothing_can_be_moved_over_a_protected_name(daemon: Daemon) -> None:
    fake = ROOT / "other/fake"
    fake.write_text("attacker\n")
    for dst in ("etc/shadow", "etc/token", "vault/key", "readonly/f"):
        assert eperm(os.rename, fake, ROOT / dst), dst
    assert (ROOT / "etc/shadow").exists() and cat_denied(ROOT / "etc/shadow")
    # renameat2(RENAME_EXCHANGE) swaps both ways: denied as well.
    libc = ctypes.CDLL(None, use_errno=True)
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    rc = libc.renameat2(AT_FDCWD, bytes(fake), AT_FDCWD, bytes(ROOT / "etc/token"), RENAME_EXCHANGE)
    assert rc == -1 and ctypes.get_errno() == errno.EPERM
    # An empty directory over the protected subtree's empty directory.
    (ROOT / "other/emptydir").mkdir()
    assert eperm(os.rename, ROOT / "other/emptydir", ROOT / "vault/empty")
    # Negative control: replacing an unprotected file works.
    (ROOT / "other/target").write_text("old\n")
    os.rename(fake, ROOT / "other/target")
    assert (ROOT / "other/target").read_text() == "attacker\n"


def test_protected_name_cannot_be_unlinked_and_recreated(daemon: Daemon) -> None:
    assert eperm(os.unlink, ROOT / "etc/shadow")
    assert eperm(os.unlink, ROOT / "etc/token")  # an exact read rule would not cover a recreated file
    assert eperm(os.unlink, ROOT / "vault/key")
    assert eperm(os.rmdir, ROOT / "vault/empty")
    assert eperm(os.rmdir, ROOT / "vault")  # not empty anyway, but judged first
    # Under a read-only subtree rule removing is allowed: the name's directory
    # still decides, so a file recreated there is protected again.
    os.unlink(ROOT / "readonly/f")
    (ROOT / "readonly/f").write_text("recreated\n")
    assert cat_denied(ROOT / "readonly/f")
    # Negative control.
    (ROOT / "other/gone").write_text("x")
    os.unlink(ROOT / "other/gone")


def test_truncate_is_a_write(daemon: Daemon) -> None:
    assert sn_op("truncate", ROOT / "etc/shadow") == errno.EPERM
    assert sn_op("truncate", ROOT / "vault/sub/deep") == errno.EPERM
    assert eperm(os.truncate, ROOT / "vault/key", 0)
    assert (ROOT / "etc/shadow").stat().st_size > 0
    # A read-only rule does not cover truncation; an unrelated file neither.
    assert sn_op("truncate", ROOT / "etc/token") == 0
    assert sn_op("truncate", ROOT / "other/free") == 0


def test_ftruncate_of_an_fd_opened_before_load(daemon: Daemon) -> None:
    proc = PRE_LOAD["shadow"]
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert int(proc.stdout.readline().strip()) == errno.EPERM
    assert (ROOT / "etc/shadow").stat().st_size > 0
    # Negative control: an fd on an unrelated file.
    with open(ROOT / "other/free", "r+") as f:
        os.ftruncate(f.fileno(), 0)


def test_name_changes_alert_as_writes(daemon: Daemon) -> None:
    assert eperm(os.rename, ROOT / "etc/shadow", ROOT / "other/alert-probe")
    assert eperm(os.rename, ROOT / "etc", ROOT / "etc-alert-probe")
    assert sn_op("truncate", ROOT / "etc/shadow") == errno.EPERM

    def found(via: str, path: Path) -> list[dict[str, Any]]:
        return daemon.wait_for(lambda a: a["file"].get("via") == via and a["file"]["path"] == str(path))

    renames = found("rename", ROOT / "etc/shadow")
    assert renames, daemon.events()
    a = renames[-1]
    assert a["event"]["operation"] == "open" and a["event"]["action"] == "deny"
    assert a["event"]["outcome"] == "blocked"
    assert a["rule"] == {"id": "shadow", "severity": "high"}
    assert "write" in a["file"]["access"]
    guard = found("rename", ROOT / "etc")
    assert guard and guard[-1]["rule"]["id"] in ("shadow", "token-read")
    truncs = found("truncate", ROOT / "etc/shadow")
    assert truncs and truncs[-1]["file"]["access"] == ["write"]
