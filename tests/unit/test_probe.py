"""Which mechanism `probe` (and so `doctor`) picks from what loads, and what
doctor says about it (host-only: _try_load is replaced, nothing is loaded)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from sentinel.commands import doctor
from sentinel.kernel import probe
from sentinel.kernel.objects import MECH_FMOD_RET, MECH_LSM, MECH_TRACE, MECH_TRACEPOINT, PROGRAMS


def kernel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, loads: set[str], lsms: list[str] | None) -> list[str]:
    """A kernel on which the programs of the mechanisms in LOADS load; the
    others are refused with EPERM. Returns the mechanisms tried, in order."""
    tried: list[str] = []
    by_programs = {programs: mech for mech, programs in PROGRAMS.items()}

    def try_load(programs: tuple[str, ...]) -> tuple[bool, str]:
        mech = by_programs[programs]
        tried.append(mech)
        return (True, "loads") if mech in loads else (False, "load sentinel.bpf.o: Operation not permitted (errno 1)")

    btf = tmp_path / "vmlinux"
    btf.write_bytes(b"")
    monkeypatch.setattr(probe, "_try_load", try_load)
    monkeypatch.setattr(probe, "BTF_VMLINUX", btf)
    monkeypatch.setattr(probe, "active_lsms", lambda: lsms)
    monkeypatch.delenv("SENTINEL_FORCE_MECHANISM", raising=False)
    return tried


@pytest.mark.parametrize(
    ("loads", "lsms", "expected"),
    [
        ({MECH_LSM, MECH_FMOD_RET, MECH_TRACE, MECH_TRACEPOINT}, ["capability", "bpf"], MECH_LSM),
        ({MECH_LSM, MECH_FMOD_RET, MECH_TRACE, MECH_TRACEPOINT}, ["capability"], MECH_FMOD_RET),
        ({MECH_TRACE, MECH_TRACEPOINT}, ["capability", "bpf"], MECH_TRACE),
        ({MECH_TRACEPOINT}, ["capability", "bpf"], MECH_TRACEPOINT),  # this project's build host
        ({MECH_TRACEPOINT}, None, MECH_TRACEPOINT),
        (set(), ["capability", "bpf"], None),
    ],
)
def test_strongest_mechanism_that_loads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, loads: set[str], lsms: list[str] | None, expected: str | None
) -> None:
    tried = kernel(monkeypatch, tmp_path, loads, lsms)
    report = probe.probe()
    assert report.mechanism == expected
    assert report.enforcing == (expected in (MECH_LSM, MECH_FMOD_RET))
    # every mechanism is probed by loading its real programs, the tracepoint one included
    assert sorted(tried) == sorted(PROGRAMS)
    assert report.cap("tracepoint-load").ok == (MECH_TRACEPOINT in loads)


def test_tracepoint_report_names_every_refusal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    kernel(monkeypatch, tmp_path, {MECH_TRACEPOINT}, ["capability", "bpf"])
    report = probe.probe()
    text = "\n".join(report.reasons)
    assert "BPF-LSM program failed" in text and "fmod_ret fallback failed" in text
    assert "fentry tracing programs failed" in text and "Operation not permitted" in text


def test_forced_tracepoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    kernel(monkeypatch, tmp_path, {MECH_LSM, MECH_FMOD_RET, MECH_TRACE, MECH_TRACEPOINT}, ["bpf"])
    monkeypatch.setenv("SENTINEL_FORCE_MECHANISM", MECH_TRACEPOINT)
    report = probe.probe()
    assert report.mechanism == MECH_TRACEPOINT and report.forced == MECH_TRACEPOINT and not report.enforcing


def test_doctor_says_tracepoint_is_audit_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kernel(monkeypatch, tmp_path, {MECH_TRACEPOINT}, ["capability", "bpf"])
    assert doctor.run(argparse.Namespace()) == 0
    out = capsys.readouterr().out
    assert "enforcement: NOT POSSIBLE on this kernel; audit mode only, through tracepoint" in out
    assert "`--mode enforce` exits 1" in out
    assert "io_uring" in out  # what tracepoints cannot see
    assert "tracepoint-load  yes" in out and "fentry-load      no" in out


def test_doctor_when_nothing_loads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kernel(monkeypatch, tmp_path, set(), ["capability", "bpf"])
    doctor.run(argparse.Namespace())
    out = capsys.readouterr().out
    assert "enforcement: NOT POSSIBLE on this kernel\n" in out
    assert "not even in audit mode" in out and "tracepoints" in out
