"""Which rule a route gets: the exceptions, and the rest derived from its path parameters."""

from __future__ import annotations

import pytest

from catalyst_sim.control.api.auth import (
    AUTHENTICATED,
    PUBLIC,
    SOVEREIGN_ADMIN_ONLY,
    Rule,
    rule_for,
    visible_organizations,
)
from catalyst_sim.control.identity import Principal


@pytest.mark.parametrize(("method", "path", "params", "rule"), [
    ("GET", "/healthz", {}, PUBLIC),
    ("POST", "/api/v1/hooks/gitea", {}, PUBLIC),
    ("POST", "/api/v1/organizations", {}, SOVEREIGN_ADMIN_ONLY),
    ("GET", "/api/v1/organizations", {}, AUTHENTICATED),
    ("POST", "/api/v1/organizations/{org}/environments", {"org": "acme"}, Rule("organization", "org", "admin")),
    ("GET", "/api/v1/organizations/{org}/environments", {"org": "acme"}, Rule("organization", "org")),
    ("GET", "/api/v1/environments/{env}/stream", {"env": "acme-dev"}, Rule("environment", "env")),
    ("PUT", "/api/v1/settings", {}, SOVEREIGN_ADMIN_ONLY),
])
def test_rule_for(method: str, path: str, params: dict[str, str], rule: Rule) -> None:
    assert rule_for(method, path, params) == rule


def test_reads_and_writes() -> None:
    rule = Rule("environment", "env")
    assert [rule.action_for(m) for m in ("GET", "head", "POST", "DELETE")] == ["read", "read", "write", "write"]


def test_visible_organizations() -> None:
    layla = Principal("layla", "acme", ("org-developer",), "*", "https://kc/realms/acme")
    root = Principal("root", None, ("sovereign-admin",), "*", "https://kc/realms/catalyst-admin")
    assert visible_organizations(layla, ["acme", "bankdhofar"]) == ["acme"]
    assert visible_organizations(root, ["acme", "bankdhofar"]) == ["acme", "bankdhofar"]
