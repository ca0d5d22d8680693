"""One realm as an OIDC issuer: keys, JWKS, discovery and token lifetimes on the virtual clock (R-ID-02)."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest

from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.identity import (
    ACCESS_TOKEN_LIFETIME,
    AUDIENCE,
    REFRESH_TOKEN_LIFETIME,
    IdentityTopology,
    Issuer,
)
from catalyst_sim.model.base import CatalystError


@pytest.fixture
def issuer(clock: VirtualClock) -> Issuer:
    return Issuer("acme", "https://keycloak.example/keycloak/acme", clock, organization="acme")


def test_lifetimes_are_the_documented_ones() -> None:
    assert timedelta(minutes=15) == ACCESS_TOKEN_LIFETIME
    assert timedelta(days=30) == REFRESH_TOKEN_LIFETIME


def test_jwks_publishes_the_public_key_that_verifies_its_tokens(issuer: Issuer) -> None:
    jwks = issuer.jwks()
    [key] = jwks["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig" and key["kid"] == issuer.kid
    assert "d" not in key and "p" not in key, "the JWKS must never carry the private key"
    pair = issuer.issue("alice", "acme", ["org-viewer"], ["acme-prod"])
    public = jwt.PyJWKSet.from_dict(jwks)[issuer.kid].key
    claims = jwt.decode(pair.access_token, public, algorithms=["RS256"], audience=AUDIENCE,
                        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False})
    assert claims["iss"] == issuer.url == "https://keycloak.example/keycloak/acme/realms/acme"
    assert claims["sub"] == "alice" and claims["org"] == "acme"
    assert claims["roles"] == ["org-viewer"] and claims["environments"] == ["acme-prod"]
    assert jwt.get_unverified_header(pair.access_token)["kid"] == issuer.kid


def test_discovery_names_issuer_jwks_and_token_endpoint(issuer: Issuer) -> None:
    discovery = issuer.discovery()
    assert discovery["issuer"] == issuer.url
    assert discovery["jwks_uri"] == f"{issuer.url}/protocol/openid-connect/certs"
    assert discovery["token_endpoint"] == f"{issuer.url}/protocol/openid-connect/token"
    assert "RS256" in discovery["id_token_signing_alg_values_supported"]


def test_times_come_from_the_clock_not_wall_time(issuer: Issuer, clock: VirtualClock) -> None:
    clock.advance(timedelta(days=400))
    pair = issuer.issue("alice", "acme", ["org-viewer"])
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    now = int(clock.now().timestamp())
    assert claims["iat"] == claims["nbf"] == now
    assert claims["exp"] == now + 15 * 60
    refresh = jwt.decode(pair.refresh_token, options={"verify_signature": False})
    assert refresh["exp"] == now + 30 * 24 * 3600 and refresh["typ"] == "Refresh"
    assert pair.expires_in == 900 and pair.refresh_expires_in == 30 * 24 * 3600
    assert pair.as_oauth()["token_type"] == "Bearer"


def test_refresh_works_on_day_29_and_is_refused_on_day_30(issuer: Issuer, clock: VirtualClock) -> None:
    pair = issuer.issue("alice", "acme", ["org-developer"], "*")
    clock.advance(timedelta(days=29))
    renewed = issuer.refresh(pair.refresh_token)
    claims = jwt.decode(renewed.access_token, options={"verify_signature": False})
    assert claims["iat"] == int(clock.now().timestamp()) and claims["environments"] == "*"
    clock.advance(timedelta(days=1))
    for token in (pair.refresh_token, renewed.refresh_token):
        with pytest.raises(CatalystError) as err:
            issuer.refresh(token)
        assert err.value.code == "Unauthorized"
        assert "expired" in str(err.value) or "session ended" in str(err.value)


def test_a_refresh_does_not_extend_the_30_day_session(issuer: Issuer, clock: VirtualClock) -> None:
    """Like Keycloak's SSO Session Max: daily refreshes still force a login after 30 days (R-ID-02)."""
    pair = issuer.issue("alice", "acme", ["org-developer"])
    login_ends = pair.refresh_expires_at
    token = pair.refresh_token
    for _ in range(29):
        clock.advance(timedelta(days=1))
        renewed = issuer.refresh(token)
        assert renewed.refresh_expires_at == login_ends
        token = renewed.refresh_token
    clock.advance(timedelta(days=1))
    with pytest.raises(CatalystError, match="expired"):
        issuer.refresh(token)


def test_revoked_session_cannot_refresh(issuer: Issuer, clock: VirtualClock) -> None:
    pair = issuer.issue("alice", "acme", ["org-viewer"])
    other = issuer.issue("bob", "acme", ["org-viewer"])
    issuer.revoke(pair.refresh_token)
    with pytest.raises(CatalystError, match="revoked") as err:
        issuer.refresh(pair.refresh_token)
    assert err.value.code == "Unauthorized"
    assert not issuer.session_active(pair.session_id)
    issuer.refresh(other.refresh_token)


def test_an_access_token_is_not_a_refresh_token(issuer: Issuer) -> None:
    pair = issuer.issue("alice", "acme", ["org-viewer"])
    with pytest.raises(CatalystError, match="not a refresh token"):
        issuer.refresh(pair.access_token)


def test_another_realms_refresh_token_is_refused(issuer: Issuer, clock: VirtualClock) -> None:
    other = Issuer("acme", "https://evil.example", clock, organization="acme")
    foreign = other.issue("alice", "acme", ["org-admin"])
    with pytest.raises(CatalystError, match="not signed by realm") as err:
        issuer.refresh(foreign.refresh_token)
    assert err.value.code == "Unauthorized"


@pytest.mark.parametrize(("org", "roles", "environments", "message"), [
    ("bankdhofar", ["org-admin"], "*", "only for Organization 'acme'"),
    ("acme", ["sovereign-admin"], "*", "sovereign-admin is granted only by realm 'catalyst-admin'"),
    ("acme", ["root"], "*", "unknown role"),
    ("acme", [], "*", "at least one role"),
    ("acme", ["org-viewer"], ["bankdhofar-prod"], "does not belong to Organization 'acme'"),
    ("acme", ["org-viewer"], ["acme-nope"], "env_type"),
    ("acme", ["org-viewer"], "all", r"must be '\*' or a list"),
])
def test_an_org_realm_refuses_to_mint_what_it_does_not_own(issuer: Issuer, org: str, roles: list[str],
                                                           environments: object, message: str) -> None:
    with pytest.raises(CatalystError, match=message) as err:
        issuer.issue("mallory", org, roles, environments)  # type: ignore[arg-type]
    assert err.value.code == "Invalid"


def test_the_admin_realm_mints_sovereign_admin_without_an_org(per_org: IdentityTopology) -> None:
    admin = per_org.sovereign_admin_issuer()
    assert admin.realm == "catalyst-admin"
    pair = per_org.login("root", None, ["sovereign-admin"])
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    assert claims["org"] is None and claims["roles"] == ["sovereign-admin"] and claims["iss"] == admin.url
    with pytest.raises(CatalystError, match="belong to no Organization"):
        admin.issue("root", "acme", ["sovereign-admin"])


def test_an_unavailable_realm_issues_and_refreshes_nothing(issuer: Issuer) -> None:
    pair = issuer.issue("alice", "acme", ["org-viewer"])
    issuer.available = False
    for attempt in (lambda: issuer.issue("alice", "acme", ["org-viewer"]), lambda: issuer.refresh(pair.refresh_token)):
        with pytest.raises(CatalystError, match="unavailable") as err:
            attempt()
        assert err.value.code == "Upstream"
