"""`sentinel test [PATH...]`: run rule test cases through the reference evaluator.

Each case's operation is evaluated on the RuleSet compiled from the file's
policies, and the verdict, deciding policy and rule are compared with the
expectation. Case paths are taken as real paths (not resolved on this host):
the same files drive the kernel differential test in the VM.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from sentinel.compiler.build import build_ruleset
from sentinel.compiler.evaluate import (
    Process,
    Verdict,
    evaluate_connect,
    evaluate_exec,
    evaluate_open,
    parse_endpoint,
)
from sentinel.compiler.ir import Mode, RuleSet
from sentinel.errors import Diagnostic, PolicyError
from sentinel.policy.loader import (
    expand_paths,
    load_policies,
    read_documents,
    sort_diagnostics,
    validate_document,
)
from sentinel.policy.model import LoadedPolicy
from sentinel.policy.ruletest_model import Case, RuleTestFile

DEFAULT_DIR = "rules_tests"


@dataclass(frozen=True)
class LoadedTests:
    file: str
    spec: RuleTestFile
    ruleset: RuleSet


def load_test_file(file: str, mode_override: Mode | None = None) -> LoadedTests:
    """Validate a test file and compile its policies.

    Raises:
        PolicyError: the file or one of its policies is invalid.
    """
    diags: list[Diagnostic] = []
    docs = read_documents(file, diags)
    if not docs:
        raise PolicyError(diags)
    if len(docs) > 1:
        diags.append(Diagnostic(file, *docs[1].start, "a test file holds exactly one YAML document"))
    doc = docs[0]
    spec = validate_document(doc, RuleTestFile, diags)
    # The policy files are checked even when the test file itself is wrong,
    # so that every problem is reported at once.
    if spec is not None:
        policy_files = list(spec.policy_files)
    else:
        named = doc.data.get("policyFiles") if isinstance(doc.data, dict) else None
        policy_files = [p for p in named if isinstance(p, str)] if isinstance(named, list) else []
    base = Path(file).parent
    loaded: list[LoadedPolicy] = []
    if policy_files:
        try:
            loaded += load_policies([base / p for p in policy_files])
        except PolicyError as exc:
            diags.extend(exc.diagnostics)
    if spec is None or diags:
        raise PolicyError(sort_diagnostics(diags))
    for i, policy in enumerate(spec.policies):
        line, col = doc.values[("policies", i)]
        loaded.append(LoadedPolicy(policy, file, line, col))
    seen: set[str] = set()
    for item in loaded:
        if item.policy.name in seen:
            diags.append(Diagnostic(item.file, item.line, item.col,
                                    f"policy '{item.policy.name}' is defined twice"))
        seen.add(item.policy.name)
    if diags:
        raise PolicyError(diags)
    return LoadedTests(file, spec, build_ruleset(loaded, mode_override))


def evaluate_case(rs: RuleSet, case: Case) -> Verdict:
    proc = Process(binary=case.process.binary, uid=case.process.uid, cgroup=case.process.cgroup)
    if case.exec is not None:
        return evaluate_exec(rs, case.exec, proc, fileless=case.fileless)
    if case.open is not None:
        return evaluate_open(rs, case.open, case.access or ("read",), proc)
    assert case.connect is not None  # guaranteed by Case's validator
    addr, port, protocol = parse_endpoint(case.connect)
    return evaluate_connect(rs, addr, port, protocol, proc)


def check_case(rs: RuleSet, case: Case) -> str | None:
    """None when the case passes, else what differed."""
    verdict = evaluate_case(rs, case)
    want = case.expect
    got_rule = verdict.rule or ("default" if verdict.policy else None)
    if (verdict.action, verdict.policy, got_rule) == (want.action, want.policy, want.rule):
        return None
    expected = f"{want.action} by {want.policy}/{want.rule}" if want.policy else f"{want.action} (no policy)"
    return f"expected {expected}, got {verdict.action} by {verdict.decided_by}"


def run(args: argparse.Namespace) -> int:
    diags: list[Diagnostic] = []
    files = expand_paths(args.paths or [DEFAULT_DIR], diags)
    suites: list[LoadedTests] = []
    for file in files:
        try:
            suites.append(load_test_file(file))
        except PolicyError as exc:
            diags.extend(exc.diagnostics)
    if diags:
        raise PolicyError(diags)
    passed = failed = 0
    for suite in suites:
        for case in suite.spec.cases:
            problem = check_case(suite.ruleset, case)
            if problem is None:
                passed += 1
                print(f"PASS {suite.file}: {case.name}")
            else:
                failed += 1
                print(f"FAIL {suite.file}: {case.name}: {problem}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
