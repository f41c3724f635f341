"""Shared fixtures for the packaging tests: one package build and one
installation into a scratch root per session (the build takes ~20 s)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"
SYSTEM_PYTHON = Path("/usr/bin/python3")


def project_version() -> str:
    with open(REPO / "pyproject.toml", "rb") as f:
        version: str = tomllib.load(f)["project"]["version"]
    return version


def _missing_build_tools() -> list[str]:
    missing = [t for t in ("dpkg-deb", "dpkg", "make", "clang", "bpftool") if shutil.which(t) is None]
    if not SYSTEM_PYTHON.exists():
        missing.append(str(SYSTEM_PYTHON))
    return missing


@pytest.fixture(scope="session")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package, built by packaging/deb/build.sh into a scratch directory."""
    missing = _missing_build_tools()
    if missing:
        pytest.skip(f"cannot build the package without {', '.join(missing)} (scripts/setup installs them)")
    outdir = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [str(PACKAGING / "deb" / "build.sh"), str(outdir)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"build.sh failed:\n{proc.stdout}\n{proc.stderr}"
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path == outdir / f"sentinel_{project_version()}_amd64.deb"
    assert path.is_file()
    return path


def dpkg_root(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """dpkg acting on the scratch ROOT. Maintainer scripts run without chroot
    (the root has no shell) with DPKG_ROOT set, which they honour; Depends are
    forced because the scratch database knows no libbpf1 or python3, while the
    payload runs against the host's, which are Debian 12's."""
    return subprocess.run(
        ["dpkg", f"--root={root}", "--force-script-chrootless", "--force-depends", "--log=/dev/null", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def empty_dpkg_root(root: Path) -> Path:
    admin = root / "var" / "lib" / "dpkg"
    for sub in ("info", "updates", "triggers"):
        (admin / sub).mkdir(parents=True, exist_ok=True)
    for name in ("status", "available"):
        (admin / name).touch()
    return root


@pytest.fixture(scope="session")
def installed_root(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A scratch root with the package installed by a real `dpkg --root -i`."""
    if os.geteuid() != 0:
        pytest.skip("dpkg --root installs files owned by root: run as root")
    root = empty_dpkg_root(tmp_path_factory.mktemp("root"))
    proc = dpkg_root(root, "-i", str(deb))
    assert proc.returncode == 0, f"dpkg -i failed:\n{proc.stdout}\n{proc.stderr}"
    yield root
