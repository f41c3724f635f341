"""Loader: every error kind, reported at its exact FILE:LINE:COL, all at once."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from sentinel.errors import PolicyError
from sentinel.policy.loader import load_policies

HEADER = """\
apiVersion: sentinel/v1
kind: Policy
metadata:
  name: p
spec:
  rules:
"""  # the first rule starts on line 7


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def errors(*paths: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policies(paths)
    return [str(d) for d in info.value.diagnostics]


def rule(body: str) -> str:
    return HEADER + body


def test_valid_policy_loads_with_defaults(tmp_path: Path) -> None:
    file = write(tmp_path, rule(
        "    - id: r\n      operation: connect\n      action: deny\n"
        "      match: {addresses: [10.0.0.0/8], ports: [22, \"6000-6100\"]}\n"
    ))
    [loaded] = load_policies([file])
    assert (loaded.file, loaded.line, loaded.col) == (file, 1, 1)
    spec = loaded.policy.spec
    assert spec.mode == "enforce" and spec.defaults.open == "allow"
    r = spec.rules[0]
    assert r.severity == "medium"
    assert r.match.ports == ((22, 22), (6000, 6100))
    assert r.match.protocols == ("tcp", "udp")
    assert r.match.addresses == (ipaddress.ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize(
    ("body", "where", "fragment"),
    [
        ("    - id: r\n      operation: open\n      action: deny\n      match: {paths: [etc/x]}\n",
         "10:23", "must be absolute"),
        ("    - id: r\n      operation: open\n      action: deny\n      match: {paths: [/etc/../x]}\n",
         "10:23", "'.' or '..' components"),
        ("    - id: r\n      operation: open\n      action: deny\n      match: {paths: [/etc/./x]}\n",
         "10:23", "'.' or '..' components"),
        ("    - id: r\n      operation: open\n      action: deny\n      match: {paths: [/etc//x]}\n",
         "10:23", "empty component"),
        ("    - id: r\n      operation: open\n      action: deny\n      match: {paths: [\"/etc/\\0x\"]}\n",
         "10:23", "NUL"),
        ("    - id: r\n      operation: open\n      action: deny\n      match: {paths: [/etc/]}\n",
         "10:23", "use `prefixes`"),
        ("    - id: r\n      operation: open\n      action: deny\n      match: {prefixes: [/etc]}\n",
         "10:26", "must end with '/'"),
        ("    - id: r\n      operation: open\n      action: deny\n      match: {paths: []}\n",
         "10:22", "must not be empty"),
        ("    - id: r\n      operation: open\n      action: deny\n      match: {}\n",
         "10:14", "needs `paths` or `prefixes`"),
        ("    - id: r\n      operation: connect\n      action: deny\n      match: {}\n",
         "10:14", "at least one of"),
        ("    - id: r\n      operation: connect\n      action: deny\n      match: {addresses: [10.0.0.1/8]}\n",
         "10:27", "host bits set; did you mean 10.0.0.0/8?"),
        ("    - id: r\n      operation: connect\n      action: deny\n      match: {addresses: [\"2001:db8::1/32\"]}\n",
         "10:27", "did you mean 2001:db8::/32?"),
        ("    - id: r\n      operation: connect\n      action: deny\n      match: {addresses: [10.0.0.300]}\n",
         "10:27", "not an IP address"),
        ("    - id: r\n      operation: connect\n      action: deny\n      match: {ports: [\"6100-6000\"]}\n",
         "10:23", "reversed; write '6000-6100'"),
        ("    - id: r\n      operation: connect\n      action: deny\n      match: {ports: [65536]}\n",
         "10:23", "out of range 0..65535"),
        ("    - id: r\n      operation: connect\n      action: deny\n      match: {ports: [-1]}\n",
         "10:23", "port -1 is out of range 0..65535"),
        ("    - id: r\n      operation: connect\n      action: deny\n      match: {ports: [\"22-ssh\"]}\n",
         "10:23", "not a number or a range"),
        ("    - id: r\n      operation: connect\n      action: deny\n      match: {ports: [true]}\n",
         "10:23", "port must be an integer"),
        ("    - id: r\n      operation: exec\n      action: deny\n      match: {paths: [/x], ports: [22]}\n",
         "10:28", "'ports' does not apply to exec rules"),
        ("    - id: r\n      operation: open\n      action: deny\n      match: {paths: [/x], addresses: [10.0.0.0/8]}\n",
         "10:28", "'addresses' does not apply to open rules"),
        ("    - id: r\n      operation: exec\n      action: deny\n      match: {paths: [/x], access: [read]}\n",
         "10:28", "'access' does not apply to exec rules"),
        ("    - id: r\n      operation: connect\n      action: deny\n      match: {ports: [1], access: [read]}\n",
         "10:27", "'access' does not apply to connect rules"),
        ("    - id: r\n      operation: connect\n      action: deny\n      match: {ports: [1], paths: [/x]}\n",
         "10:27", "'paths' does not apply to connect rules"),
        ("    - id: r\n      operation: connect\n      action: deny\n      match: {ports: [1], prefixes: [/x/]}\n",
         "10:27", "'prefixes' does not apply to connect rules"),
        ("    - id: r\n      operation: open\n      action: deny\n      match: {fileless: true}\n",
         "10:15", "'fileless' does not apply to open rules"),
        ("    - id: r\n      operation: connect\n      action: deny\n      match: {ports: [1], fileless: true}\n",
         "10:27", "'fileless' does not apply to connect rules"),
        ("    - id: r\n      operation: exec\n      action: deny\n      match: {fileless: false}\n",
         "10:25", "`fileless` takes only `true`"),
        ("    - id: r\n      operation: exec\n      action: deny\n      match: {fileless: yes please}\n",
         "10:25", "spec.rules[0].match.fileless"),
        ("    - id: r\n      operation: open\n      action: deny\n      match: {paths: [/x], access: [exec]}\n",
         "10:37", "Input should be 'read' or 'write'"),
        ("    - id: r\n      operation: open\n      action: maybe\n      match: {paths: [/x]}\n",
         "9:15", "spec.rules[0].action"),
        ("    - id: r\n      operation: open\n      action: deny\n      severity: huge\n      match: {paths: [/x]}\n",
         "10:17", "spec.rules[0].severity"),
        ("    - id: Rule_1\n      operation: open\n      action: deny\n      match: {paths: [/x]}\n",
         "7:11", "not a lowercase DNS label"),
        ("    - id: r\n      operation: chmod\n      action: deny\n",
         "8:18", "must be one of exec, open, connect"),
        ("    - id: r\n      action: deny\n",
         "7:7", "missing required key 'operation'"),
        ("    - id: r\n      operation: open\n      match: {paths: [/x]}\n",
         "7:7", "missing required key 'action'"),
        ("    - id: r\n      operation: open\n      action: deny\n      match: {paths: [/x]}\n      colour: red\n",
         "11:7", "unknown key 'colour'"),
        ("    - id: r\n      operation: open\n      action: deny\n      match: {paths: [42]}\n",
         "10:23", "valid string"),
        ("    - id: r\n      operation: open\n      action: deny\n      match: {paths: /etc/shadow}\n",
         "10:22", "spec.rules[0].match.paths"),
    ],
)
def test_rule_errors_point_at_the_value(tmp_path: Path, body: str, where: str, fragment: str) -> None:
    file = write(tmp_path, rule(body))
    found = errors(file)
    assert len(found) == 1, found
    assert found[0].startswith(f"{file}:{where}: "), found
    assert fragment in found[0]


def test_header_errors(tmp_path: Path) -> None:
    file = write(tmp_path, """\
apiVersion: sentinel/v2
kind: Polcy
metadata:
  name: -bad-
  extra: 1
spec:
  mode: dry
  selector:
    uids: [0, "10-5", 4294967295]
    cgroups: [/a/]
    notBinaries: [/usr/bin/apt/]
  defaults: {exec: block}
""")
    assert errors(file) == [
        f"{file}:1:13: apiVersion: Input should be 'sentinel/v1'",
        f"{file}:2:7: kind: Input should be 'Policy'",
        f"{file}:4:9: metadata.name: '-bad-' is not a lowercase DNS label "
        "(a-z, 0-9 and '-', at most 63 characters, no leading or trailing '-')",
        f"{file}:5:3: metadata.extra: unknown key 'extra'",
        f"{file}:7:9: spec.mode: Input should be 'enforce' or 'audit'",
        f"{file}:9:15: spec.selector.uids[1]: uid range '10-5' is reversed; write '5-10'",
        f"{file}:9:23: spec.selector.uids[2]: uid 4294967295 is out of range 0..4294967294",
        f"{file}:10:15: spec.selector.cgroups[0]: cgroup path '/a/' must not end with '/'",
        f"{file}:11:19: spec.selector.notBinaries[0]: '/usr/bin/apt/' ends with '/': "
        "`paths` names single files; use `prefixes` for a subtree",
        f"{file}:12:20: spec.defaults.exec: Input should be 'deny', 'audit' or 'allow'",
    ]


def test_uid_edges_accepted(tmp_path: Path) -> None:
    file = write(tmp_path, HEADER.replace("  rules:\n", "  selector: {uids: [0, \"0-4294967294\"]}\n"))
    [loaded] = load_policies([file])
    assert loaded.policy.spec.selector.uids == ((0, 0), (0, 4294967294))


def test_port_zero_and_max_accepted(tmp_path: Path) -> None:
    file = write(tmp_path, rule(
        "    - {id: r, operation: connect, action: deny, match: {ports: [0, \"0-65535\", 65535]}}\n"
    ))
    [loaded] = load_policies([file])
    assert loaded.policy.spec.rules[0].match.ports == ((0, 0), (0, 65535), (65535, 65535))


def test_missing_spec_and_wrong_document_type(tmp_path: Path) -> None:
    a = write(tmp_path, "apiVersion: sentinel/v1\nkind: Policy\nmetadata: {name: a}\n", "a.yaml")
    b = write(tmp_path, "- just\n- a list\n", "b.yaml")
    assert errors(a, b) == [
        f"{a}:1:1: document: missing required key 'spec'",
        f"{b}:1:1: document: Input should be a valid dictionary or instance of Policy",
    ]


def test_duplicate_rule_ids_and_keys(tmp_path: Path) -> None:
    file = write(tmp_path, rule(
        "    - {id: r, operation: exec, action: deny, match: {paths: [/a]}}\n"
        "    - {id: r, operation: exec, action: deny, match: {paths: [/b]}}\n"
        "    - {id: s, id: t, operation: exec, action: deny, match: {paths: [/b]}}\n"
    ))
    assert errors(file) == [
        f"{file}:8:12: spec.rules[1].id: duplicate rule id 'r' (first used at line 7)",
        f"{file}:9:15: duplicate key 'id'",
    ]


def test_duplicate_policy_names_across_files(tmp_path: Path) -> None:
    text = HEADER.replace("  rules:\n", "  mode: audit\n")
    a = write(tmp_path, text, "a.yaml")
    b = write(tmp_path, text, "b.yaml")
    assert errors(a, b) == [
        f"{b}:4:9: metadata.name: policy 'p' is already defined in {a}:1:1"
    ]


def test_yaml_syntax_error_position(tmp_path: Path) -> None:
    file = write(tmp_path, "apiVersion: sentinel/v1\nkind: Policy\nmetadata: {name: [p}\n")
    [found] = errors(file)
    assert found.startswith(f"{file}:3:20: YAML: ")


def test_non_utf8_file_reports_position(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"apiVersion: sentinel/v1\nkind: \xffPolicy\n")
    assert errors(str(path)) == [f"{path}:2:7: file is not valid UTF-8"]


def test_odd_characters_in_paths_do_not_crash(tmp_path: Path) -> None:
    file = write(tmp_path, rule(
        '    - {id: r, operation: open, action: deny, match: {paths: ["/tmp/\\ud800", "/tmp/a\\tb", "/tmp/é"]}}\n'
    ))
    [found] = errors(file)
    assert found.startswith(f"{file}:7:62: ") and "not valid UTF-8" in found


def test_path_length_limit(tmp_path: Path) -> None:
    ok = ("/" + "a" * 99) * 40 + "/" + "b" * 94
    assert len(ok) == 4095
    too_long = ok + "b"
    file = write(tmp_path, rule(
        f"    - {{id: r, operation: open, action: deny, match: {{paths: [{ok}]}}}}\n"
        f"    - {{id: s, operation: open, action: deny, match: {{paths: [{too_long}]}}}}\n"
    ))
    [found] = errors(file)
    assert found.startswith(f"{file}:8:") and "4096 bytes long; at most 4095" in found
    long_name = write(tmp_path, rule(
        f"    - {{id: r, operation: open, action: deny, match: {{paths: [/{'x' * 256}]}}}}\n"
    ), "n.yaml")
    assert "longer than 255 bytes" in errors(long_name)[0]


def test_all_files_reported_at_once(tmp_path: Path) -> None:
    a = write(tmp_path, rule("    - {id: r, operation: open, action: deny, match: {paths: [x]}}\n"), "a.yaml")
    b = write(tmp_path, rule("    - {id: r, operation: open, action: nope, match: {paths: [/x]}}\n"), "b.yaml")
    found = errors(str(tmp_path))
    assert [f.split(":")[0] for f in found] == [a, b]


def test_directory_loads_only_yaml_sorted(tmp_path: Path) -> None:
    for name in ("b", "a"):
        write(tmp_path, HEADER.replace("name: p", f"name: {name}").replace("  rules:", "  mode: audit"), f"{name}.yaml")
    (tmp_path / "notes.txt").write_text("not a policy")
    loaded = load_policies([tmp_path])
    assert [lp.policy.name for lp in loaded] == ["a", "b"]


def test_missing_file_and_empty_directory(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert errors(str(tmp_path / "nope.yaml"), str(empty)) == [
        f"{empty}:1:1: directory contains no *.yaml files",
        f"{tmp_path / 'nope.yaml'}:1:1: cannot read file: No such file or directory",
    ]


def test_multi_document_file_and_policy_limit(tmp_path: Path) -> None:
    docs = [HEADER.replace("name: p", f"name: p{i}").replace("  rules:", "  mode: audit") for i in range(64)]
    file = write(tmp_path, "---\n".join(docs))
    [found] = errors(file)
    assert found == (f"{file}:{63 * 7}:1: more than 63 YAML documents in one file "
                     "(document limit; at most 63 policies can be loaded at once)")
    ok = write(tmp_path, "---\n".join(docs[:63]), "ok.yaml")
    assert len(load_policies([ok])) == 63
    extra = write(tmp_path, docs[63], "extra.yaml")
    assert errors(ok, extra) == [f"{extra}:1:1: too many policies: at most 63 can be loaded at once"]


def test_empty_rules_list_and_empty_file(tmp_path: Path) -> None:
    a = write(tmp_path, HEADER.replace("  rules:", "  rules: []"), "a.yaml")
    b = write(tmp_path, "", "b.yaml")
    assert errors(a, b) == [
        f"{a}:6:10: spec.rules: must not be empty (omit the key to use the default)",
        f"{b}:1:1: file contains no policy document",
    ]


def test_control_characters_and_merge_keys(tmp_path: Path) -> None:
    a = write(tmp_path, "apiVersion: sentinel/v1\nkind: Policy\nmetadata: {name: a\x01}\n", "a.yaml")
    b = write(tmp_path, "x: {c: 1}\n<<: {c: 2}\n", "b.yaml")
    c = write(tmp_path, HEADER.replace("  rules:", "  rules: null"), "c.yaml")
    assert errors(a, b, c) == [
        f"{a}:3:19: YAML: control character U+0001 is not allowed",
        f"{b}:1:1: document: missing required key 'apiVersion'",
        f"{b}:1:1: document: missing required key 'kind'",
        f"{b}:1:1: document: missing required key 'metadata'",
        f"{b}:1:1: document: missing required key 'spec'",
        f"{b}:1:1: x: unknown key 'x'",
        f"{b}:2:1: YAML merge keys ('<<') are not supported",
        f"{c}:6:10: spec.rules: Input should be a list",
    ]


def test_every_wrong_entry_of_a_rule_is_reported(tmp_path: Path) -> None:
    """paths and prefixes both wrong, addresses and ports both wrong: each entry."""
    file = write(tmp_path, rule(
        "    - {id: r, operation: open, action: deny, match: {paths: [a, /b/], prefixes: [/c, d/]}}\n"
        "    - {id: s, operation: connect, action: deny, match: {addresses: [1.2.3.4/8, x], ports: [99999, \"5-1\"]}}\n"
    ))
    found = [f.split(": ", 1)[0].rsplit(":", 2)[1:] + [f.split(": ")[1]] for f in errors(file)]
    assert [where[-1] for where in found] == [
        "spec.rules[0].match.paths[0]", "spec.rules[0].match.paths[1]",
        "spec.rules[0].match.prefixes[0]", "spec.rules[0].match.prefixes[1]",
        "spec.rules[1].match.addresses[0]", "spec.rules[1].match.addresses[1]",
        "spec.rules[1].match.ports[0]", "spec.rules[1].match.ports[1]",
    ]
