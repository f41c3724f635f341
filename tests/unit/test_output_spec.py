"""Output SPEC parsing."""

from __future__ import annotations

import pytest

from sentinel.errors import UsageError
from sentinel.output.spec import DEFAULT_SPEC, OutputSpec, parse_spec, parse_specs


@pytest.mark.parametrize("text,expected", [
    ("stdout", OutputSpec("stdout")),
    ("jsonl:/var/log/sentinel/events.jsonl", OutputSpec("jsonl", path="/var/log/sentinel/events.jsonl")),
    ("jsonl:relative/x.jsonl", OutputSpec("jsonl", path="relative/x.jsonl")),
    ("syslog:udp://127.0.0.1:514", OutputSpec("syslog", "udp", host="127.0.0.1", port=514)),
    ("syslog:tcp://siem.example.com:6514", OutputSpec("syslog", "tcp", host="siem.example.com", port=6514)),
    ("syslog:tcp://[2001:db8::1]:601", OutputSpec("syslog", "tcp", host="2001:db8::1", port=601)),
    ("syslog:unix:/dev/log", OutputSpec("syslog", "unix", path="/dev/log")),
])
def test_valid_specs_parse_and_round_trip(text: str, expected: OutputSpec) -> None:
    spec = parse_spec(text)
    assert spec == expected
    assert str(spec) == text
    assert parse_spec(str(spec)) == spec


@pytest.mark.parametrize("text", [
    "", "stderr", "file:/tmp/x", "jsonl:", "syslog:", "syslog:udp://", "syslog:udp://host",
    "syslog:udp://host:0", "syslog:udp://host:65536", "syslog:tcp://host:port",
    "syslog:http://host:80", "syslog:udp:host:514", "syslog:tcp://host:514/path",
    "syslog:tcp://user@host:514", "syslog:unix:", "syslog:tcp://:514",
])
def test_invalid_specs_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_spec(text)
    assert info.value.exit_code == 2
    assert repr(text) in str(info.value)
    assert "syslog:tcp://HOST:PORT" in str(info.value)


def test_default_and_duplicates() -> None:
    assert [str(s) for s in parse_specs(None)] == [DEFAULT_SPEC]
    assert len(parse_specs(["stdout", "jsonl:/tmp/a"])) == 2
    with pytest.raises(UsageError, match="more than once"):
        parse_specs(["jsonl:/tmp/a", "jsonl:/tmp/a"])
