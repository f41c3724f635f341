"""Read policy files into validated models, reporting every error at once.

YAML is composed into nodes (not loaded into plain objects) so each value keeps
its source mark; pydantic's error locations are then mapped back to those
marks and every problem becomes a `FILE:LINE:COL: message` diagnostic. All
files are read and all errors collected before anything is raised.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.scanner import Scanner

from sentinel.compiler.ir import MAX_POLICIES
from sentinel.errors import Diagnostic, PolicyError
from sentinel.policy import limits

try:
    from yaml._yaml import CParser

    _LIBYAML = True
except ImportError:  # PyYAML built without libyaml
    _LIBYAML = False
from sentinel.policy.model import MATCH_KEYS, LoadedPolicy, Policy

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]
Mark = tuple[int, int]  # 1-based (line, col)


@dataclass
class _Document:
    """One YAML document as plain data plus the marks of every key and value."""

    file: str
    data: Any
    start: Mark
    keys: dict[Loc, Mark] = field(default_factory=dict)
    values: dict[Loc, Mark] = field(default_factory=dict)


def _mark(node: yaml.Node) -> Mark:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Turns a composed node tree into Python data, recording marks by location."""

    def __init__(self, doc: _Document, diags: list[Diagnostic]) -> None:
        self.doc = doc
        self.diags = diags
        self.constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.doc.values[loc] = _mark(node)
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self._error(key_node, "YAML merge keys ('<<') are not supported")
                    continue
                key = self.build(key_node, loc + ("<key>",))
                if not isinstance(key, str):
                    self._error(key_node, f"mapping keys must be strings, not {key!r}")
                    continue
                if key in result:
                    self._error(key_node, f"duplicate key '{key}'")
                    continue
                self.doc.keys[loc + (key,)] = _mark(key_node)
                result[key] = self.build(value_node, loc + (key,))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, loc + (i,)) for i, item in enumerate(node.value)]
        try:
            return self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            # A timestamp such as 2024-13-45, an int past Python's 4,300-digit
            # conversion limit: the YAML is well-formed, the value is not.
            problem = exc.problem if isinstance(exc, yaml.MarkedYAMLError) and exc.problem else str(exc)
            self._error(node, f"YAML: cannot read value {node.value[:40]!r}: {problem}")
            return None

    def _error(self, node: yaml.Node, message: str) -> None:
        line, col = _mark(node)
        self.diags.append(Diagnostic(self.doc.file, line, col, message))


def _position(data: bytes, offset: int) -> Mark:
    line = data.count(b"\n", 0, offset) + 1
    return (line, offset - (data.rfind(b"\n", 0, offset) + 1) + 1)


def _text_position(text: str, offset: int) -> Mark:
    line = text.count("\n", 0, offset) + 1
    return (line, offset - (text.rfind("\n", 0, offset) + 1) + 1)


class _LimitExceeded(Exception):
    """A file went past one of sentinel.policy.limits; reading stops there."""

    def __init__(self, mark: Any, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


# Anchor and alias problems reported per file; a file of nothing but aliases
# would otherwise print one line per node.
_MAX_ALIAS_REPORTS = 20
_ALIASES = f"policies use no anchors or aliases; {limits.DOCS}"


def _scan(parser: Any) -> list[tuple[Any, str]]:
    """Check a file's YAML event stream against the limits, one event at a
    time and keeping none, before anything is composed: nothing is built, so
    an alias bomb never expands, 5,000 levels of nesting never reach a
    recursive composer, and memory stays flat however long the stream is.

    Returns the (mark, message) of anchors and aliases (they are rejected
    outright: an alias is what a "billion laughs" bomb is made of, and no
    policy needs one).
    Raises:
        _LimitExceeded: depth, node count or document count passed its limit.
        yaml.YAMLError: invalid YAML.
    """
    problems: list[tuple[Any, str]] = []
    depth = nodes = documents = 0
    while True:
        event = parser.get_event()
        if event is None or isinstance(event, yaml.StreamEndEvent):
            return problems
        if isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            continue
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > limits.MAX_DOCUMENTS:
                raise _LimitExceeded(event.start_mark, (
                    f"more than {limits.MAX_DOCUMENTS} YAML documents in one file "
                    f"(document limit; at most {limits.MAX_DOCUMENTS} policies can be loaded at once)"))
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue
        nodes += 1
        if nodes > limits.MAX_NODES:
            raise _LimitExceeded(event.start_mark, (
                f"more than {limits.MAX_NODES:,} YAML nodes in one file "
                f"(node limit {limits.MAX_NODES:,}; {limits.DOCS})"))
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > limits.MAX_DEPTH:
                raise _LimitExceeded(event.start_mark, (
                    f"YAML nested deeper than {limits.MAX_DEPTH} levels "
                    f"(depth limit {limits.MAX_DEPTH}; {limits.DOCS})"))
        if event.anchor is not None and len(problems) < _MAX_ALIAS_REPORTS:
            if isinstance(event, yaml.AliasEvent):
                problems.append((event.start_mark, f"YAML alias '*{event.anchor}' is not allowed ({_ALIASES})"))
            else:
                problems.append((event.start_mark, f"YAML anchor '&{event.anchor}' is not allowed ({_ALIASES})"))


class _PureParser(Reader, Scanner, Parser):
    """PyYAML's own parser, for its messages (the ones users have seen)."""

    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)


# Files at most this big get their YAML syntax errors from PyYAML's own
# parser, whose messages and marks are the ones the tests and users know;
# bigger ones keep libyaml's, so that an error at the end of a 4 MiB file
# does not cost a pure-Python parse of all of it (seconds, on a reload).
_PURE_RERUN_MAX_CHARS = 256 * 1024


def _compose_all(text: str) -> tuple[list[yaml.Node], list[tuple[Any, str]]]:
    """Every document's node tree, once the event stream has passed `_scan`;
    when it has anchors or aliases, no nodes and those problems.

    libyaml's parser when PyYAML has it: the pure-Python one takes ~2 ms per
    rule, most of a 100,000-rule load. Both give the same nodes and marks; on
    a YAML error in a small file the pure-Python parser runs again so that
    diagnostics stay exactly what they were.

    Raises:
        _LimitExceeded: depth, node or document limit (see limits.py).
        yaml.YAMLError: invalid YAML.
    """
    if _LIBYAML:
        try:
            problems = _scan(CParser(text))
            if problems:
                return [], problems
            return [n for n in yaml.compose_all(text, Loader=yaml.CSafeLoader) if n is not None], []
        except yaml.YAMLError:
            if len(text) > _PURE_RERUN_MAX_CHARS:
                raise
    problems = _scan(_PureParser(text))
    if problems:
        return [], problems
    return [n for n in yaml.compose_all(text, Loader=yaml.SafeLoader) if n is not None], []


_NON_PRINTABLE = Reader.NON_PRINTABLE  # what the YAML spec forbids, as PyYAML checks it


def _read_bounded(file: str, diags: list[Diagnostic]) -> bytes | None:
    """The file's bytes, never reading more than MAX_FILE_BYTES + 1."""
    limit = limits.MAX_FILE_BYTES
    too_big = f"file is larger than {limit:,} bytes (file size limit {limit // 2**20} MiB; {limits.DOCS})"
    try:
        with open(file, "rb") as stream:
            info = os.fstat(stream.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > limit:
                diags.append(Diagnostic(file, 1, 1, too_big))
                return None
            raw = stream.read(limit + 1)
    except OSError as exc:
        diags.append(Diagnostic(file, 1, 1, f"cannot read file: {exc.strerror or exc}"))
        return None
    except ValueError as exc:  # a NUL or a lone surrogate in the name
        diags.append(Diagnostic(file, 1, 1, f"cannot read file: {exc}"))
        return None
    if len(raw) > limit:
        diags.append(Diagnostic(file, 1, 1, too_big))
        return None
    return raw


def _check_text(file: str, text: str, diags: list[Diagnostic]) -> bool:
    """Line length and forbidden characters, checked before parsing. Every
    overlong line is reported (there are at most MAX_FILE_BYTES / MAX_LINE_CHARS)."""
    limit = limits.MAX_LINE_CHARS
    long_lines = [
        Diagnostic(file, _text_position(text, found.start())[0], limit + 1,
                   f"line is longer than {limit:,} characters (line length limit {limit:,}; {limits.DOCS})")
        for found in re.finditer(f"^[^\\n]{{{limit + 1}}}", text, re.MULTILINE)
    ]
    if long_lines:
        diags.extend(long_lines)
        return False
    bad = _NON_PRINTABLE.search(text)
    if bad is not None:
        line, col = _text_position(text, bad.start())
        diags.append(Diagnostic(file, line, col, f"YAML: control character U+{ord(bad.group()):04X} is not allowed"))
        return False
    return True


def read_documents(file: str, diags: list[Diagnostic]) -> list[_Document]:
    """Compose every YAML document of `file` within sentinel.policy.limits;
    problems go to `diags`."""
    raw = _read_bounded(file, diags)
    if raw is None:
        return []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _position(raw, exc.start)
        diags.append(Diagnostic(file, line, col, "file is not valid UTF-8"))
        return []
    if not _check_text(file, text, diags):
        return []
    docs: list[_Document] = []
    try:
        nodes, problems = _compose_all(text)
    except _LimitExceeded as exc:
        diags.append(Diagnostic(file, exc.mark.line + 1, exc.mark.column + 1, exc.message))
        return []
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        diags.append(Diagnostic(file, line, col, f"YAML: {problem}"))
        return []
    except yaml.YAMLError as exc:
        diags.append(Diagnostic(file, 1, 1, f"YAML: {exc}"))
        return []
    if problems:
        diags.extend(Diagnostic(file, m.line + 1, m.column + 1, message) for m, message in problems)
        return []
    for node in nodes:
        doc = _Document(file, None, _mark(node))
        doc.data = _Builder(doc, diags).build(node, ())
        docs.append(doc)
    if not docs:
        diags.append(Diagnostic(file, 1, 1, "file contains no policy document"))
    return docs


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "document"


def _locate(doc: _Document, loc: Sequence[str | int]) -> Loc:
    """Follow a pydantic error location through the document, skipping the parts
    pydantic adds that are not in the YAML (union tags, validator names), and
    return the deepest location that exists."""
    here: Loc = ()
    for part in loc:
        if here + (part,) in doc.values:
            here = here + (part,)
    return here


def _diagnose(doc: _Document, error: Any) -> Diagnostic:
    kind: str = error["type"]
    loc = _locate(doc, error["loc"])
    line, col = doc.values.get(loc, doc.start)
    where = _dotted(loc)
    message: str = error["msg"]
    if kind == "missing":
        message = f"{where}: missing required key '{error['loc'][-1]}'"
    elif kind == "extra_forbidden":
        line, col = doc.keys.get(loc, (line, col))
        message = _unknown_key(doc, loc)
    elif kind == "union_tag_not_found":
        message = f"{where}: missing required key 'operation' (exec, open or connect)"
    elif kind == "union_tag_invalid":
        line, col = doc.values.get(loc + ("operation",), (line, col))
        message = f"{where}.operation: must be one of exec, open, connect"
    elif kind == "too_short":
        message = f"{where}: must not be empty (omit the key to use the default)"
    else:
        if kind == "value_error":
            message = message.removeprefix("Value error, ")
        message = message.replace("a valid tuple", "a list")  # tuples are YAML lists
        message = f"{where}: {message}"
    return Diagnostic(doc.file, line, col, message)


def _unknown_key(doc: _Document, loc: Loc) -> str:
    key = loc[-1]
    if len(loc) >= 4 and loc[-2] == "match" and loc[-4] == "rules":
        rule: Any = doc.data
        for part in loc[:-2]:
            rule = rule[part]
        operation = rule.get("operation")
        if isinstance(operation, str) and operation in MATCH_KEYS:
            allowed = ", ".join(MATCH_KEYS[operation])
            return f"{_dotted(loc)}: '{key}' does not apply to {operation} rules (use {allowed})"
    return f"{_dotted(loc)}: unknown key '{key}'"


def _duplicate_rule_ids(doc: _Document, root: Loc = ()) -> list[Diagnostic]:
    """Checked on the raw data so it is reported even when other fields are
    wrong. `root` locates the policy inside the document (rule test files)."""
    data: Any = doc.data
    for part in root:
        data = data[part]
    spec = data.get("spec") if isinstance(data, dict) else None
    rules = spec.get("rules") if isinstance(spec, dict) else None
    if not isinstance(rules, list):
        return []
    diags: list[Diagnostic] = []
    seen: dict[str, int] = {}
    for i, rule in enumerate(rules):
        rule_id = rule.get("id") if isinstance(rule, dict) else None
        if not isinstance(rule_id, str):
            continue
        if rule_id in seen:
            line, col = doc.values[root + ("spec", "rules", i, "id")]
            first = doc.values[root + ("spec", "rules", seen[rule_id], "id")]
            message = (
                f"{_dotted(root + ('spec', 'rules', i, 'id'))}: duplicate rule id '{rule_id}' "
                f"(first used at line {first[0]})"
            )
            diags.append(Diagnostic(doc.file, line, col, message))
        else:
            seen[rule_id] = i
    return diags


def validate_document(doc: _Document, model: type[M], diags: list[Diagnostic]) -> M | None:
    """Validate one document as `model`; every problem goes to `diags`."""
    found = []
    if model is Policy:
        found = _duplicate_rule_ids(doc)
    elif isinstance(doc.data, dict) and isinstance(doc.data.get("policies"), list):
        # Rule test files embed policies under `policies:`.
        for i in range(len(doc.data["policies"])):
            found += _duplicate_rule_ids(doc, ("policies", i))
    try:
        policy = model.model_validate(doc.data)
    except ValidationError as exc:
        for error in exc.errors():
            # pydantic counts only the items that validated: a list whose items
            # are all wrong is not also "empty".
            if error["type"] == "too_short" and error.get("input"):
                continue
            found.append(_diagnose(doc, error))
        diags.extend(sorted(found, key=lambda d: (d.line, d.col)))
        return None
    diags.extend(found)
    return policy if not found else None


def expand_paths(paths: Iterable[str | os.PathLike[str]], diags: list[Diagnostic]) -> list[str]:
    """Files named directly, plus every `*.yaml` of a named directory (sorted)."""
    files: list[str] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            found = sorted(str(p) for p in path.glob("*.yaml") if p.is_file())
            if not found:
                diags.append(Diagnostic(str(path), 1, 1, "directory contains no *.yaml files"))
            files.extend(found)
        else:
            files.append(str(path))
    return files


def load_policies(paths: Iterable[str | os.PathLike[str]]) -> list[LoadedPolicy]:
    """Load and validate policies from files and directories of `*.yaml`.

    A file may hold several YAML documents, one policy each.
    Raises:
        PolicyError: with every diagnostic of every file, if anything is wrong.
    """
    diags: list[Diagnostic] = []
    loaded: list[LoadedPolicy] = []
    names: dict[str, LoadedPolicy] = {}
    for file in expand_paths(paths, diags):
        for doc in read_documents(file, diags):
            policy = validate_document(doc, Policy, diags)
            if policy is None:
                continue
            item = LoadedPolicy(policy, file, *doc.start)
            name_mark = doc.values[("metadata", "name")]
            if policy.name in names:
                first = names[policy.name]
                diags.append(
                    Diagnostic(
                        file, *name_mark,
                        f"metadata.name: policy '{policy.name}' is already defined "
                        f"in {first.file}:{first.line}:{first.col}",
                    )
                )
                continue
            names[policy.name] = item
            loaded.append(item)
            if len(loaded) == MAX_POLICIES + 1:
                diags.append(
                    Diagnostic(
                        file, *doc.start,
                        f"too many policies: at most {MAX_POLICIES} can be loaded at once",
                    )
                )
    if diags:
        raise PolicyError(sort_diagnostics(diags))
    return loaded


def sort_diagnostics(diags: list[Diagnostic]) -> list[Diagnostic]:
    """Files in the order they were read, each file's problems top to bottom."""
    order = {file: i for i, file in reversed(list(enumerate(d.file for d in diags)))}
    return sorted(diags, key=lambda d: (order[d.file], d.line, d.col))
