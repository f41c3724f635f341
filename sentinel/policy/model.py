"""The policy format as pydantic models: the boundary where YAML becomes typed.

Everything past this module (compiler, evaluator, kernel encoder) works on the
frozen dataclasses of `compiler/ir.py`; only `compiler/build.py` reads these
models. Field validators normalise on the way in, so a model that exists is
valid: port and uid specs are (first, last) tuples, addresses are
`ipaddress` networks.

Choices the contract leaves open:
* port 0 is accepted (ranges such as "0-1023" are natural, and a sockaddr may
  carry port 0); ports are 0..65535, uids 0..4294967294 (2^32-1 is the
  kernel's "invalid uid").
* paths and prefixes must be written normalised: absolute, no "." / ".." or
  empty components, no NUL, at most PATH_MAX-1 bytes, components at most
  NAME_MAX bytes. We reject rather than silently rewrite, so a rule always
  says literally what it protects.
* an exec/open match needs `paths` or `prefixes` (`prefixes: [/]` covers every
  file), or for exec `fileless: true`; a connect match needs at least one of
  its keys. `fileless: false` is an error: it would read as "files with a
  name", which `paths`/`prefixes` say.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    model_validator,
)

PATH_MAX = 4096  # bytes including the NUL, as in <linux/limits.h>
NAME_MAX = 255
PORT_MAX = 65535
UID_MAX = 2**32 - 2  # (uid_t)-1 means "no uid" to the kernel
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_RANGE = re.compile(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?")

IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a lowercase DNS label "
            "(a-z, 0-9 and '-', at most 63 characters, no leading or trailing '-')"
        )
    return value


def check_path(value: str) -> str:
    """Check that `value` is an absolute, normalised path; return it unchanged.

    A trailing "/" is tolerated here; callers decide whether it is required.
    Raises:
        ValueError: with a message that says what to write instead.
    """
    if "\x00" in value:
        raise ValueError(f"path {value!r} contains a NUL character")
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"path {value!r} is not valid UTF-8") from None
    if not value.startswith("/"):
        raise ValueError(f"path {value!r} must be absolute (start with '/')")
    if len(raw) > PATH_MAX - 1:
        raise ValueError(f"path is {len(raw)} bytes long; at most {PATH_MAX - 1} are allowed")
    body = value[1:-1] if value.endswith("/") else value[1:]
    if not body:
        return value
    for part in body.split("/"):
        if part == "":
            raise ValueError(f"path {value!r} has an empty component ('//')")
        if part in (".", ".."):
            raise ValueError(
                f"path {value!r} must not contain '.' or '..' components; write the normalised path"
            )
        if len(part.encode("utf-8")) > NAME_MAX:
            raise ValueError(f"path {value!r} has a component longer than {NAME_MAX} bytes")
    return value


def _file_path(value: str) -> str:
    check_path(value)
    if value.endswith("/"):
        raise ValueError(
            f"{value!r} ends with '/': `paths` names single files; use `prefixes` for a subtree"
        )
    return value


def _prefix(value: str) -> str:
    check_path(value)
    if not value.endswith("/"):
        raise ValueError(f"prefix {value!r} must end with '/' (it names a directory subtree)")
    return value


def _cgroup(value: str) -> str:
    check_path(value)
    if value != "/" and value.endswith("/"):
        raise ValueError(f"cgroup path {value!r} must not end with '/'")
    return value


def parse_range(value: object, what: str, high: int) -> tuple[int, int]:
    """Parse an int or "A-B" string into an inclusive (first, last) range."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{what} must be an integer or a string 'A-B', not {value!r}")
    if isinstance(value, int):
        first = last = value
    else:
        found = _RANGE.fullmatch(value)
        if found is None:
            raise ValueError(f"{what} {value!r} is not a number or a range 'A-B'")
        first = int(found[1])
        last = int(found[2]) if found[2] is not None else first
    for number in (first, last):
        if not 0 <= number <= high:
            raise ValueError(f"{what} {number} is out of range 0..{high}")
    if first > last:
        raise ValueError(f"{what} range {value!r} is reversed; write '{last}-{first}'")
    return (first, last)


def _port_range(value: object) -> tuple[int, int]:
    return parse_range(value, "port", PORT_MAX)


def _uid_range(value: object) -> tuple[int, int]:
    return parse_range(value, "uid", UID_MAX)


def parse_network(value: object) -> IPNetwork:
    """Parse an address or CIDR; host bits set is an error with a suggestion."""
    if not isinstance(value, str):
        raise ValueError(f"address must be a string such as '10.0.0.0/8', not {value!r}")
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or CIDR network") from None
    raise ValueError(f"{value!r} has host bits set; did you mean {loose}?")


DnsLabel = Annotated[StrictStr, AfterValidator(_dns_label)]
FilePath = Annotated[StrictStr, AfterValidator(_file_path)]
PrefixPath = Annotated[StrictStr, AfterValidator(_prefix)]
CgroupPath = Annotated[StrictStr, AfterValidator(_cgroup)]
PortRange = Annotated[tuple[int, int], BeforeValidator(_port_range)]
UidSpec = Annotated[tuple[int, int], BeforeValidator(_uid_range)]
Network = Annotated[IPNetwork, BeforeValidator(parse_network)]
ActionName = Literal["deny", "audit", "allow"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Metadata(_Model):
    name: DnsLabel
    description: StrictStr | None = None


class Selector(_Model):
    binaries: Annotated[tuple[FilePath, ...], Field(min_length=1)] | None = None
    not_binaries: Annotated[tuple[FilePath, ...], Field(min_length=1)] | None = Field(
        default=None, alias="notBinaries"
    )
    uids: Annotated[tuple[UidSpec, ...], Field(min_length=1)] | None = None
    cgroups: Annotated[tuple[CgroupPath, ...], Field(min_length=1)] | None = None


class Defaults(_Model):
    exec: ActionName = "allow"
    open: ActionName = "allow"
    connect: ActionName = "allow"


class FileMatch(_Model):
    """`match` of a file rule; ExecMatch adds `fileless`, OpenMatch `access`."""

    paths: Annotated[tuple[FilePath, ...], Field(min_length=1)] | None = None
    prefixes: Annotated[tuple[PrefixPath, ...], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _names_a_file(self) -> FileMatch:
        if self.paths is None and self.prefixes is None and not getattr(self, "fileless", None):
            raise ValueError("match needs `paths` or `prefixes` (use `prefixes: [/]` for every file)")
        return self


def _fileless(value: bool) -> bool:
    if value is not True:
        raise ValueError("`fileless` takes only `true` (to match files with a name, use `paths` or `prefixes`)")
    return value


class ExecMatch(FileMatch):
    """`fileless: true` matches a program with no name in any directory when it
    is executed or mapped executable (memfd, O_TMPFILE, a deleted file)."""

    fileless: Annotated[StrictBool, AfterValidator(_fileless)] | None = None


class OpenMatch(FileMatch):
    access: Annotated[tuple[Literal["read", "write"], ...], Field(min_length=1)] = (
        "read",
        "write",
    )


class ConnectMatch(_Model):
    addresses: Annotated[tuple[Network, ...], Field(min_length=1)] | None = None
    ports: Annotated[tuple[PortRange, ...], Field(min_length=1)] | None = None
    protocols: Annotated[tuple[Literal["tcp", "udp"], ...], Field(min_length=1)] = ("tcp", "udp")

    @model_validator(mode="before")
    @classmethod
    def _not_empty(cls, data: object) -> object:
        # Checked before defaults apply: `protocols` has one, yet `match: {}` is a mistake.
        if isinstance(data, dict) and not data:
            raise ValueError("match needs at least one of `addresses`, `ports`, `protocols`")
        return data


class _RuleBase(_Model):
    id: DnsLabel
    description: StrictStr | None = None
    action: ActionName
    severity: Literal["low", "medium", "high", "critical"] = "medium"


class ExecRule(_RuleBase):
    operation: Literal["exec"]
    match: ExecMatch


class OpenRule(_RuleBase):
    operation: Literal["open"]
    match: OpenMatch


class ConnectRule(_RuleBase):
    operation: Literal["connect"]
    match: ConnectMatch


Rule = Annotated[Union[ExecRule, OpenRule, ConnectRule], Field(discriminator="operation")]

# Which `match` keys each operation accepts, for "does not apply" messages.
MATCH_KEYS: dict[str, tuple[str, ...]] = {
    "exec": ("paths", "prefixes", "fileless"),
    "open": ("paths", "prefixes", "access"),
    "connect": ("addresses", "ports", "protocols"),
}


class Spec(_Model):
    mode: Literal["enforce", "audit"] = "enforce"
    selector: Selector = Selector()
    defaults: Defaults = Defaults()
    rules: Annotated[tuple[Rule, ...], Field(min_length=1)] = ()


class Policy(_Model):
    api_version: Literal["sentinel/v1"] = Field(alias="apiVersion")
    kind: Literal["Policy"]
    metadata: Metadata
    spec: Spec

    @property
    def name(self) -> str:
        return self.metadata.name


@dataclass(frozen=True)
class LoadedPolicy:
    """A validated policy and where it came from (for messages)."""

    policy: Policy
    file: str
    line: int  # 1-based start of the YAML document
    col: int
