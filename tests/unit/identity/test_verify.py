"""Authentication of Bearer JWTs on the virtual clock (R-ID-02) and authorization by {org, env, role} (R-PROJ-04)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import jwt
import pytest

from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.identity import Authenticator, IdentityTopology, Issuer, Principal
from catalyst_sim.model.base import CatalystError

from .conftest import bearer


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def assert_unauthorized(auth: Authenticator, header: str | None, message: str) -> None:
    with pytest.raises(CatalystError, match=message) as err:
        auth.authenticate(header)
    assert err.value.code == "Unauthorized"


def _forge(issuer: Issuer, claims: dict[str, Any], **headers: Any) -> str:
    """Sign with ``issuer``'s real private key: what a compromised or hostile realm could produce."""
    return jwt.encode(claims, issuer._private_key, algorithm="RS256", headers={"kid": issuer.kid, **headers})


# -- lifetime on the clock -------------------------------------------------------------------------


def test_access_token_is_valid_at_14m59s_and_refused_at_15m(topology: IdentityTopology, auth: Authenticator,
                                                            clock: VirtualClock) -> None:
    """R-ID-02: an expired access token MUST be rejected (401), on virtual time."""
    pair = topology.login("alice", "acme", ["org-viewer"], ["acme-prod"])
    clock.advance(timedelta(minutes=14, seconds=59))
    principal = auth.authenticate(bearer(pair.access_token))
    assert principal == Principal(user="alice", org="acme", roles=("org-viewer",), environments=("acme-prod",),
                                  issuer=topology.issuer_for("acme").url, expires_at=pair.access_expires_at,
                                  session_id=pair.session_id)
    clock.advance(timedelta(seconds=1))
    assert_unauthorized(auth, bearer(pair.access_token), "token expired")


def test_refresh_after_expiry_gives_a_working_token_until_day_30(topology: IdentityTopology, auth: Authenticator,
                                                                 clock: VirtualClock) -> None:
    pair = topology.login("alice", "acme", ["org-developer"], "*")
    issuer = topology.issuer_for("acme")
    clock.advance(timedelta(days=29, hours=23))
    assert_unauthorized(auth, bearer(pair.access_token), "token expired")
    renewed = issuer.refresh(pair.refresh_token)
    assert auth.authenticate(bearer(renewed.access_token)).environments == "*"
    clock.advance(timedelta(hours=1))
    with pytest.raises(CatalystError) as err:
        issuer.refresh(renewed.refresh_token)
    assert err.value.code == "Unauthorized"


def test_a_token_not_yet_valid_on_the_clock_is_refused(topology: IdentityTopology, auth: Authenticator,
                                                       clock: VirtualClock) -> None:
    acme = topology.issuer_for("acme")
    claims = _claims(topology.login("alice", "acme", ["org-viewer"]).access_token)
    claims["nbf"] = claims["iat"] + 60
    assert_unauthorized(auth, bearer(_forge(acme, claims)), "not valid before")
    clock.advance(timedelta(minutes=1))
    assert auth.authenticate(bearer(_forge(acme, claims))).user == "alice"


# -- forged and foreign tokens ---------------------------------------------------------------------


def test_a_tampered_payload_is_refused(topology: IdentityTopology, auth: Authenticator) -> None:
    token = topology.login("alice", "acme", ["org-viewer"], ["acme-prod"]).access_token
    header, _payload, signature = token.split(".")
    claims = _claims(token)
    claims["roles"] = ["org-admin"]
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert_unauthorized(auth, bearer(f"{header}.{forged_payload}.{signature}"), "signature does not verify")


def test_a_token_signed_by_another_issuers_key_is_refused(topology: IdentityTopology, auth: Authenticator,
                                                          clock: VirtualClock) -> None:
    acme, bank = topology.issuer_for("acme"), topology.issuer_for("bankdhofar")
    claims = _claims(topology.login("bob", "bankdhofar", ["org-admin"]).access_token)
    # bankdhofar's claims signed with acme's key, with acme's kid and then pretending bankdhofar's kid.
    assert_unauthorized(auth, bearer(_forge(acme, claims)), "does not publish")
    assert_unauthorized(auth, bearer(_forge(acme, claims, kid=bank.kid)), "signature does not verify")
    # A look-alike Keycloak with the same realm name and URL but its own key.
    impostor = Issuer("bankdhofar", bank.keycloak_url, clock, organization="bankdhofar")
    stolen_url = impostor.issue("bob", "bankdhofar", ["org-admin"]).access_token
    assert _claims(stolen_url)["iss"] == bank.url
    assert_unauthorized(auth, bearer(stolen_url), "does not publish")


def test_a_token_from_an_unknown_issuer_is_refused(topology: IdentityTopology, auth: Authenticator,
                                                   clock: VirtualClock) -> None:
    stranger = Issuer("acme", "https://idp.elsewhere.example", clock, organization="acme")
    assert_unauthorized(auth, bearer(stranger.issue("alice", "acme", ["org-admin"]).access_token),
                  "token issued by an unknown issuer 'https://idp.elsewhere.example/realms/acme'")
    other_sovereign = IdentityTopology("gulf", topology.keycloak_topology, clock, "https://keycloak.gulf.example")
    other_sovereign.add_organization("acme")
    assert_unauthorized(auth, bearer(other_sovereign.login("alice", "acme", ["org-admin"]).access_token),
                  "unknown issuer")


def test_an_org_realm_cannot_speak_for_another_org_or_mint_sovereign_admin(topology: IdentityTopology,
                                                                          auth: Authenticator) -> None:
    """A per-organization Keycloak is run per Org (R-ID-04); its signature proves nothing about other Orgs."""
    acme = topology.issuer_for("acme")
    claims = _claims(topology.login("mallory", "acme", ["org-admin"]).access_token)
    assert_unauthorized(auth, bearer(_forge(acme, {**claims, "org": "bankdhofar"})), "claims Organization 'bankdhofar'")
    assert_unauthorized(auth, bearer(_forge(acme, {**claims, "roles": ["sovereign-admin"]})), "cannot grant sovereign")
    assert_unauthorized(auth, bearer(_forge(acme, {**claims, "roles": ["root"]})), "unknown role")
    admin = topology.sovereign_admin_issuer()
    admin_claims = _claims(topology.login("root", None, ["sovereign-admin"]).access_token)
    assert_unauthorized(auth, bearer(_forge(admin, {**admin_claims, "org": "acme"})), "belong to no Organization")


def test_wrong_algorithm_audience_or_type_is_refused(topology: IdentityTopology, auth: Authenticator) -> None:
    acme = topology.issuer_for("acme")
    pair = topology.login("alice", "acme", ["org-viewer"])
    claims = _claims(pair.access_token)
    unsigned = jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]
    assert_unauthorized(auth, bearer(unsigned), "only RS256")
    hs = jwt.encode(claims, "a-shared-secret-of-at-least-32-bytes", algorithm="HS256", headers={"kid": acme.kid})
    assert_unauthorized(auth, bearer(hs), "only RS256")
    assert_unauthorized(auth, bearer(_forge(acme, {**claims, "aud": "gitea"})), "not meant for 'catalyst-api'")
    assert_unauthorized(auth, bearer(_forge(acme, {k: v for k, v in claims.items() if k != "roles"})),
                  "lacks the 'roles' claim")
    # A refresh token is signed by the same realm, but it is not an access token.
    assert_unauthorized(auth, bearer(pair.refresh_token), "not meant for 'catalyst-api'")
    assert_unauthorized(auth, bearer(_forge(acme, {**claims, "typ": "Refresh"})), "not an access token")


@pytest.mark.parametrize(("header", "message"), [
    (None, "no Authorization header"),
    ("", "no Authorization header"),
    ("Basic YWxpY2U6cHc=", "must be 'Bearer <access token>'"),
    ("Bearer", "must be 'Bearer <access token>'"),
    ("Bearer not.a.jwt", "not a well-formed JWT"),
])
def test_malformed_authorization_headers_are_refused(auth: Authenticator, header: str | None, message: str) -> None:
    assert_unauthorized(auth, header, message)


def test_errors_name_the_authorization_field(auth: Authenticator) -> None:
    with pytest.raises(CatalystError) as err:
        auth.authenticate(None)
    assert err.value.problems[0].field == "Authorization"


# -- authorization ---------------------------------------------------------------------------------


def test_a_token_for_acme_on_bankdhofars_environment_is_forbidden(topology: IdentityTopology,
                                                                  auth: Authenticator) -> None:
    """R-PROJ-04: cross-Org access is denied, whatever the role."""
    principal = auth.authenticate(bearer(topology.login("alice", "acme", ["org-admin"], "*").access_token))
    for action in ("read", "write", "admin"):
        with pytest.raises(CatalystError, match="may not access Organization 'bankdhofar'") as err:
            auth.authorize(principal, organization="bankdhofar", environment="bankdhofar-prod", action=action)
        assert err.value.code == "Forbidden"
        assert err.value.problems[0].object == "Environment/bankdhofar-prod"
    # Naming acme as the Organization does not smuggle in bankdhofar's Environment either.
    with pytest.raises(CatalystError, match="belongs to Organization 'bankdhofar'") as err:
        auth.authorize(principal, organization="acme", environment="bankdhofar-prod", action="read")
    assert err.value.code == "Forbidden"


ROLE_MATRIX = [
    # roles, environment, action, allowed
    (["org-viewer"], "acme-prod", "read", True),
    (["org-viewer"], "acme-prod", "write", False),
    (["org-viewer"], "acme-prod", "admin", False),
    (["org-developer"], "acme-prod", "read", True),
    (["org-developer"], "acme-prod", "write", True),
    (["org-developer"], "acme-prod", "admin", False),
    (["org-developer"], None, "admin", False),
    (["org-admin"], "acme-prod", "admin", True),
    (["org-admin"], None, "admin", True),
    (["security-officer"], "acme-prod", "read", True),
    (["security-officer"], "acme-prod", "write", False),
    (["billing-admin"], None, "read", True),
    (["billing-admin"], "acme-prod", "read", False),
    (["org-viewer", "org-developer"], "acme-prod", "write", True),
]


@pytest.mark.parametrize(("roles", "environment", "action", "allowed"), ROLE_MATRIX)
def test_role_matrix(topology: IdentityTopology, auth: Authenticator, roles: list[str], environment: str | None,
                     action: str, allowed: bool) -> None:
    """R-ID-06: viewer reads, developer writes, org-admin administers, within the caller's own Org."""
    principal = auth.authenticate(bearer(topology.login("u", "acme", roles, "*").access_token))
    if allowed:
        auth.authorize(principal, organization="acme", environment=environment, action=action)  # type: ignore[arg-type]
    else:
        with pytest.raises(CatalystError, match=f"may not {action}") as err:
            auth.authorize(principal, organization="acme", environment=environment, action=action)  # type: ignore[arg-type]
        assert err.value.code == "Forbidden"


def test_sovereign_admin_may_act_across_orgs(topology: IdentityTopology, auth: Authenticator) -> None:
    principal = auth.authenticate(bearer(topology.login("root", None, ["sovereign-admin"]).access_token))
    assert principal.sovereign_admin and principal.org is None
    assert principal.issuer == topology.sovereign_admin_issuer().url
    for org in ("acme", "bankdhofar"):
        auth.authorize(principal, organization=org, environment=f"{org}-prod", action="admin")
        auth.authorize(principal, organization=org, action="write")


def test_only_listed_environments_are_reachable(topology: IdentityTopology, auth: Authenticator) -> None:
    principal = auth.check(bearer(topology.login("dev", "acme", ["org-developer"], ["acme-dev"]).access_token),
                           organization="acme", environment="acme-dev", action="write")
    with pytest.raises(CatalystError, match="no access to Environment 'acme-prod'") as err:
        auth.authorize(principal, organization="acme", environment="acme-prod", action="read")
    assert err.value.code == "Forbidden"


def test_unknown_action_is_invalid(topology: IdentityTopology, auth: Authenticator) -> None:
    principal = auth.authenticate(bearer(topology.login("u", "acme", ["org-admin"]).access_token))
    with pytest.raises(CatalystError, match="unknown action") as err:
        auth.authorize(principal, organization="acme", action="delete")  # type: ignore[arg-type]
    assert err.value.code == "Invalid"
