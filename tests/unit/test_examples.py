"""Every shipped policy and documented snippet is valid, and the rule tests pass."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sentinel.cli import main
from sentinel.commands.ruletest import load_test_file
from sentinel.compiler.build import build_ruleset
from sentinel.compiler.evaluate import Process, evaluate_open
from sentinel.policy.loader import load_policies

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "policies").rglob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_policy_passes_check(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().out.startswith("OK: ")


def test_all_shipped_policies_load_together() -> None:
    loaded = load_policies([ROOT / "policies" / "baseline.yaml", ROOT / "policies" / "examples"])
    assert len(loaded) == len({lp.policy.name for lp in loaded}) >= 10
    build_ruleset(loaded)


def test_demo_policy_is_exactly_what_the_kernel_slice_expects() -> None:
    [lp] = load_policies([ROOT / "policies" / "examples" / "deny-file-read.yaml"])
    p = lp.policy
    assert (p.name, p.spec.mode) == ("deny-file-read", "enforce")
    [r] = p.spec.rules
    assert (r.id, r.operation, r.action, r.severity) == ("deny-secret-read", "open", "deny", "high")
    assert r.match.paths == ("/etc/sentinel-demo/secret",)
    verdict = evaluate_open(build_ruleset([lp]), "/etc/sentinel-demo/secret", ["read"], Process())
    assert (verdict.action, verdict.rule) == ("deny", "deny-secret-read")


def test_rules_tests_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(ROOT / "rules_tests")]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    passed = int(last.split()[0])
    assert last == f"{passed} passed, 0 failed" and passed >= 80


def test_rules_tests_stay_in_safe_paths_and_addresses() -> None:
    allowed_prefixes = ("/tmp/sentinel-rt/", "/etc/sentinel-demo/", "/etc/ssl/private/")
    for path in sorted((ROOT / "rules_tests").glob("*.yaml")):
        suite = load_test_file(str(path))
        assert all(f.startswith(allowed_prefixes) for f in suite.spec.files), path
        for case in suite.spec.cases:
            if case.connect:
                host = case.connect.rsplit(":", 1)[0].strip("[]")
                # 0.0.0.0 and :: reach this host (loopback from the runner's unbound sockets)
                assert re.match(r"(127\.|203\.0\.113\.|::1$|2001:db8:|::ffff:(127\.|203\.0\.113\.|0\.0\.0\.0$)|0\.0\.0\.0$|::$)", host), case


def test_readme_snippet_is_a_valid_test_file(tmp_path: Path) -> None:
    text = (ROOT / "rules_tests" / "README.md").read_text()
    snippet = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert snippet is not None
    (tmp_path / "snippet.yaml").write_text(
        snippet.group(1).replace("  - ../policies/examples/deny-file-read.yaml\n", f"  - {ROOT}/policies/examples/deny-file-read.yaml\n")
    )
    suite = load_test_file(str(tmp_path / "snippet.yaml"))
    assert [c.name for c in suite.spec.cases] == ["prefix denies"]
