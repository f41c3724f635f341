"""Which mechanism the daemon loads, and that tracing never stands in for
enforcement (host-only: Enforcer.load is replaced, nothing touches the kernel)."""

from __future__ import annotations

import pytest

from sentinel import daemon
from sentinel.compiler.ir import Mode, RuleSet
from sentinel.errors import KernelError, NotSupported
from sentinel.kernel.objects import MECH_FMOD_RET, MECH_LSM, MECH_TRACE, MECH_TRACEPOINT
from tests.unit.test_encode import pol


class Loaded:
    def __init__(self, mechanism: str) -> None:
        self.mechanism = mechanism


def only_loads(monkeypatch: pytest.MonkeyPatch, loadable: str) -> list[str]:
    """A kernel on which only LOADABLE's programs load, with `bpf` an active
    LSM; returns the list of every mechanism tried, in order."""
    tried: list[str] = []

    def load(mechanism: str) -> Loaded:
        tried.append(mechanism)
        if mechanism != loadable:
            raise KernelError(f"load {mechanism}", 1)
        return Loaded(mechanism)

    monkeypatch.setattr("sentinel.kernel.objects.Enforcer.load", staticmethod(load))
    monkeypatch.setattr(daemon, "active_lsms", lambda: ["capability", "bpf"])
    monkeypatch.delenv("SENTINEL_FORCE_MECHANISM", raising=False)
    return tried


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Only tracing loads."""
    return only_loads(monkeypatch, MECH_TRACE)


def rules(mode: Mode) -> RuleSet:
    return RuleSet((pol(0, mode=mode),), (), (), ())


def test_enforcing_policies_never_fall_back_to_tracing(kernel: list[str]) -> None:
    with pytest.raises(NotSupported) as exc:
        daemon.load_enforcer(rules(Mode.ENFORCE))
    assert kernel == [MECH_LSM, MECH_FMOD_RET]
    msg = str(exc.value)
    assert "cannot enforce" in msg and "bpf-lsm" in msg and "fmod_ret" in msg and "--mode audit" in msg


def test_audit_mode_falls_back_to_tracing(kernel: list[str]) -> None:
    loaded = daemon.load_enforcer(rules(Mode.AUDIT))
    assert loaded.mechanism == MECH_TRACE and kernel == [MECH_LSM, MECH_FMOD_RET, MECH_TRACE]


def test_forced_mechanism(kernel: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_FORCE_MECHANISM", "trace")
    assert daemon.load_enforcer(rules(Mode.AUDIT)).mechanism == MECH_TRACE
    with pytest.raises(NotSupported, match="forced by SENTINEL_FORCE_MECHANISM"):
        daemon.load_enforcer(rules(Mode.ENFORCE))
    monkeypatch.setenv("SENTINEL_FORCE_MECHANISM", "nonsense")
    with pytest.raises(NotSupported, match="no such mechanism"):
        daemon.load_enforcer(rules(Mode.AUDIT))


@pytest.fixture
def tracepoints_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Only the tracepoint programs load (fentry is refused too, as on this
    project's build host)."""
    return only_loads(monkeypatch, MECH_TRACEPOINT)


def test_audit_mode_falls_back_to_tracepoints_last(tracepoints_only: list[str]) -> None:
    loaded = daemon.load_enforcer(rules(Mode.AUDIT))
    assert loaded.mechanism == MECH_TRACEPOINT
    assert tracepoints_only == [MECH_LSM, MECH_FMOD_RET, MECH_TRACE, MECH_TRACEPOINT]


def test_enforcing_policies_never_fall_back_to_tracepoints(tracepoints_only: list[str]) -> None:
    with pytest.raises(NotSupported) as exc:
        daemon.load_enforcer(rules(Mode.ENFORCE))
    assert tracepoints_only == [MECH_LSM, MECH_FMOD_RET]
    assert "cannot enforce" in str(exc.value) and "--mode audit" in str(exc.value)


def test_forced_tracepoint(tracepoints_only: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_FORCE_MECHANISM", MECH_TRACEPOINT)
    assert daemon.load_enforcer(rules(Mode.AUDIT)).mechanism == MECH_TRACEPOINT
    with pytest.raises(NotSupported, match="mechanism tracepoint .forced by SENTINEL_FORCE_MECHANISM. can only observe"):
        daemon.load_enforcer(rules(Mode.ENFORCE))
