"""The commands, in-process through sentinel.cli.main."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sentinel.cli import main

POLICY = """\
apiVersion: sentinel/v1
kind: Policy
metadata: {name: demo}
spec:
  rules:
    - {id: no-secret, operation: open, action: deny, severity: high, match: {paths: [/srv/secret]}}
    - {id: no-tmp-exec, operation: exec, action: deny, match: {prefixes: [/srv/tmp/]}}
    - {id: allow-api, operation: connect, action: allow, match: {addresses: [203.0.113.5], ports: [443]}}
    - {id: no-doc-net, operation: connect, action: deny, match: {addresses: ["203.0.113.0/24", "2001:db8::/32"]}}
"""


@pytest.fixture
def policy_file(tmp_path: Path) -> str:
    path = tmp_path / "demo.yaml"
    path.write_text(POLICY)
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_ok(capsys: pytest.CaptureFixture[str], policy_file: str) -> None:
    assert run(capsys, "check", policy_file) == (0, "OK: 1 policies, 4 rules\n", "")


def test_check_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(POLICY.replace("/srv/secret", "srv/secret").replace("demo", "Demo"))
    code, out, _ = run(capsys, "check", str(bad))
    assert code == 2
    assert out.splitlines() == [
        f"{bad}:3:18: metadata.name: 'Demo' is not a lowercase DNS label "
        "(a-z, 0-9 and '-', at most 63 characters, no leading or trailing '-')",
        f"{bad}:6:86: spec.rules[0].match.paths[0]: path 'srv/secret' must be absolute (start with '/')",
    ]


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 2
    assert main(["explain", "x.yaml"]) == 2


def test_compile_table_and_json(capsys: pytest.CaptureFixture[str], policy_file: str) -> None:
    code, out, _ = run(capsys, "compile", policy_file)
    assert code == 0
    assert "exact   read  /srv/secret  demo:deny(no-secret)" in out
    assert "subtree exec  /srv/tmp  demo:deny(no-tmp-exec)" in out
    assert out.rstrip().endswith(
        "counts: policies=1 rules=4 exact_files=1 subtrees=1 port_classes=3 net4=8 net6=6"
    )
    code, first, _ = run(capsys, "compile", policy_file, "--json")
    assert code == 0
    data = json.loads(first)
    assert data["counts"]["net4"] == 8
    assert data["port_classes"] == [[0, 442], [443, 443], [444, 65535]]
    assert data["files"][0] == {
        "path": "/srv/secret",
        "kind": "exact",
        "slots": {
            "read": [{"policy": "demo", "action": "deny", "rule": "no-secret"}],
            "write": [{"policy": "demo", "action": "deny", "rule": "no-secret"}],
        },
    }
    assert run(capsys, "compile", policy_file, "--json")[1] == first  # deterministic


def test_explain_open_exec_connect(capsys: pytest.CaptureFixture[str], policy_file: str) -> None:
    code, out, _ = run(capsys, "explain", policy_file, "--open", "/srv/secret")
    assert (code, out) == (0, "verdict: deny (blocked, alert)\npolicy:  demo\nrule:    no-secret (severity high)\n")
    code, out, _ = run(capsys, "explain", policy_file, "--exec", "/srv/tmp/../tmp/x", "--uid", "0")
    assert "verdict: deny" in out and "rule:    no-tmp-exec" in out
    code, out, _ = run(capsys, "explain", policy_file, "--connect", "203.0.113.5:443")
    assert out.splitlines()[0] == "verdict: allow (allowed)" and "allow-api" in out
    code, out, _ = run(capsys, "explain", policy_file, "--connect", "[::ffff:203.0.113.5]:443/udp")
    assert "allow-api" in out
    code, out, _ = run(capsys, "explain", policy_file, "--connect", "[2001:db8::9]:22/udp")
    assert "no-doc-net" in out
    code, out, _ = run(capsys, "explain", policy_file, "--open", "/srv/other", "--access", "write")
    assert out.splitlines()[-1] == "rule:    default"


def test_explain_says_what_an_unspecified_destination_reaches(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "lo.yaml"
    path.write_text(
        "apiVersion: sentinel/v1\nkind: Policy\nmetadata: {name: lo}\nspec:\n  rules:\n"
        "    - {id: no-lo-ssh, operation: connect, action: deny, match: {addresses: [127.0.0.0/8], ports: [22]}}\n"
    )
    code, out, _ = run(capsys, "explain", str(path), "--connect", "0.0.0.0:22")
    lines = out.splitlines()
    assert code == 0 and lines[:3] == ["verdict: deny (blocked, alert)", "policy:  lo", "rule:    no-lo-ssh (severity medium)"]
    assert lines[3].startswith("judged:  as 127.0.0.1, the address a connect to 0.0.0.0 reaches")
    _, out, _ = run(capsys, "explain", str(path), "--connect", "[::]:22")
    assert "rule:    default" in out and "judged:  as ::1" in out
    _, out, _ = run(capsys, "explain", str(path), "--connect", "127.0.0.1:22")
    assert "judged" not in out


def test_explain_usage_errors(capsys: pytest.CaptureFixture[str], policy_file: str) -> None:
    code, _, err = run(capsys, "explain", policy_file, "--connect", "203.0.113.5")
    assert code == 2 and "expected ADDR:PORT" in err
    code, _, err = run(capsys, "explain", policy_file, "--exec", "/x", "--access", "read")
    assert code == 2 and "--access applies only to --open" in err


def test_explain_selector_flags(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "sel.yaml"
    path.write_text(POLICY.replace("spec:\n", "spec:\n  selector: {uids: [4242], cgroups: [/app]}\n"))
    _, out, _ = run(capsys, "explain", str(path), "--open", "/srv/secret", "--uid", "4242", "--cgroup", "/app/x")
    assert out.startswith("verdict: deny")
    _, out, _ = run(capsys, "explain", str(path), "--open", "/srv/secret", "--uid", "4243", "--cgroup", "/app")
    assert "(none governs this process)" in out
    if os.getuid() != 4242:
        _, out, _ = run(capsys, "explain", str(path), "--open", "/srv/secret", "--cgroup", "/app")
        assert "(none governs this process)" in out  # uid defaults to ours


TESTS = """\
policyFiles: [demo.yaml]
cases:
  - {name: secret, open: /srv/secret, expect: {action: deny, policy: demo, rule: no-secret}}
  - {name: wrong on purpose, open: /srv/other, expect: {action: deny, policy: demo, rule: no-secret}}
  - {name: api, connect: "203.0.113.5:443", expect: {action: allow, policy: demo, rule: allow-api}}
"""


def test_sentinel_test_reports_and_fails(capsys: pytest.CaptureFixture[str], policy_file: str) -> None:
    cases = Path(policy_file).parent / "cases"
    cases.mkdir()
    (cases / "t.yaml").write_text(TESTS.replace("demo.yaml", "../demo.yaml"))
    code, out, _ = run(capsys, "test", str(cases))
    lines = out.splitlines()
    assert code == 1
    assert lines[0] == f"PASS {cases / 't.yaml'}: secret"
    assert lines[1] == (
        f"FAIL {cases / 't.yaml'}: wrong on purpose: expected deny by demo/no-secret, "
        "got allow by demo/default"
    )
    assert lines[-1] == "2 passed, 1 failed"
    (cases / "t.yaml").write_text(TESTS.replace("demo.yaml", "../demo.yaml").replace(
        "  - {name: wrong on purpose, open: /srv/other, expect: {action: deny, policy: demo, rule: no-secret}}\n", ""))
    code, out, _ = run(capsys, "test", str(cases / "t.yaml"))
    assert (code, out.splitlines()[-1]) == (0, "2 passed, 0 failed")


def test_sentinel_test_invalid_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "policies:\n  - {apiVersion: sentinel/v1, kind: Policy, metadata: {name: a}, spec: {mode: x}}\n"
        "cases:\n  - {name: c, exec: /x, open: /y, expect: {action: allow}}\n"
    )
    code, _, err = run(capsys, "test", str(bad))
    assert code == 2
    assert f"{bad}:2:79: policies[0].spec.mode: Input should be 'enforce' or 'audit'" in err
    assert f"{bad}:4:5: cases[0]: a case needs exactly one of `exec`, `open`, `connect`" in err


def test_sentinel_test_duplicate_rule_ids_inline(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "dup.yaml"
    bad.write_text(
        "policies:\n"
        "  - apiVersion: sentinel/v1\n    kind: Policy\n    metadata: {name: a}\n    spec:\n      rules:\n"
        "        - {id: r, operation: exec, action: deny, match: {paths: [/x]}}\n"
        "        - {id: r, operation: exec, action: deny, match: {paths: [/y]}}\n"
        "cases:\n  - {name: c, exec: /x, expect: {action: deny, policy: a, rule: r}}\n"
    )
    code, _, err = run(capsys, "test", str(bad))
    assert code == 2
    assert f"{bad}:8:16: policies[0].spec.rules[1].id: duplicate rule id 'r' (first used at line 7)" in err


def test_explain_unresolvable_path_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import os as _os

    from sentinel import cli

    def deny(path: str, *args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied", "/proc/1/root")

    monkeypatch.setattr(_os.path, "realpath", deny)
    code = cli.main(["explain", "policies/examples/deny-file-read.yaml", "--open", "/proc/1/root/etc/shadow"])
    assert code == 2
    assert "cannot resolve" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value", [("--alert-rate", "-1"), ("--output-queue", "0")])
def test_run_rejects_bad_limits_before_touching_the_kernel(
    capsys: pytest.CaptureFixture[str], policy_file: str, flag: str, value: str
) -> None:
    code, out, err = run(capsys, "run", "--policy", policy_file, flag, value)
    assert code == 2
    assert flag in err and out == ""


def test_rule_test_file_reports_every_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The case's bad endpoint, its bad expectation, a duplicate key and the
    named policy file's own errors, all in one run."""
    (tmp_path / "p.yaml").write_text(POLICY.replace("/srv/secret", "srv/secret"))
    bad = tmp_path / "t.yaml"
    bad.write_text(
        "policyFiles: [p.yaml]\n"
        "cases:\n"
        "  - {name: a, connect: 'nope', expect: {action: maybe}}\n"
        "  - {name: b, exec: /x, connect: '1.2.3.4:1', access: [read], expect: {action: deny}}\n"
        "description: x\n"
        "description: y\n"
    )
    code, _, err = run(capsys, "test", str(bad))
    assert code == 2
    assert f"{bad}:3:24: cases[0].connect: 'nope': expected ADDR:PORT[/tcp|/udp] or [ADDR]:PORT" in err
    assert f"{bad}:3:49: cases[0].expect.action: Input should be" in err
    assert (f"{bad}:4:5: cases[1]: a case needs exactly one of `exec`, `open`, `connect`; "
            "`access` applies only to `open` cases") in err
    assert f"{bad}:6:1: duplicate key 'description'" in err
    assert f"{tmp_path / 'p.yaml'}:6:86: spec.rules[0].match.paths[0]: path 'srv/secret' must be absolute" in err


def test_explain_and_run_report_arguments_and_policies_together(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(POLICY.replace("/srv/secret", "srv/secret"))
    code, _, err = run(capsys, "explain", str(bad), "--connect", "x", "--uid", "-1", "--access", "read")
    assert code == 2
    for fragment in ("--access applies only to --open", "--uid -1 is out of range", "--connect 'x'",
                     f"{bad}:6:86: spec.rules[0].match.paths[0]"):
        assert fragment in err, err
    code, out, err = run(capsys, "run", "--policy", str(bad), "--alert-rate", "-1",
                         "--output", "bogus:", "--output", "nope:x")
    assert code == 2 and out == ""
    for fragment in ("--alert-rate -1", "invalid output 'bogus:'", "invalid output 'nope:x'",
                     f"{bad}:6:86: spec.rules[0].match.paths[0]"):
        assert fragment in err, err
