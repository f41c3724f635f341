"""The Debian package: what dpkg-deb says is in it, and that a real
`dpkg --root` install gives a working sentinel that removes and purges
cleanly."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.packaging.conftest import REPO, SYSTEM_PYTHON, dpkg_root, empty_dpkg_root, project_version

pytestmark = pytest.mark.slow

LIB = "usr/lib/sentinel/python"
EXPECTED_FILES = [
    "usr/bin/sentinel",
    f"{LIB}/sentinel/cli.py",
    f"{LIB}/sentinel/bpf/sentinel.bpf.o",
    f"{LIB}/pydantic/__init__.py",
    f"{LIB}/yaml/__init__.py",
    f"{LIB}/structlog/__init__.py",
    "lib/systemd/system/sentinel.service",
    "etc/sentinel/policies.d/README",
    "usr/share/sentinel/policies/baseline.yaml",
    "usr/share/sentinel/policies/examples/deny-file-read.yaml",
    "usr/share/doc/sentinel/README.md",
]


def _field(info: str, name: str) -> str:
    for line in info.splitlines():
        if line.strip().startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} field in:\n{info}")


def _contents(deb: Path) -> dict[str, str]:
    """path (without ./) -> the tar listing line (mode, owner, ...)."""
    out = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True).stdout
    listing = {}
    for line in out.splitlines():
        path = line.split()[-1].removeprefix("./").rstrip("/")
        listing[path] = line
    return listing


def _run(root: Path, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(root / "usr/bin/sentinel"), *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=env
    )


def test_control_fields(deb: Path) -> None:
    info = subprocess.run(["dpkg-deb", "--info", str(deb)], capture_output=True, text=True, check=True).stdout
    assert _field(info, "Package") == "sentinel"
    assert _field(info, "Version") == project_version()
    assert _field(info, "Architecture") == "amd64"
    depends = [d.strip() for d in _field(info, "Depends").split(",")]
    assert "libbpf1" in depends
    assert "python3 (>= 3.11)" in depends
    # The private library holds a cp311 extension (pydantic-core).
    assert "python3 (<< 3.12)" in depends
    assert int(_field(info, "Installed-Size")) > 1000  # KiB: the Python libraries are in it
    for script in ("postinst", "prerm", "postrm", "conffiles", "md5sums"):
        assert script in info


def test_maintainer_scripts_parse_and_are_strict(deb: Path, tmp_path: Path) -> None:
    subprocess.run(["dpkg-deb", "--control", str(deb), str(tmp_path)], check=True)
    assert (tmp_path / "conffiles").read_text().split() == ["/etc/sentinel/policies.d/README"]
    for name in ("postinst", "prerm", "postrm"):
        script = tmp_path / name
        assert os.access(script, os.X_OK), name
        text = script.read_text()
        assert text.startswith("#!/bin/bash\n"), name
        assert "set -euo pipefail" in text, name
        assert "DPKG_ROOT" in text, name
        subprocess.run(["bash", "-n", str(script)], check=True)
    # Removal takes the enforcement with it; an upgrade must not.
    prerm = (tmp_path / "prerm").read_text()
    remove_branch = prerm.split("remove|deconfigure)")[1].split(";;")[0]
    upgrade_branch = prerm.split("upgrade)")[1].split(";;")[0]
    assert "sentinel unload" in remove_branch
    assert "unload" not in upgrade_branch


def test_contents(deb: Path) -> None:
    listing = _contents(deb)
    for path in EXPECTED_FILES:
        assert path in listing, f"{path} is not in the package"
    assert listing["usr/bin/sentinel"].startswith("-rwxr-xr-x root/root")
    assert all(" root/root " in line for line in listing.values()), "every file belongs to root"
    # pip --target's console scripts would carry the build venv's shebang.
    assert not any(p.startswith(f"{LIB}/bin/") for p in listing)
    # Byte code for the interpreter that runs it; no stray caches of the build.
    assert f"{LIB}/sentinel/__pycache__/cli.cpython-311.pyc" in listing
    assert not any(".egg-info" in p for p in listing)


def test_payload_matches_repository(deb: Path, tmp_path: Path) -> None:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    built = REPO / "sentinel" / "bpf" / "sentinel.bpf.o"
    assert (tmp_path / LIB / "sentinel/bpf/sentinel.bpf.o").read_bytes() == built.read_bytes()
    assert (tmp_path / "lib/systemd/system/sentinel.service").read_text() == (
        REPO / "packaging/systemd/sentinel.service"
    ).read_text()
    for src in (REPO / "policies/examples").glob("*.yaml"):
        assert (tmp_path / "usr/share/sentinel/policies/examples" / src.name).read_text() == src.read_text()
    # checked-hash byte code (PEP 552 flags == 0b11) stays valid whatever
    # mtimes dpkg or an image layer gives the sources.
    pyc = (tmp_path / LIB / "sentinel/__pycache__/cli.cpython-311.pyc").read_bytes()
    assert int.from_bytes(pyc[4:8], "little") == 0b11


def test_dpkg_status_after_install(installed_root: Path) -> None:
    proc = dpkg_root(installed_root, "-s", "sentinel")
    assert proc.returncode == 0, proc.stderr
    assert "Status: install ok installed" in proc.stdout
    listed = dpkg_root(installed_root, "-L", "sentinel").stdout.split()
    assert "/usr/bin/sentinel" in listed and "/lib/systemd/system/sentinel.service" in listed
    # Maintainer scripts saw DPKG_ROOT and left the running system alone.
    assert not (installed_root / "run").exists()


def test_installed_command_runs(installed_root: Path) -> None:
    help_ = _run(installed_root, "--help")
    assert help_.returncode == 0, help_.stderr
    for command in ("check", "run", "status", "reload", "unload", "doctor"):
        assert command in help_.stdout

    shipped = sorted((installed_root / "usr/share/sentinel/policies").rglob("*.yaml"))
    assert len(shipped) == 1 + len(list((REPO / "policies/examples").glob("*.yaml")))
    check = _run(installed_root, "check", *map(str, shipped))
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.startswith("OK:")

    explain = _run(
        installed_root,
        "explain",
        str(installed_root / "usr/share/sentinel/policies/examples/deny-file-read.yaml"),
        "--open",
        "/etc/sentinel-demo/secret",
        "--access",
        "read",
    )
    assert explain.returncode == 0, explain.stderr
    assert "deny" in explain.stdout and "deny-secret-read" in explain.stdout


def test_empty_policy_directory_is_invalid_input(installed_root: Path) -> None:
    """The shipped policies.d holds only a README: the service must exit 2
    (RestartPreventExitStatus=2 in the unit) instead of enforcing nothing."""
    proc = _run(installed_root, "check", str(installed_root / "etc/sentinel/policies.d"))
    assert proc.returncode == 2
    assert "contains no *.yaml files" in proc.stdout + proc.stderr


def test_wrapper_ignores_environment(installed_root: Path, tmp_path: Path) -> None:
    """From the repository, with PYTHONPATH pointing at it, the packaged
    command still imports the packaged sentinel (python3 -I)."""
    wrapper = installed_root / "usr/bin/sentinel"
    assert wrapper.read_text().startswith("#!/usr/bin/python3 -I\n")
    probe = wrapper.read_text().replace("sys.exit(main())", "import sentinel; print(sentinel.__file__)")
    script = tmp_path / "probe"
    script.write_text(probe)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # Run the probe as if it were the installed file, so _LIB is computed the same way.
    code = f"__file__ = {str(wrapper)!r}; exec(compile(open({str(script)!r}).read(), __file__, 'exec'))"
    proc = subprocess.run(
        [str(SYSTEM_PYTHON), "-I", "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(installed_root / LIB / "sentinel/__init__.py")


def test_remove_keeps_admin_policies_and_purge_removes_conffile(deb: Path, tmp_path: Path) -> None:
    root = empty_dpkg_root(tmp_path / "root")
    assert dpkg_root(root, "-i", str(deb)).returncode == 0
    mine = root / "etc/sentinel/policies.d/mine.yaml"
    mine.write_text((REPO / "policies/examples/deny-file-read.yaml").read_text())
    (root / "var/log/sentinel").mkdir(parents=True)

    removed = dpkg_root(root, "-r", "sentinel")
    assert removed.returncode == 0, removed.stderr
    assert not (root / "usr/bin/sentinel").exists()
    assert not (root / LIB).exists()
    assert (root / "etc/sentinel/policies.d/README").exists()  # conffile until purge
    assert mine.exists()

    purged = dpkg_root(root, "-P", "sentinel")
    assert purged.returncode == 0, purged.stderr
    assert not (root / "etc/sentinel/policies.d/README").exists()
    assert not (root / "var/log/sentinel").exists()
    assert mine.exists(), "an admin's policy is not the package's to delete"
    assert dpkg_root(root, "-s", "sentinel").returncode != 0
