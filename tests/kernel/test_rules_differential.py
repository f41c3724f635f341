"""The evaluator and the kernel agree on every rule test case.

Each file of rules_tests/ is loaded into a real daemon; each case is acted out
by a small compiled helper (placed at the case's `process.binary`, run with its
uid and inside its cgroup) and the kernel's answer - EPERM or not, and the
alert it raised for that process and object - is compared with what
`sentinel.compiler.evaluate` says for the same RuleSet.

A file whose policies would govern this very test process (a default deny
with no selector) runs with `--mode audit`, and the evaluator with the same
override: the decisions compared are the same, only blocking is reported as
would_deny (blocking itself is covered by the other kernel scenarios).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from sentinel.commands.ruletest import evaluate_case, load_test_file
from sentinel.compiler.addr import reached_address
from sentinel.compiler.evaluate import parse_endpoint
from sentinel.compiler.ir import Action, Mode, RuleSet
from sentinel.policy.ruletest_model import Case
from tests.kernel.conftest import REPO, Daemon, sentinel, start_daemon

# One boot: the decision code compared here (sn_judge_file, sn_fold_file, the
# connect lookups) is the same function under either mechanism; what differs
# is only how it is attached, and every scenario file (open, exec, names,
# connect, selectors, io_uring, lifecycle) runs under both boots.
pytestmark = [pytest.mark.kernel, pytest.mark.one_config]

CASE_FILES = sorted((REPO / "rules_tests").glob("*.yaml"))
# Where case files live; each gets a fresh tmpfs so identities are what the kernel sees.
TMPFS_ROOTS = (Path("/tmp/sentinel-rt"), Path("/etc/sentinel-demo"), Path("/etc/ssl/private"))
WORK = Path("/run/sentinel-diff")
EPERM = 1


@dataclass
class Outcome:
    case: Case
    pid: int
    errno: int


def governs_runner(rs: RuleSet) -> bool:
    return any(not (p.selector.binaries or p.selector.uids or p.selector.cgroups)
               and Action.DENY in p.default_file for p in rs.policies)


@pytest.fixture(scope="module")
def helper() -> Iterator[Path]:
    sentinel("unload")
    WORK.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", str(WORK)], check=True)
    path = WORK / "sn-op"
    subprocess.run(["gcc", "-O2", "-o", str(path), str(Path(__file__).with_name("sn_op.c"))], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False)
    yield path
    subprocess.run(["umount", "-l", str(WORK)], check=False)


@pytest.fixture
def roots() -> Iterator[None]:
    for root in TMPFS_ROOTS:
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", str(root)], check=True)
    yield
    for root in TMPFS_ROOTS:
        subprocess.run(["umount", "-l", str(root)], check=False)


def place(helper: Path, path: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for parent in target.parents:  # other uids must reach it
        if any(parent == r or r in parent.parents for r in TMPFS_ROOTS):
            parent.chmod(0o755)
    shutil.copy(helper, target)
    target.chmod(0o777)


def act(helper: Path, case: Case) -> Outcome:
    binary = Path(case.process.binary) if case.process.binary else helper
    cgroup = Path("/sys/fs/cgroup" + case.process.cgroup) if case.process.cgroup else None
    if cgroup is not None:
        cgroup.mkdir(parents=True, exist_ok=True)
    if case.exec is not None and case.fileless:
        argv = [str(binary), "exec-deleted", case.exec]
    elif case.exec is not None:
        argv = [str(binary), "exec", case.exec]
    elif case.open is not None:
        access = set(case.access or ("read",))
        argv = [str(binary), "open", case.open, "rw" if len(access) == 2 else "w" if "write" in access else "r"]
    else:
        assert case.connect is not None
        addr, port, proto = parse_endpoint(case.connect)
        argv = [str(binary), "connect", str(addr), str(port), proto.name.lower()]
    uid = case.process.uid

    def setup() -> None:
        if cgroup is not None:
            (cgroup / "cgroup.procs").write_text(str(os.getpid()))
        if uid:
            os.setgid(uid)
            os.setuid(uid)

    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, preexec_fn=setup)
    out, _ = proc.communicate(timeout=30)
    lines = out.strip().splitlines()
    # exec: a line only when execve failed; otherwise the new image ran.
    return Outcome(case, proc.pid, int(lines[-1]) if lines and lines[-1].lstrip("-").isdigit() else 0)


def about(alert: dict[str, Any], case: Case) -> bool:
    """Is ALERT about the case's operation on the case's object?"""
    ev = alert["event"]
    if case.exec is not None and case.fileless:
        # The deleted file's name is reported as d_path has it ("PATH (deleted)").
        return ev["operation"] == "exec" and alert["file"]["path"].startswith(case.exec)
    if case.exec is not None:
        return ev["operation"] == "exec" and alert["file"]["path"] == case.exec
    if case.open is not None:
        return ev["operation"] == "open" and alert["file"]["path"] == case.open
    addr, port, _ = parse_endpoint(case.connect or "")
    # the kernel reports ::ffff:a.b.c.d as a.b.c.d, and 0.0.0.0 / :: as the loopback address they reach
    net = alert["network"]
    return ev["operation"] == "connect" and net["dst_ip"] == str(reached_address(addr)) and net["dst_port"] == port


def kernel_verdict(outcome: Outcome, alerts: list[dict[str, Any]]) -> tuple[str, str | None, str | None]:
    mine = [a for a in alerts if a["process"]["pid"] == outcome.pid and about(a, outcome.case)]
    if outcome.errno == EPERM and not mine:
        return ("deny (no alert)", None, None)
    if not mine:
        return ("allow", None, None)
    a = mine[0]
    return (a["event"]["action"], a["policy"]["name"], a["rule"]["id"])


def expected_verdict(rs: RuleSet, case: Case) -> tuple[str, str | None, str | None]:
    v = evaluate_case(rs, case)
    if v.action == "allow":
        return ("allow", None, None)  # the kernel raises no alert for an allow
    return (v.action, v.policy, v.rule or "default")


def load_raw_policies(file: Path, workdir: Path) -> list[str]:
    """Policy files for `sentinel run`: the case file's inline policies, then its policyFiles."""
    raw = yaml.safe_load(file.read_text())
    paths = [str((file.parent / p).resolve()) for p in raw.get("policyFiles", [])]
    for i, doc in enumerate(raw.get("policies", [])):
        out = workdir / f"{file.stem}-{i}.yaml"
        out.write_text(yaml.safe_dump(doc))
        paths.append(str(out))
    return paths


@pytest.mark.parametrize("file", CASE_FILES, ids=[f.stem for f in CASE_FILES])
def test_evaluator_and_kernel_agree(file: Path, helper: Path, roots: None) -> None:
    plain = load_test_file(str(file))
    audit = governs_runner(plain.ruleset)
    tests = load_test_file(str(file), Mode.AUDIT) if audit else plain
    for path in tests.spec.files:
        place(helper, path)
    for case in tests.spec.cases:
        targets = [case.process.binary, case.exec, case.open]
        for path in targets:
            # Binaries become the helper; objects a case names under our tmpfs
            # roots must exist for the kernel to judge them.
            if path and (path == case.process.binary or not Path(path).exists()) and any(
                Path(path).is_relative_to(r) for r in TMPFS_ROOTS
            ):
                place(helper, path)
    for case in tests.spec.cases:
        # Selectors resolve cgroups at load: a cgroup made later needs a reload.
        if case.process.cgroup:
            Path("/sys/fs/cgroup" + case.process.cgroup).mkdir(parents=True, exist_ok=True)
    policies = load_raw_policies(file, WORK)
    events = WORK / f"{file.stem}.jsonl"
    extra = ["--mode", "audit"] if audit else []
    daemon: Daemon = start_daemon(Path(policies[0]), events, *sum((["--policy", p] for p in policies[1:]), []), *extra)
    try:
        outcomes = [act(helper, case) for case in tests.spec.cases]
        time.sleep(2)
    finally:
        daemon.stop()
        sentinel("unload")
    alerts = daemon.events()
    lost = sum(e["lost"]["count"] for e in daemon.events(None) if e["event"]["kind"] == "lost")
    mismatches = []
    for o in outcomes:
        want = expected_verdict(tests.ruleset, o.case)
        got = kernel_verdict(o, alerts)
        blocked_ok = (o.errno == EPERM) == (want[0] == "deny")
        if got != want or not blocked_ok:
            mismatches.append(f"{o.case.name}: evaluator {want}, kernel {got} errno {o.errno}")
    print(f"{file.name}: {len(outcomes)} cases, {len(mismatches)} disagreements, mode "
          f"{'audit' if audit else 'per policy'}, lost events {lost}")
    assert lost == 0, "alerts were lost: the comparison would be unsound"
    assert mismatches == [], "\n".join(mismatches)
