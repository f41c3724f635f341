"""Bounded loading: every limit in sentinel.policy.limits gives FILE:LINE:COL
naming it and exit 2, for every command that reads policies or rule tests,
and a reload (compile_policies) rejects the file like any invalid policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.cli import main
from sentinel.errors import PolicyError
from sentinel.policy import limits
from sentinel.policy.loader import load_policies

POLICY = """\
apiVersion: sentinel/v1
kind: Policy
metadata: {name: p}
spec:
  rules:
    - {id: r, operation: open, action: deny, match: {paths: [/x]}}
"""


def billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


# name -> (file text, expected "LINE:COL: message" prefix)
HOSTILE: dict[str, tuple[str, str]] = {
    "billion-laughs": (billion_laughs(), "1:4: YAML anchor '&a' is not allowed"),
    "alias": (POLICY.replace("{name: p}", "&m {name: p}") + "x: *m\n", "3:11: YAML anchor '&m' is not allowed"),
    "deep-flow": ("[" * 5000 + "]" * 5000 + "\n", f"1:{limits.MAX_DEPTH + 1}: YAML nested deeper than 32 levels (depth limit 32"),
    "deep-block-seq": ("- " * 5000 + "x\n", f"1:{2 * limits.MAX_DEPTH + 1}: YAML nested deeper than 32 levels"),
    # 2,000 levels: 5,000 indented ones would pass the size limit first
    "deep-block-map": ("".join(" " * i + "k:\n" for i in range(2000)), "33:33: YAML nested deeper than 32 levels"),
    "huge": ("a: b\n" * (limits.MAX_FILE_BYTES // 5 + 1), "1:1: file is larger than 4,194,304 bytes (file size limit 4 MiB"),
    "long-line": (POLICY.replace("{name: p}", "{name: " + "p" * 20_000 + "}"),
                  "3:16385: line is longer than 16,384 characters (line length limit 16,384"),
    "nodes": ("".join("- 0\n" for _ in range(limits.MAX_NODES + 10)),
              f"{limits.MAX_NODES}:3: more than 150,000 YAML nodes in one file (node limit 150,000"),
    "documents": ("---\n" * (limits.MAX_DOCUMENTS + 1), "64:1: more than 63 YAML documents in one file (document limit"),
}


@pytest.fixture(params=sorted(HOSTILE))
def hostile(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    text, where = HOSTILE[request.param]
    path = tmp_path / f"{request.param}.yaml"
    path.write_text(text)
    return str(path), f"{path}:{where}"


def test_loader_rejects_at_the_limit(hostile: tuple[str, str]) -> None:
    file, expected = hostile
    with pytest.raises(PolicyError) as info:
        load_policies([file])
    assert str(info.value.diagnostics[0]).startswith(expected), info.value.diagnostics[0]


@pytest.mark.parametrize("command", ["check", "compile", "explain", "test", "run"])
def test_every_command_exits_2(
    command: str, hostile: tuple[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sentinel.daemon

    def no_kernel(*_: object) -> None:
        raise AssertionError("the kernel was touched")

    monkeypatch.setattr(sentinel.daemon, "load_enforcer", no_kernel)
    file, expected = hostile
    argv = {
        "check": ["check", file],
        "compile": ["compile", file],
        "explain": ["explain", file, "--open", "/x"],
        "test": ["test", file],
        "run": ["run", "--policy", file, "--output", "stdout"],
    }[command]
    code = main(argv)
    out = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in out.err
    assert any(line.startswith(expected) for line in (out.out + out.err).splitlines()), out


def test_reload_rejects_a_bomb(tmp_path: Path) -> None:
    """A reload compiles through the same loader: a bomb is a PolicyError
    (the daemon keeps the old policies and emits reload_rejected)."""
    from sentinel.daemon import compile_policies

    (tmp_path / "ok.yaml").write_text(POLICY)
    compile_policies([str(tmp_path)], None)
    (tmp_path / "bomb.yaml").write_text(billion_laughs())
    with pytest.raises(PolicyError) as info:
        compile_policies([str(tmp_path)], None)
    assert str(info.value.diagnostics[0]).startswith(f"{tmp_path / 'bomb.yaml'}:1:4: YAML anchor")


def test_anchor_and_alias_reports_are_capped(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("a: &a x\nb: [" + ", ".join(["*a"] * 1000) + "]\n")
    with pytest.raises(PolicyError) as info:
        load_policies([path])
    assert 1 < len(info.value.diagnostics) <= 20


def test_a_file_just_within_the_limits_loads(tmp_path: Path) -> None:
    """Depth, line length and size right at their limits are accepted."""
    path = tmp_path / "p.yaml"
    deep = "[" * (limits.MAX_DEPTH - 1) + "]" * (limits.MAX_DEPTH - 1)
    text = POLICY + f"  # {'x' * (limits.MAX_LINE_CHARS - 4)}\n"
    path.write_text(text)
    [loaded] = load_policies([path])
    assert loaded.policy.name == "p"
    path.write_text(f"x: {deep}\n")  # the root mapping and 31 lists: depth 32
    with pytest.raises(PolicyError) as info:
        load_policies([path])
    assert "nested deeper" not in str(info.value) and "unknown key 'x'" in str(info.value)


def test_non_regular_and_unreadable_names(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policies(["/dev/zero", "a\x00b", "\udcff.yaml"])
    found = [str(d) for d in info.value.diagnostics]
    assert found[0].startswith("/dev/zero:1:1: file is larger than")
    assert all(":1:1: cannot read file" in f for f in found[1:]), found


def test_bad_scalar_values_are_diagnostics(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY.replace("{name: p}", "{name: p, description: 2024-13-45}")
                    + "x: " + "9" * 5000 + "\n")
    with pytest.raises(PolicyError) as info:
        load_policies([path])
    found = [str(d) for d in info.value.diagnostics]
    assert any(f.startswith(f"{path}:3:34: YAML: cannot read value '2024-13-45'") for f in found), found
    assert any(f.startswith(f"{path}:7:4: YAML: cannot read value") for f in found), found
