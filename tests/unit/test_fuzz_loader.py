"""Fuzz the loader and the CLI's argument parsing with structured junk.

Whatever the input (wrong types, odd unicode, NUL, huge numbers, duplicate
keys, anchors and aliases, deep nesting, stray bytes, junk argv), the result
is either a clean load or exit 2 with `FILE:LINE:COL: message` diagnostics:
never a traceback, never another exit code, and never the kernel. Runs
in-process and derandomized so CI stays fast and stable (well under a minute).
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel.cli import main
from sentinel.errors import PolicyError
from sentinel.policy.loader import load_policies
from tests.strategies import argv_junk, junk_yaml

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
DIAGNOSTIC = re.compile(r"^(?P<file>.+):(?P<line>[1-9][0-9]*):(?P<col>[1-9][0-9]*): \S")


@pytest.fixture(autouse=True)
def no_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing in this suite may reach the kernel or start a daemon."""
    import sentinel.daemon

    def touched(*_: Any, **__: Any) -> None:
        raise AssertionError("the kernel was touched")

    monkeypatch.setattr(sentinel.daemon, "load_enforcer", touched)
    monkeypatch.setattr(sentinel.daemon.Daemon, "start", touched)


@contextlib.contextmanager
def policy_file(raw: bytes) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "junk.yaml"
        path.write_bytes(raw)
        yield str(path)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@FUZZ
@given(junk_yaml())
def test_loader_loads_or_reports_positions(raw: bytes) -> None:
    with policy_file(raw) as file:
        try:
            loaded = load_policies([file])
        except PolicyError as exc:
            assert exc.diagnostics
            for d in exc.diagnostics:
                assert d.file == file and d.line >= 1 and d.col >= 1 and d.message, d
        else:
            assert loaded and all(lp.file == file for lp in loaded)


@FUZZ
@given(junk_yaml(), st.sampled_from(["check", "compile", "explain", "test", "run"]))
def test_commands_exit_0_or_2_with_diagnostics(raw: bytes, command: str) -> None:
    with policy_file(raw) as file:
        try:
            load_policies([file])
            valid = True
        except PolicyError:
            valid = False
        argv = {
            "check": ["check", file],
            "compile": ["compile", file, "--json"],
            "explain": ["explain", file, "--open", "/r/x"],
            "test": ["test", file],  # a policy is never a valid rule test file
            "run": ["run", "--policy", file, "--output", "stdout"],
        }[command]
        if command == "run" and valid:
            with pytest.raises(AssertionError, match="kernel was touched"):
                run_cli(argv)
            return
        code, out, err = run_cli(argv)
    assert "Traceback" not in err
    if valid and command != "test":
        assert code == 0, err
        return
    assert code == 2, (code, out, err)
    lines = (out if command == "check" else err).splitlines()
    assert any(DIAGNOSTIC.match(line) for line in lines), (out, err)


@FUZZ
@given(junk_yaml())
def test_rule_test_files_never_crash(raw: bytes) -> None:
    with policy_file(b"policies:\n  - " + raw.replace(b"\n", b"\n    ") + b"\ncases: [{name: c, open: /x, expect: {action: allow}}]\n") as file:
        code, _, err = run_cli(["test", file])
    assert "Traceback" not in err
    assert code in (0, 1, 2), err


COMMANDS = ["check", "compile", "explain", "test", "run", "reload", "status", "doctor", "unload", "events"]


@FUZZ
@given(st.sampled_from(COMMANDS), argv_junk, st.booleans())
def test_junk_arguments_exit_2(command: str, junk: list[str], with_file: bool) -> None:
    """Junk arguments exit 2 before anything runs: the files named do not
    exist or hold junk, and commands that take no arguments reject any."""
    with tempfile.TemporaryDirectory() as tmp:
        junk_file = Path(tmp) / "junk.yaml"
        junk_file.write_text("spec: [")
        args = [str(junk_file) if with_file and i == 0 else str(Path(tmp) / a) if a and not a.startswith("-")
                else a for i, a in enumerate(junk)]
        if command in ("reload", "status", "doctor", "unload"):
            args.append("stray")  # these take no arguments: never run them
        elif command == "events":
            args += [str(Path(tmp) / "none.jsonl"), "stray"]
        elif command == "run":
            args += ["--policy", str(junk_file)]
        elif not args or args[-1].startswith("-") or command == "test":
            args.append(str(junk_file))
        code, _, err = run_cli([command, *args])
    assert "Traceback" not in err
    assert code == 2, (command, args, err)
