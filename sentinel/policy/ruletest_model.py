"""The schema of a rule test file (`rules_tests/*.yaml`); see rules_tests/README.md."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictBool, StrictInt, StrictStr, model_validator

from sentinel.policy.model import UID_MAX, CgroupPath, DnsLabel, FilePath, Policy, _Model


def _endpoint(value: str) -> str:
    from sentinel.compiler.evaluate import parse_endpoint

    parse_endpoint(value)
    return value


# ADDR:PORT[/tcp|/udp], IPv6 as [ADDR]:PORT; checked as a field, so that it is
# reported together with every other wrong field of the case.
Endpoint = Annotated[StrictStr, AfterValidator(_endpoint)]


class CaseProcess(_Model):
    binary: FilePath | None = None
    uid: Annotated[StrictInt, Field(ge=0, le=UID_MAX)] = 0
    cgroup: CgroupPath | None = None


class Expect(_Model):
    action: Literal["deny", "would_deny", "audit", "allow"]
    policy: DnsLabel | None = None  # omitted: no policy governs the process
    rule: StrictStr | None = None  # a rule id, or "default"

    @model_validator(mode="after")
    def _rule_needs_policy(self) -> Expect:
        if (self.policy is None) != (self.rule is None):
            raise ValueError("give both `policy` and `rule` (rule: default for a default), or neither")
        return self


class Case(_Model):
    name: StrictStr
    exec: FilePath | None = None
    open: FilePath | None = None
    access: Annotated[tuple[Literal["read", "write"], ...], Field(min_length=1)] | None = None
    connect: Endpoint | None = None
    # exec only: the file at `exec` is deleted before it runs (exec'd by fd):
    # it has no name in any directory, and its rules by identity still hold.
    fileless: StrictBool = False
    process: CaseProcess = CaseProcess()
    expect: Expect

    @model_validator(mode="after")
    def _one_operation(self) -> Case:
        problems = []
        given = [k for k in ("exec", "open", "connect") if getattr(self, k) is not None]
        if len(given) != 1:
            problems.append("a case needs exactly one of `exec`, `open`, `connect`")
        if self.access is not None and self.open is None:
            problems.append("`access` applies only to `open` cases")
        if self.fileless and self.exec is None:
            problems.append("`fileless` applies only to `exec` cases")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class RuleTestFile(_Model):
    description: StrictStr | None = None
    files: tuple[FilePath, ...] = ()  # created by the kernel runner before the run
    policy_files: tuple[StrictStr, ...] = Field(default=(), alias="policyFiles")
    policies: tuple[Policy, ...] = ()
    cases: Annotated[tuple[Case, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _has_policies(self) -> RuleTestFile:
        if not self.policies and not self.policy_files:
            raise ValueError("a test file needs `policies` or `policyFiles`")
        return self
