"""packaging/kubernetes/daemonset.yaml: the right kinds with the fields
the daemon needs, and a ConfigMap whose policies `sentinel check` accepts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.packaging.conftest import PACKAGING, REPO

MANIFEST = PACKAGING / "kubernetes" / "daemonset.yaml"


def _docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d is not None]


def _kind(kind: str) -> dict[str, Any]:
    found = [d for d in _docs() if d["kind"] == kind]
    assert len(found) == 1, kind
    return found[0]


@pytest.fixture()
def pod() -> dict[str, Any]:
    spec: dict[str, Any] = _kind("DaemonSet")["spec"]["template"]["spec"]
    return spec


@pytest.fixture()
def container(pod: dict[str, Any]) -> dict[str, Any]:
    (c,) = pod["containers"]
    return c  # type: ignore[no-any-return]


def test_kinds_and_api_versions() -> None:
    kinds = {(d["apiVersion"], d["kind"]) for d in _docs()}
    assert ("apps/v1", "DaemonSet") in kinds
    assert ("v1", "ConfigMap") in kinds
    namespaces = {d["metadata"].get("namespace") for d in _docs() if d["kind"] != "Namespace"}
    assert namespaces == {_kind("Namespace")["metadata"]["name"]}


def test_selector_matches_template() -> None:
    ds = _kind("DaemonSet")
    labels = ds["spec"]["template"]["metadata"]["labels"]
    assert ds["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_pod_sees_the_host(pod: dict[str, Any], container: dict[str, Any]) -> None:
    assert pod["hostPID"] is True
    assert {"operator": "Exists"} in pod["tolerations"]
    # Bidirectional propagation is only allowed for privileged containers.
    assert container["securityContext"]["privileged"] is True


def _mounts(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    volumes = {v["name"]: v for v in pod["volumes"]}
    return {m["mountPath"]: (m, volumes[m["name"]]) for m in container["volumeMounts"]}


def test_volumes(pod: dict[str, Any], container: dict[str, Any]) -> None:
    mounts = _mounts(pod, container)
    mount, vol = mounts["/sys/fs/bpf"]
    assert vol["hostPath"]["path"] == "/sys/fs/bpf"
    assert mount["mountPropagation"] == "Bidirectional"
    assert not mount.get("readOnly", False)
    for path in ("/sys/kernel/security", "/sys/kernel/btf"):
        mount, vol = mounts[path]
        assert vol["hostPath"]["path"] == path and mount["readOnly"] is True
    for path in ("/run/sentinel", "/var/log/sentinel"):
        mount, vol = mounts[path]
        assert vol["hostPath"]["path"] == path and not mount.get("readOnly", False)
    mount, vol = mounts["/etc/sentinel/policies.d"]
    assert vol["configMap"]["name"] == _kind("ConfigMap")["metadata"]["name"]
    assert mount["readOnly"] is True


def test_runs_sentinel_with_probes_and_limits(container: dict[str, Any]) -> None:
    argv = container["command"] + container["args"]
    assert argv[:4] == ["/usr/bin/sentinel", "run", "--policy", "/etc/sentinel/policies.d"]
    assert container["livenessProbe"]["exec"]["command"] == ["/usr/bin/sentinel", "status"]
    assert container["readinessProbe"]["exec"]["command"] == ["/usr/bin/sentinel", "status"]
    assert container["resources"]["limits"]["memory"]
    assert container["resources"]["requests"]["cpu"]


def test_configmap_policies_are_valid_and_deny_nothing(tmp_path: Path) -> None:
    data = _kind("ConfigMap")["data"]
    assert data and all(name.endswith(".yaml") for name in data)
    for name, text in data.items():
        (tmp_path / name).write_text(text)
        for doc in yaml.safe_load_all(text):
            # Shipped to every node: audit until an operator chooses to enforce.
            assert doc["spec"]["mode"] == "audit", name
            for rule in doc["spec"]["rules"]:
                for path in rule["match"].get("paths", []):
                    # The pod's root is the image: host files via PID 1's root.
                    assert path.startswith("/proc/1/root/"), path
    proc = subprocess.run(
        [sys.executable, "-m", "sentinel.cli", "check", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
