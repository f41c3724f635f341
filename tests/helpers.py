"""Small builders shared by unit tests."""

from __future__ import annotations

from typing import Any

from sentinel.policy.model import Policy


def policy(name: str, *rules: dict[str, Any], **spec: Any) -> Policy:
    """A validated policy from plain data; `spec` keys are the YAML keys."""
    body: dict[str, Any] = dict(spec)
    if rules:
        body["rules"] = [dict(r) for r in rules]
    return Policy.model_validate(
        {"apiVersion": "sentinel/v1", "kind": "Policy", "metadata": {"name": name}, "spec": body}
    )


def rule(rid: str, operation: str, action: str, **match: Any) -> dict[str, Any]:
    return {"id": rid, "operation": operation, "action": action, "match": match}
