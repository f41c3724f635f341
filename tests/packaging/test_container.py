"""packaging/container/Containerfile: no container engine here, so the file
is checked for what it must do: Debian 12, the package built by build.sh
(with libbpf1), and sentinel as the process the container runs."""

from __future__ import annotations

import json
import re

from tests.packaging.conftest import PACKAGING, project_version

CONTAINERFILE = PACKAGING / "container" / "Containerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuations joined."""
    text = re.sub(r"\\\n", " ", "\n".join(l for l in CONTAINERFILE.read_text().splitlines() if not l.lstrip().startswith("#")))
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _one(name: str) -> str:
    values = [args for word, args in _instructions() if word == name]
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


def test_base_is_debian_12() -> None:
    assert _instructions()[0][0] == "FROM"
    assert re.fullmatch(r"(docker\.io/(library/)?)?debian:(12|bookworm)(-slim)?", _one("FROM"))


def test_installs_the_built_package_with_libbpf() -> None:
    assert _one("ARG") == f"VERSION={project_version()}"
    copy = _one("COPY").split()
    assert copy[0] == "dist/sentinel_${VERSION}_amd64.deb"  # build.sh's output name
    run = _one("RUN")
    assert "apt-get install" in run
    install = run.split("apt-get install", 1)[1].split("&&")[0].split()
    assert "libbpf1" in install
    assert "/tmp/sentinel_${VERSION}_amd64.deb" in install
    assert "rm -rf /var/lib/apt/lists/*" in run


def test_runs_sentinel() -> None:
    # Exec form (JSON): sentinel is PID 1 of the container and gets SIGTERM.
    entrypoint = json.loads(_one("ENTRYPOINT"))
    cmd = json.loads(_one("CMD"))
    assert entrypoint == ["/usr/bin/sentinel"]
    assert cmd[:3] == ["run", "--policy", "/etc/sentinel/policies.d"]
    outputs = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--output"]
    assert "jsonl:/var/log/sentinel/events.jsonl" in outputs
    assert _one("STOPSIGNAL") == "SIGTERM"
    assert json.loads(_one("HEALTHCHECK").split("CMD", 1)[1]) == ["/usr/bin/sentinel", "status"]
